"""Checks of plain values: whole numbers, numbers in a range, one of a few choices, a seed, a
picture size, and class labels."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

import numpy as np
import torch

# The sides a picture may be loaded at: 8 px still shows a shape; 1024 px is slow on a CPU and
# takes 12 MB per float32 RGB picture.
SIZE_RANGE = (8, 1024)
# torch.Generator.manual_seed takes any integer that fits 64 bits; Python's 0 <= seed < 2^63
# is what every torch build accepts without wrapping.
MAX_SEED = 2**63 - 1


def whole_number(
    value: object, name: str, minimum: int = 1, maximum: Optional[int] = None, hint: str = ""
) -> int:
    """``value`` as an int, or ``ValueError`` unless it is a whole number in [minimum, maximum]
    (bools and floats are refused, numpy integers accepted)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        span = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise ValueError(f"{name} must be a whole number {span}, got {value!r}.{hint}")
    return int(value)


def number(
    value: object,
    name: str,
    minimum: Optional[float] = None,
    maximum: Optional[float] = None,
    *,
    above: bool = False,
    hint: str = "",
) -> float:
    """``value`` as a float, or ``ValueError`` unless it is a finite number in [minimum, maximum]
    (or above ``minimum`` when ``above``)."""
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    ok = ok and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if above else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        low = "" if minimum is None else f"{'>' if above else '>='} {minimum:g}"
        high = "" if maximum is None else f"<= {maximum:g}"
        span = " and ".join(s for s in (low, high) if s)
        raise ValueError(
            f"{name} must be a number{' ' + span if span else ''}, got {value!r}.{hint}"
        )
    return float(value)


def choice(value: object, name: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")
    return value


def seed(value: object, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed``: a whole number from 0 to 2^63 - 1."""
    return whole_number(value, name, 0, MAX_SEED, " Any one in that range works, e.g. seed=0.")


def picture_size(value: object, name: str = "size") -> int:
    """A picture side in pixels within :data:`SIZE_RANGE`."""
    lo, hi = SIZE_RANGE
    return whole_number(value, name, lo, hi, " Try 32, 64 or 128.")


def class_labels(
    labels: object,
    n: int,
    num_classes: Optional[int] = None,
    *,
    name: str = "labels",
    null_class: bool = False,
) -> torch.Tensor:
    """Class labels as a LongTensor [n] on the CPU: one int for all n, or n whole numbers (a
    list, an array or a tensor). Each must lie in 0..num_classes-1, or up to num_classes itself
    with ``null_class`` (the "no class" label of classifier-free guidance); without
    ``num_classes`` only >= 0."""
    if isinstance(labels, bool) or labels is None:
        raise ValueError(
            f"{name} must be class numbers (an int, or one per picture), got {labels!r}."
        )
    if isinstance(labels, (int, np.integer)):
        values = torch.full((n,), int(labels), dtype=torch.long)
    else:
        try:
            values = torch.as_tensor(labels).detach().cpu()
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be whole class numbers: {err}") from err
        if values.dtype == torch.bool or values.is_complex():
            raise ValueError(f"{name} must be whole class numbers, got {values.dtype}.")
        if values.is_floating_point() and not bool((values == values.round()).all()):
            raise ValueError(
                f"{name} must be whole numbers (class indices), got {values.tolist()[:5]}."
            )
        if values.dim() != 1 or values.shape[0] != n:
            raise ValueError(
                f"{name} must hold one class per picture ({n}), got shape {list(values.shape)}: "
                f"give one int for all, or a LongTensor [{n}]."
            )
        values = values.long()
    top = None if num_classes is None else num_classes if null_class else num_classes - 1
    if n and (int(values.min()) < 0 or (top is not None and int(values.max()) > top)):
        span = f"0..{top}" if top is not None else ">= 0"
        extra = f" ({num_classes} = no class)" if null_class else ""
        raise ValueError(
            f"{name} must lie in {span}{extra}, got values from {int(values.min())} to "
            f"{int(values.max())}."
        )
    return values

"""Checks of plain values: whole numbers, numbers in a range, one of a few choices, a seed, a
picture size, and class labels. A value of the wrong type, as a config read from a file may
hold, is named with its type."""

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
        raise ValueError(f"{name} must be a whole number {span}, got {shown(value)}.{hint}")
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
            f"{name} must be a number{' ' + span if span else ''}, got {shown(value)}.{hint}"
        )
    return float(value)


def shown(value: object) -> str:
    """``value`` as a message shows it, with its type when that is what is wrong: a config read
    from a file may hold ``"16"`` (text) or ``16.0`` where a number 16 belongs."""
    if isinstance(value, str):
        return f"the text {value!r} (a str): write the number without quotes"
    if isinstance(value, (bool, float, np.floating)) or not isinstance(value, (int, np.integer)):
        return f"{value!r} (a {type(value).__name__})"
    return repr(value)


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
    return whole_number(value, name, lo, hi, " Try 16, 32 or 64.")


def class_indices(
    labels: object,
    n: int,
    num_classes: Optional[int] = None,
    *,
    null_class: bool = False,
    name: str = "labels",
) -> torch.Tensor:
    """Class labels as a LongTensor [n]: the one rule for labels, wherever they come in.

    ``labels`` is one int for all n pictures, or n whole numbers (a list, a numpy array or an
    integer tensor, which keeps its device). Each lies in 0..num_classes-1, or up to
    ``num_classes`` itself with ``null_class`` (the "no class" label of classifier-free
    guidance); without ``num_classes`` each is >= 0. Floats are refused, whole ones such as 3.0
    too: a class is an index, and a float tensor of labels is most often something else
    passed by mistake (write 3, or ``labels.long()``).
    """
    if labels is None or isinstance(labels, bool):
        raise ValueError(
            f"{name} must be class numbers (an int, or one per picture), got {labels!r}."
        )
    if isinstance(labels, (int, np.integer)):
        values = torch.full((n,), int(labels), dtype=torch.long)
    else:
        try:
            values = (
                labels.detach() if isinstance(labels, torch.Tensor) else torch.as_tensor(labels)
            )
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"{name} must be whole class numbers: {err}") from err
        if values.dtype == torch.bool or values.is_floating_point() or values.is_complex():
            raise ValueError(
                f"{name} must be whole numbers (class indices of an integer type), got "
                f"{values.dtype} {values.flatten()[:5].tolist()}: floats are refused, 3.0 "
                "too; write 3, or labels.long()."
            )
        if values.shape != (n,):
            raise ValueError(
                f"{name} must have one entry per image ({n}), got shape {list(values.shape)}: "
                "give one entry per picture, or one int for all."
            )
        values = values.long()
    if n:
        low, high = torch.stack(torch.aminmax(values)).tolist()  # one read of the device
        top = None if num_classes is None else num_classes - (0 if null_class else 1)
        if top is None and low < 0:
            raise ValueError(
                f"{name} must be >= 0 (class numbers count from 0), got values from {low} to "
                f"{high}."
            )
        if top is not None and (low < 0 or high > top):
            none = f", and {num_classes} means no class" if null_class else ""
            raise ValueError(
                f"{name} must be in 0..{top}, got values from {low} to {high}: class labels "
                f"must lie in 0..{num_classes - 1} for {num_classes} classes{none}."
            )
    return values

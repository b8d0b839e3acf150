"""Classifier-free guidance (Ho & Salimans 2022): steering a class-conditional model to a class.

A conditional U-Net was trained with a fraction of its labels replaced by "no class" (index
``num_classes``), so the same net predicts eps(x_t, t, y) and eps(x_t, t). Sampling mixes them:

    eps = eps(x_t, t, no class) + w (eps(x_t, t, y) - eps(x_t, t, no class))

w = 0 ignores the class, w = 1 is the plain conditional model, w > 1 exaggerates what makes a
picture look like its class: more accurate classes, less variety.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

import torch

from .checks.values import class_indices, number

# The guidance weight w when labels are given without guidance_scale. Measured on the digits
# model of notebook 05 (conditional tiny U-Net, 16 px, 1,600 steps, 500 DPM-Solver++ samples;
# accuracy by a classifier trained on the real digits, within-class diversity of the real
# digits 4.49): w = 1 gave 90.8% accuracy, Frechet distance 12.7, within-class diversity 4.83;
# w = 1.5 98.0%, 36.5, 4.34; w = 2 99.4%, 72.4, 4.04; w = 3 100%, 127, 3.71. 1.5 is the knee:
# nearly every digit is the one asked for, with about the real digits' variety.
DEFAULT_GUIDANCE = 1.5

Labels = Union[int, torch.Tensor]


def guided_noise(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    t: torch.Tensor,
    labels: Optional[torch.Tensor] = None,
    null_labels: Optional[torch.Tensor] = None,
    guidance_scale: float = 1.0,
) -> torch.Tensor:
    """eps for one step, with classifier-free guidance (Ho & Salimans 2022, eq. 6):

        eps = eps_theta(x, t, null) + w (eps_theta(x, t, labels) - eps_theta(x, t, null))

    with w = ``guidance_scale`` (the paper writes (1 + w) eps_c - w eps_u: its w is ours - 1).
    The conditional and unconditional predictions come from ONE forward pass of 2n images.

    Args:
        x: x_t [n, C, H, W]; t: LongTensor [n].
        labels: None for an unconditional model (called as ``model(x, t)``); else [n].
        null_labels: the "no class" label [n] for guidance; None for one pass with ``labels``
            (w = 1, or ``labels`` are already the null class).
    Returns:
        eps [n, C, H, W].
    """
    if labels is None:
        return model(x, t)
    if null_labels is None:
        return model(x, t, labels)
    both = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([labels, null_labels]))
    eps_cond, eps_uncond = both.chunk(2)
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)


def resolve_labels(
    model: Any,
    labels: Optional[Labels],
    guidance_scale: Optional[float],
    n: int,
    device: Optional[torch.device] = None,
) -> tuple[Optional[torch.Tensor], Optional[torch.Tensor], float]:
    """Check labels and guidance; return ``(labels, null_labels, w)`` for :func:`guided_noise`
    (``ValueError`` before any work when they do not suit the model).

    An unconditional model gets (None, None, 1): it is called with two arguments. A conditional
    one without labels draws unconditionally (the null label); w = 1 and w = 0 need one pass.
    """
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is None:
        if labels is not None:
            raise ValueError(
                "labels were given but the model is unconditional (model.config.num_classes is "
                "None or missing): drop labels, or train a conditional model (num_classes=...)."
            )
    if guidance_scale is not None and labels is None:
        raise ValueError(
            f"guidance_scale={guidance_scale!r} without labels: guidance steers towards a class; "
            "give labels=... too, or leave guidance_scale out."
        )
    if num_classes is None:
        return None, None, 1.0
    null = torch.full((n,), num_classes, dtype=torch.long, device=device)  # None: the CPU
    if labels is None:
        return null, None, 1.0
    cond = class_indices(labels, n, num_classes).to(null.device)
    w = DEFAULT_GUIDANCE if guidance_scale is None else guidance_scale
    number(w, "guidance_scale", 0.0, hint=" 1 is plain conditional sampling, 0 unconditional.")
    if w == 1:
        return cond, None, 1.0
    if w == 0:
        return null, None, 1.0
    return cond, null, float(w)

"""Peak signal-to-noise ratio, PSNR = 10 log10(1 / MSE) on pixels in [0, 1], in dB.

20 dB is a recognisable copy, 30 dB hard to tell apart by eye; identical pictures give ``inf``.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..checks.tensors import check_image, check_mask, image_batch


def unit_pixels(images: torch.Tensor) -> torch.Tensor:
    """Pictures in [-1, 1] as float64 pixels in [0, 1] on the CPU: (x + 1) / 2, clamped."""
    return ((images.detach().double().cpu() + 1) / 2).clamp(0, 1)


def decibels(mse: torch.Tensor) -> torch.Tensor:
    """10 log10(1 / MSE): the PSNR of a mean squared error of [0, 1] pixels."""
    return 10 * torch.log10(1.0 / mse)


def psnr(
    images: torch.Tensor,
    reference: torch.Tensor,
    *,
    mirror: bool = False,
    mask: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """PSNR of each image [n, C, H, W] against ``reference`` ([C, H, W], [1 or n, C, H, W]),
    both in [-1, 1]; a float64 tensor [n] on the CPU.

    ``mirror``: against the nearer of the reference and its left-right mirror (a model trained
    with flips may draw either). ``mask``: as :func:`.editing.inpaint` takes it (1 = keep,
    0 = fill); only the filled pixels count, since the kept ones are pasted back.
    """
    check_image(images, "images")
    reference = image_batch(reference, "reference")
    if reference.shape[1:] != images.shape[1:] or reference.shape[0] not in (1, images.shape[0]):
        raise ValueError(
            f"reference has shape {list(reference.shape)} but images have {list(images.shape)}: "
            "give one reference image [C, H, W] of the same size, or one per image."
        )
    x, ref = unit_pixels(images), unit_pixels(reference)
    weight = torch.ones_like(x)
    if mask is not None:
        weight = (~check_mask(mask, images)).double().cpu().expand_as(x)  # 1 where filled
        if bool((weight.flatten(1).sum(1) == 0).any()):
            raise ValueError("a mask keeps every pixel (all 1): there is no filled part to score.")

    def mse(target: torch.Tensor) -> torch.Tensor:
        return ((x - target) ** 2 * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3))

    error = torch.minimum(mse(ref), mse(ref.flip(-1))) if mirror else mse(ref)
    return decibels(error)

"""Checks of tensors: a batch of images, values in the data range [-1, 1], an inpainting mask."""

from __future__ import annotations

import torch

# Rounding error of a [0, 1] -> [-1, 1] conversion is allowed past the data range.
RANGE_SLACK = 1e-3


def check_image(x: torch.Tensor, name: str = "x") -> None:
    """Raise ``ValueError`` unless ``x`` is a floating-point tensor [B, C, H, W]."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor [B, C, H, W], got {type(x).__name__}.")
    if x.dim() != 4:
        raise ValueError(f"{name} must have shape [B, C, H, W], got {list(x.shape)}.")
    if not x.dtype.is_floating_point:
        raise ValueError(
            f"{name} must be a floating-point tensor (floats in [-1, 1]), got {x.dtype}: map "
            "pixels p in 0..255 by p.float() / 127.5 - 1 (load_image does it for you)."
        )


def check_range(images: torch.Tensor, name: str = "images", first_index: int = 0) -> None:
    """Raise ``ValueError`` unless ``images`` [N, C, H, W] is floating point with finite values
    in [-1, 1], up to :data:`RANGE_SLACK`: the one rule for pictures in model space, wherever
    they come in. The message names the first item at fault (counted from ``first_index``) and
    how to map pixels into the range."""
    check_image(images, name)
    flat = images.detach().flatten(1)
    if flat.numel() == 0:
        return
    # amin/amax propagate NaN, and the comparisons are False for NaN: NaN, inf and values out
    # of range all make an item bad, without a bool copy of the whole batch.
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    bad = ~((low >= -1 - RANGE_SLACK) & (high <= 1 + RANGE_SLACK))
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        where = f"{name}: item {first_index + i}"
        if not bool(torch.isfinite(flat[i]).all()):
            raise ValueError(f"{where} has NaN or infinite values.")
        raise ValueError(
            f"{where} spans [{float(low[i]):.3g}, {float(high[i]):.3g}], outside [-1, 1]: map "
            "pixels in 0..255 by x / 127.5 - 1 (load_image does it) and pictures in [0, 1] by "
            "x * 2 - 1."
        )


def image_batch(x: torch.Tensor, name: str = "x") -> torch.Tensor:
    """``x`` as a batch [B, C, H, W]: one picture [C, H, W] gains the batch axis; checked by
    :func:`check_image`."""
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x.unsqueeze(0)
    check_image(x, name)
    return x


def one_picture(x: torch.Tensor, name: str = "picture") -> torch.Tensor:
    """``x`` as one picture [1, C, H, W] (a [C, H, W] gains the batch axis), checked."""
    x = image_batch(x, name)
    if x.shape[0] != 1:
        raise ValueError(f"{name} must be one image [1, C, H, W], got {list(x.shape)}.")
    return x


def check_mask(mask: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """An inpainting mask for ``images`` [n, C, H, W] as a bool tensor (True = keep), after
    checking it: [1 or n, 1 or C, H, W], bool or numbers that are all 0 (fill) or 1 (keep)."""
    if not isinstance(mask, torch.Tensor):
        raise ValueError(
            f"mask must be a tensor [1 or n, 1 or C, H, W] (1 = keep, 0 = fill), got "
            f"{type(mask).__name__}."
        )
    n, c, h, w = images.shape
    if (
        mask.dim() != 4
        or mask.shape[0] not in (1, n)
        or mask.shape[1] not in (1, c)
        or tuple(mask.shape[2:]) != (h, w)
    ):
        raise ValueError(
            f"mask has shape {list(mask.shape)}; for images {list(images.shape)} it must be "
            f"[1 or {n}, 1 or {c}, {h}, {w}] (1 = keep, 0 = fill)."
        )
    if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold only 0 (fill) and 1 (keep), or be a bool tensor.")
    return mask.bool()


def check_points(points: torch.Tensor, name: str = "points") -> torch.Tensor:
    """``points`` if it is a cloud of 2D points [N, 2, 1, 1] (N >= 1, floats: N 1x1 pictures
    with two channels, x and y), else ``ValueError`` saying the shape."""
    if isinstance(points, torch.Tensor) and (
        points.dim() != 4 or tuple(points.shape[1:]) != (2, 1, 1) or points.shape[0] == 0
    ):
        raise ValueError(
            f"{name} must be a cloud of 2D points [N, 2, 1, 1] (N 1x1 pictures with two "
            f"channels, x and y), got {list(points.shape)}; xy [N, 2] becomes one with "
            "xy[:, :, None, None]."
        )
    check_image(points, name)  # a tensor of floats
    return points

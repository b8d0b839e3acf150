"""Masks for inpainting: which part of a picture to keep and which the model fills in.

A mask is a float tensor [1, 1, H, W] of 0s and 1s, **1 = keep, 0 = fill**, the convention of
:func:`.editing.inpaint`. :func:`mask_preset` makes the usual ones by name, :func:`rectangle`
any box, :func:`MaskPicker` lets the learner choose with sliders, :func:`masked` shows what is
left of the picture, and ``psnr(..., mask=)`` (:mod:`.metrics.psnr`) says how well the filled part came back.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..checks.tensors import check_image, check_mask
from ..checks.values import whole_number

Preset = Literal["left_half", "bottom_half", "centre_box", "strokes"]
PRESETS = ("left_half", "bottom_half", "centre_box", "strokes")
Choice = Literal["left_half", "bottom_half", "centre_box", "strokes", "rectangle"]  # the picker's
# Random strokes: a few bent brush strokes, as a learner would rub out parts with a brush. Four
# strokes a tenth of the side wide remove about a quarter of the picture (measured at 16, 32
# and 48 px over seeds 0-9: 18-45% each, 26-30% on average).
STROKES = 4
STROKE_WIDTH = 0.1
# Filled pixels are shown in this grey (a value in [-1, 1]) by :func:`masked`.
FILL_GREY = 0.0


def rectangle(size: int, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A mask [1, 1, size, size] that fills the box rows top..top+height-1, columns
    left..left+width-1 (clipped to the picture) and keeps the rest."""
    whole_number(size, "size (pixels)", 2)
    mask = torch.ones(1, 1, size, size)
    mask[..., max(0, top) : max(0, top + height), max(0, left) : max(0, left + width)] = 0.0
    return mask


def mask_preset(name: Preset, size: int, *, seed: int = 0) -> torch.Tensor:
    """A named mask [1, 1, size, size] (1 = keep, 0 = fill); the name says what is filled:

    - ``"left_half"``: the left half (columns 0..size/2-1);
    - ``"bottom_half"``: the bottom half (rows size/2..size-1);
    - ``"centre_box"``: the centre square of half the side (a quarter of the picture);
    - ``"strokes"``: :data:`STROKES` bent brush strokes at random places, drawn with ``seed``.
    """
    whole_number(size, "size (pixels)", 2)
    half = size // 2
    if name == "left_half":
        return rectangle(size, 0, 0, size, half)
    if name == "bottom_half":
        return rectangle(size, size - half, 0, half, size)
    if name == "centre_box":
        return rectangle(size, size // 4, size // 4, half, half)
    if name == "strokes":
        return _strokes(size, seed)
    raise ValueError(f"name must be one of {', '.join(PRESETS)}; got {name!r}.")


def _strokes(size: int, seed: int) -> torch.Tensor:
    """:data:`STROKES` brush strokes, each a line through 3 random points (a bent stroke),
    ``STROKE_WIDTH`` of the side wide, drawn with Pillow."""
    g = torch.Generator().manual_seed(seed)
    canvas = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(canvas)
    width = max(1, round(STROKE_WIDTH * size))
    for _ in range(STROKES):
        points = (torch.rand(3, 2, generator=g) * (size - 1)).tolist()
        draw.line([tuple(p) for p in points], fill=0, width=width, joint="curve")
    keep = torch.from_numpy(np.asarray(canvas) > 127)  # [size, size], True where not drawn
    return keep.float()[None, None]


def masked(picture: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The picture with the part to fill painted grey (:data:`FILL_GREY`): what the model is
    given. picture [n, C, H, W], mask [1 or n, 1, H, W] -> [n, C, H, W]."""
    check_image(picture, "picture")
    keep = check_mask(mask, picture)
    return torch.where(keep, picture, torch.full_like(picture, FILL_GREY))

"""Masks for inpainting: which part of a picture to keep and which the model fills in.

A mask is a float tensor [1, 1, H, W] of 0s and 1s, **1 = keep, 0 = fill**, the convention of
:func:`.editing.inpaint`. :func:`mask_preset` makes the usual ones by name, :func:`rectangle`
any box, :func:`MaskPicker` lets the learner choose with sliders, :func:`masked` shows what is
left of the picture, and :func:`region_psnr` says how well the filled part came back.
"""

from __future__ import annotations

import io
from typing import Literal

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image, ImageDraw

from .forward import check_image
from .images import to_pil

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
# On-screen side of the picture in the mask picker.
PICKER_SIZE = 192


def rectangle(size: int, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """A mask [1, 1, size, size] that fills the box rows top..top+height-1, columns
    left..left+width-1 (clipped to the picture) and keeps the rest."""
    _check_size(size)
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
    _check_size(size)
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
    _check_mask(mask, picture)
    return torch.where(mask.bool(), picture, torch.full_like(picture, FILL_GREY))


def region_psnr(images: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of each image against the reference over the filled part only (mask 0):
    10 log10(1 / MSE) on [0, 1] pixels, as :func:`.sampling.psnr` but counting only the pixels
    the model drew (the kept part is pasted back, so it would only inflate the score).

    images [n, C, H, W], reference [1 or n, C, H, W], mask [1 or n, 1, H, W] (one per image or
    one for all); returns float64 [n].
    """
    check_image(images, "images")
    check_image(reference, "reference")
    _check_mask(mask, images)
    if bool(mask.flatten(1).all(1).any()):
        raise ValueError("a mask keeps every pixel (all 1): there is no filled part to score.")
    n, c = images.shape[:2]
    fill = (1 - mask.double().cpu()).expand(n, c, -1, -1)  # [n, C, H, W], 1 where filled
    x = ((images.detach().double().cpu() + 1) / 2).clamp(0, 1)
    ref = ((reference.detach().double().cpu() + 1) / 2).clamp(0, 1)
    mse = (((x - ref) ** 2) * fill).sum(dim=(1, 2, 3)) / fill.sum(dim=(1, 2, 3))
    return 10 * torch.log10(1.0 / mse)


class MaskPicker(widgets.VBox):
    """Choose a mask for ``picture``: a preset from a menu, or a rectangle with four sliders.

    The picture is shown with the part to fill greyed out, updated as you choose. Read the
    choice with ``picker.mask()`` ([1, 1, S, S], 1 = keep) in the next cell. Starts on
    ``start`` (``"centre_box"``), so running all cells unattended uses that.
    """

    def __init__(
        self,
        picture: torch.Tensor,
        start: Choice = "centre_box",
        seed: int = 0,
        display_size: int = PICKER_SIZE,
    ) -> None:
        check_image(picture, "picture")
        if picture.shape[-1] != picture.shape[-2]:
            raise ValueError(f"picture must be square, got {list(picture.shape[-2:])}.")
        self.picture, self.seed = picture[:1].detach().cpu(), seed
        size = picture.shape[-1]
        self.size, self.display_size = size, display_size
        self.menu = widgets.Dropdown(
            options=[*PRESETS, "rectangle"], value=start, description="fill"
        )
        quarter, half = size // 4, size // 2
        start_box = {"top": quarter, "left": quarter, "height": half, "width": half}
        self.sliders = {
            name: widgets.IntSlider(value=value, min=0, max=size, description=name)
            for name, value in start_box.items()
        }
        self.view = widgets.Image(format="png")
        self.note = widgets.HTML()
        for control in (self.menu, *self.sliders.values()):
            control.observe(lambda _: self.redraw(), names="value")
        super().__init__([self.menu, *self.sliders.values(), self.note, self.view])
        self.redraw()

    def mask(self) -> torch.Tensor:
        """The chosen mask [1, 1, S, S] (1 = keep, 0 = fill)."""
        if self.menu.value == "rectangle":
            s = {name: slider.value for name, slider in self.sliders.items()}
            return rectangle(self.size, s["top"], s["left"], s["height"], s["width"])
        return mask_preset(self.menu.value, self.size, seed=self.seed)

    def redraw(self) -> None:
        """Show the picture with the chosen part greyed, and how much of it is filled."""
        for slider in self.sliders.values():
            slider.disabled = self.menu.value != "rectangle"
        mask = self.mask()
        picture = to_pil(masked(self.picture, mask)[0])
        scale = max(1, self.display_size // self.size)
        buffer = io.BytesIO()
        picture.resize((self.size * scale,) * 2, Image.NEAREST).save(buffer, format="PNG")
        self.view.value = buffer.getvalue()
        filled = 1 - float(mask.mean())
        self.note.value = f"grey: the part the model fills ({filled:.0%} of the picture)"


def _check_size(size: int) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer of at least 2 pixels, got {size!r}.")


def _check_mask(mask: torch.Tensor, images: torch.Tensor) -> None:
    n, h, w = images.shape[0], images.shape[-2], images.shape[-1]
    if not (
        isinstance(mask, torch.Tensor)
        and mask.dim() == 4
        and mask.shape[0] in (1, n)
        and tuple(mask.shape[1:]) == (1, h, w)
    ):
        raise ValueError(
            f"mask must be a tensor [1 or {n}, 1, {h}, {w}] (1 = keep, 0 = fill), got "
            f"{list(getattr(mask, 'shape', [])) or type(mask).__name__}."
        )
    if not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError("mask must hold only 0 (fill) and 1 (keep).")

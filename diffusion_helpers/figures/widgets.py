"""Interactive widgets (ipywidgets) for the notebooks: sliders over the forward and the
reverse process, and the mask picker. Pictures are PNGs in ``ipywidgets.Image``, enlarged with
NEAREST so single pixels stay visible, and every widget fits a column ``WIDGET_WIDTH_PX`` wide.
A ``Play`` widget drives each slider through ``widgets.link``, which works in Colab.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from ..checks.tensors import check_image, one_picture
from ..forward import add_noise, add_noise_step
from ..pictures.images import to_numpy, to_pil
from ..pictures.masks import PRESETS, Choice, mask_preset, masked, rectangle
from ..reverse import Frame
from ..schedule import NoiseSchedule
from .animation import check_frames, image_grid

# Play speed: about 100 frames per sweep, 10 frames a second.
PLAY_FRAMES = 100
PLAY_INTERVAL_MS = 100
CHAIN_CHUNK = 100  # steps of the chain turned into pixels by one to_numpy call
# The width every widget fits in: a narrow notebook column (Colab beside a side panel).
WIDGET_WIDTH_PX = 800
WIDGET_MARGIN_PX = 4  # ipywidgets' CSS margin, --jp-widgets-margin (2 px), on each side
PICKER_SIZE = 192  # on-screen side of the picture in the mask picker


def forward_slider(
    x0: torch.Tensor, schedule: NoiseSchedule, seed: int = 0, display_size: int = 192
) -> widgets.VBox:
    """A slider over t showing x_t of one image ``x0`` ([C, H, W] or [1, C, H, W]) two ways,
    side by side: the closed form q(x_t | x_0) (DDPM eq. 4) with one fixed noise eps, and the
    chain q(x_t | x_{t-1}) (eq. 2), run once for all t; ``seed`` seeds both. A label gives t,
    abar_t and the weights of signal and noise. ``display_size``: the largest side of a shown
    picture in screen pixels (:func:`display_scale`).
    """
    x0 = one_picture(x0, "x0").detach().cpu()
    T = schedule.num_steps
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(x0.shape, generator=gen, dtype=x0.dtype)
    chain = _noising_chain(x0, schedule, gen)

    def closed_form(t: int) -> Image.Image:
        return to_pil(add_noise(x0, t, schedule, noise=eps)[0][0])  # eq. 4

    def label(t: int) -> str:
        abar = float(schedule.alpha_bars[t])
        return (
            f"t = {t} · ᾱ_t = {abar:.4f} · signal √ᾱ_t = {abar**0.5:.2f}, "
            f"noise √(1-ᾱ_t) = {(1 - abar) ** 0.5:.2f}"
        )

    views = [
        ("closed form q(x_t | x_0)", closed_form),
        ("step by step q(x_t | x_{t-1})", lambda t: Image.fromarray(chain[t])),
    ]
    return _explorer(T, "t", views, label, display_size, image_side=max(x0.shape[-2:]))


def reverse_explorer(frames: Sequence[Frame], display_size: int = 192) -> widgets.VBox:
    """A slider over the frames :func:`.sampling.sample` captures (``every=...``): x_t beside
    the predicted x_0 at that step, each batch in a near-square grid (:func:`grid_columns`),
    one image at most ``display_size`` screen pixels.
    """
    K = check_frames(frames)
    n, _, h, w = frames[0].x_t.shape
    ncols = grid_columns(n)

    def label(k: int) -> str:
        final = " (final image)" if k == K - 1 else ""
        return f"step {k + 1}/{K} · t = {frames[k].t}{final}"

    views = [
        ("x_t (what the sampler holds)", lambda k: to_pil(image_grid(frames[k].x_t, ncols))),
        ("predicted x_0 at this step", lambda k: to_pil(image_grid(frames[k].x0_pred, ncols))),
    ]
    return _explorer(K, "frame", views, label, display_size, image_side=max(h, w))


def grid_columns(n: int) -> int:
    """Columns of a near-square grid of n images: ceil(sqrt(n)) (4 -> 2, 8 -> 3, 16 -> 4)."""
    return math.ceil(math.sqrt(n))


def display_scale(image_side: int, picture_width: int, display_size: int, max_width: int) -> float:
    """How much to scale a picture (images ``image_side`` px each) so that one image is at
    most ``display_size`` px and the picture at most ``max_width`` px wide. An enlargement is
    rounded down to a whole number, so every image pixel is the same number of screen pixels.
    """
    factor = min(display_size / image_side, max_width / picture_width)
    return float(math.floor(factor)) if factor >= 1 else factor


def fitted_size(
    picture: Image.Image, image_side: int, display_size: int, max_width: int
) -> tuple[int, int]:
    """The (width, height) on screen of ``picture`` scaled by :func:`display_scale`."""
    factor = display_scale(image_side, picture.width, display_size, max_width)
    return max(1, round(picture.width * factor)), max(1, round(picture.height * factor))


def _explorer(
    count: int,
    description: str,
    views: Sequence[tuple[str, Callable[[int], Image.Image]]],
    label: Callable[[int], str],
    display_size: int,
    image_side: int,
) -> widgets.VBox:
    """Slider + Play over 0..count-1, a label, and the captioned views side by side."""
    if not isinstance(display_size, int) or display_size < 1:
        raise ValueError(f"display_size must be an integer >= 1, got {display_size!r}.")
    slider = widgets.IntSlider(value=0, min=0, max=count - 1, description=description)
    play = widgets.Play(
        value=0, min=0, max=count - 1, step=max(1, count // PLAY_FRAMES), interval=PLAY_INTERVAL_MS
    )
    widgets.link((play, "value"), (slider, "value"))
    text = widgets.HTML()
    images = [widgets.Image(format="png") for _ in views]
    max_width = WIDGET_WIDTH_PX // len(views) - WIDGET_MARGIN_PX
    sizes = [fitted_size(picture(0), image_side, display_size, max_width) for _, picture in views]

    def update(change: dict) -> None:
        k = int(change["new"])
        for image, (_, picture), (width, height) in zip(images, views, sizes):
            show_png(image, picture(k), width, height)
        text.value = label(k)

    slider.observe(update, names="value")
    update({"new": 0})
    panels = [
        widgets.VBox([widgets.HTML(f"<b>{caption}</b>"), image], layout={"flex": "0 0 auto"})
        for image, (caption, _) in zip(images, views)
    ]
    return widgets.VBox([widgets.HBox([play, slider]), text, widgets.HBox(panels)])


def _noising_chain(x0: torch.Tensor, schedule: NoiseSchedule, gen: torch.Generator) -> np.ndarray:
    """x_0, ..., x_{T-1} of the chain q(x_t | x_{t-1}) (eq. 2) as uint8 pixels [T, H, W(, C)]."""
    pixels, batch, x = [], [], x0
    for t in range(schedule.num_steps):
        x = add_noise_step(x, t, schedule, generator=gen)  # sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) z
        batch.append(x[0])
        if len(batch) == CHAIN_CHUNK or t == schedule.num_steps - 1:
            chunk = to_numpy(torch.stack(batch))  # [B, H, W(, C)], but one image loses the B
            pixels.append(chunk if len(batch) > 1 else chunk[None])
            batch = []
    return np.concatenate(pixels)


def show_png(image: widgets.Image, picture: Image.Image, width: int, height: int) -> None:
    """Show ``picture`` in ``image`` at width x height: enlarged with NEAREST (crisp pixels),
    shrunk with BOX (the mean of the pixels covered: no row or 1 px gap dropped)."""
    resample = Image.NEAREST if width >= picture.width else Image.BOX
    buffer = io.BytesIO()
    picture.resize((width, height), resample).save(buffer, format="PNG")
    image.value = buffer.getvalue()
    image.width, image.height = str(width), str(height)  # no squeezing by the page


class MaskPicker(widgets.VBox):
    """Choose a mask for ``picture``: a preset from a menu, or a rectangle with four sliders;
    the picture is shown with the part to fill greyed out. Read it with ``picker.mask()`` in
    the next cell. Starts on ``start``, so running all cells unattended uses that.
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
        self.size, self.display_size = picture.shape[-1], display_size
        self.menu = widgets.Dropdown(
            options=[*PRESETS, "rectangle"], value=start, description="fill"
        )
        quarter, half = self.size // 4, self.size // 2
        start_box = {"top": quarter, "left": quarter, "height": half, "width": half}
        self.sliders = {
            name: widgets.IntSlider(value=value, min=0, max=self.size, description=name)
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
            return rectangle(self.size, **{name: s.value for name, s in self.sliders.items()})
        return mask_preset(self.menu.value, self.size, seed=self.seed)

    def redraw(self) -> None:
        """Show the picture with the chosen part greyed, and how much of it is filled."""
        for slider in self.sliders.values():
            slider.disabled = self.menu.value != "rectangle"
        mask = self.mask()
        side = self.size * max(1, self.display_size // self.size)
        show_png(self.view, to_pil(masked(self.picture, mask)[0]), side, side)
        filled = 1 - float(mask.mean())
        self.note.value = f"grey: the part the model fills ({filled:.0%} of the picture)"

"""Interactive sliders (ipywidgets) for the notebooks: the forward process and the reverse one.

Each returns an ``ipywidgets.VBox``. The pictures are PNG bytes in ``ipywidgets.Image``, made by
:func:`.pictures.images.to_pil` and upscaled with NEAREST so single pixels stay visible. A ``Play`` widget
drives each slider through ``widgets.link`` (a Python-side link, which works in Colab), and
every update happens in a Python ``observe`` callback on the slider's value.

Every widget fits a notebook column ``WIDGET_WIDTH_PX`` wide at any batch size: a batch is
shown as a near-square grid (:func:`grid_columns`), and the pictures of one row of panels
shrink together until they fit (:func:`display_scale`).
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

from ..checks.tensors import check_image
from ..forward import add_noise, add_noise_step
from ..pictures.images import to_numpy, to_pil
from ..pictures.masks import PRESETS, Choice, mask_preset, masked, rectangle
from ..reverse import Frame
from ..schedule import NoiseSchedule
from .animation import check_frames, image_grid

# Play speed: about 100 frames per sweep, 10 frames a second.
PLAY_FRAMES = 100
PLAY_INTERVAL_MS = 100
# Steps of the chain converted to pixels at once (one to_numpy call per chunk is much faster than
# one per step; 100 steps of a 64 px image are 5 MB of floats).
CHAIN_CHUNK = 100
# The width every widget fits in: a narrow notebook output column (Colab or Jupyter in a laptop
# window beside a side panel). The panels of one row, their margins included, stay within it.
WIDGET_WIDTH_PX = 800
# ipywidgets' CSS gives every widget a margin of --jp-widgets-margin (2 px) on each side.
WIDGET_MARGIN_PX = 4


def forward_slider(
    x0: torch.Tensor, schedule: NoiseSchedule, seed: int = 0, display_size: int = 192
) -> widgets.VBox:
    """A slider over t showing x_t of one image two ways, side by side:

    - the closed form q(x_t | x_0) (DDPM eq. 4) with one fixed noise eps for every t, and
    - the step-by-step chain q(x_t | x_{t-1}) (eq. 2), run once for all t with a fixed seed
      (stored as uint8 pictures: 1000 steps of a 64 px image take 12 MB).

    A label gives t, abar_t, and the weights of signal and noise.

    Args:
        x0: the image, [C, H, W] or [1, C, H, W] in [-1, 1].
        seed: seeds both the fixed eps and the chain's noise.
        display_size: the largest side of a shown picture in screen pixels; see
            :func:`display_scale` for how it is reached and how both pictures fit
            ``WIDGET_WIDTH_PX``.
    """
    x0 = _one_image(x0, "x0")
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
    """A slider over captured frames of :func:`.sampling.sample` (``every=...``): x_t beside the
    model's predicted x_0 at that step, with a label "step k/K · t = ...".

    The n images of the batch are shown in a near-square grid of :func:`grid_columns` (n)
    columns (8 images: 3, 3 and 2). ``display_size`` is the largest side of one image in
    screen pixels; both grids shrink together so that they fit ``WIDGET_WIDTH_PX`` side by
    side (:func:`display_scale`).
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
    """How much to scale a picture (one image, or a grid of images ``image_side`` px each) so
    that one image is at most ``display_size`` px and the picture at most ``max_width`` px wide.

    An upscale is rounded down to a whole number, so every image pixel becomes the same number
    of screen pixels (NEAREST at 2.5x would draw pixels alternately 2 and 3 wide); a picture
    that must shrink is shrunk exactly.
    """
    factor = min(display_size / image_side, max_width / picture_width)
    return float(math.floor(factor)) if factor >= 1 else factor


def _explorer(
    count: int,
    description: str,
    views: Sequence[tuple[str, Callable[[int], Image.Image]]],
    label: Callable[[int], str],
    display_size: int,
    image_side: int,
) -> widgets.VBox:
    """Slider + Play over 0..count-1, one captioned Image per view, and an HTML label.

    The views sit side by side and share ``WIDGET_WIDTH_PX`` equally, margins included; each is
    scaled by :func:`display_scale` once, from its first picture (pictures keep their size).
    """
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
    sizes = []
    for _, picture in views:
        first = picture(0)
        factor = display_scale(image_side, first.width, display_size, max_width)
        sizes.append((max(1, round(first.width * factor)), max(1, round(first.height * factor))))

    def update(change: dict) -> None:
        k = int(change["new"])
        for image, (_, picture), (width, height) in zip(images, views, sizes):
            image.value = png_bytes(picture(k), width, height)
            image.width, image.height = str(width), str(height)  # no squeezing by the page
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


def _one_image(x: torch.Tensor, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor) and x.dim() == 3:
        x = x.unsqueeze(0)
    check_image(x, name)
    if x.shape[0] != 1:
        raise ValueError(
            f"{name} must be one image [C, H, W] or [1, C, H, W], got {list(x.shape)}."
        )
    return x.detach().cpu()


def png_bytes(picture: Image.Image, width: int, height: int) -> bytes:
    """PNG bytes of ``picture`` scaled to width x height: enlarged with NEAREST, so pixels stay
    crisp, and shrunk with BOX (each screen pixel the mean of the image pixels it covers), so
    no row, column or 1 px gap of the grid is dropped."""
    resample = Image.NEAREST if width >= picture.width else Image.BOX
    buffer = io.BytesIO()
    picture.resize((width, height), resample).save(buffer, format="PNG")
    return buffer.getvalue()


# On-screen side of the picture in the mask picker.
PICKER_SIZE = 192


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

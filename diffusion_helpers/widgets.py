"""Interactive sliders (ipywidgets) for the notebooks: the forward process and the reverse one.

Each returns an ``ipywidgets.VBox``. The pictures are PNG bytes in ``ipywidgets.Image``, made by
:func:`.images.to_pil` and upscaled with NEAREST so single pixels stay visible. A ``Play`` widget
drives each slider through ``widgets.link`` (a Python-side link, which works in Colab), and
every update happens in a Python ``observe`` callback on the slider's value.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Callable

import ipywidgets as widgets
import numpy as np
import torch
from PIL import Image

from .forward import add_noise, add_noise_step, check_image
from .images import to_numpy, to_pil
from .sampling import Frame
from .schedule import NoiseSchedule
from .viz import check_frames, side_by_side

# Play speed: about 100 frames per sweep, 10 frames a second.
PLAY_FRAMES = 100
PLAY_INTERVAL_MS = 100
# Steps of the chain converted to pixels at once (one to_numpy call per chunk is much faster than
# one per step; 100 steps of a 64 px image are 5 MB of floats).
CHAIN_CHUNK = 100


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
        display_size: the side of the shown pictures in pixels.
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
    return _explorer(T, "t", views, label, display_size)


def reverse_explorer(frames: Sequence[Frame], display_size: int = 192) -> widgets.VBox:
    """A slider over captured frames of :func:`.sampling.sample` (``every=...``): x_t beside the
    model's predicted x_0 at that step, with a label "step k/K · t = ...".

    The images of the batch are shown side by side; ``display_size`` is the height in pixels.
    """
    K = check_frames(frames)

    def label(k: int) -> str:
        final = " (final image)" if k == K - 1 else ""
        return f"step {k + 1}/{K} · t = {frames[k].t}{final}"

    views = [
        ("x_t (what the sampler holds)", lambda k: to_pil(side_by_side(frames[k].x_t))),
        ("predicted x_0 at this step", lambda k: to_pil(side_by_side(frames[k].x0_pred))),
    ]
    return _explorer(K, "frame", views, label, display_size)


def _explorer(
    count: int,
    description: str,
    views: Sequence[tuple[str, Callable[[int], Image.Image]]],
    label: Callable[[int], str],
    display_size: int,
) -> widgets.VBox:
    """Slider + Play over 0..count-1, one captioned Image per view, and an HTML label."""
    if not isinstance(display_size, int) or display_size < 1:
        raise ValueError(f"display_size must be an integer >= 1, got {display_size!r}.")
    slider = widgets.IntSlider(value=0, min=0, max=count - 1, description=description)
    play = widgets.Play(
        value=0, min=0, max=count - 1, step=max(1, count // PLAY_FRAMES), interval=PLAY_INTERVAL_MS
    )
    widgets.link((play, "value"), (slider, "value"))
    text = widgets.HTML()
    images = [widgets.Image(format="png") for _ in views]

    def update(change: dict) -> None:
        k = int(change["new"])
        for image, (_, picture) in zip(images, views):
            shown = picture(k)
            width = max(1, round(shown.width * display_size / shown.height))
            image.value = _png(shown, width, display_size)
            image.width, image.height = str(width), str(display_size)  # no squeezing by the page
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


def _png(picture: Image.Image, width: int, height: int) -> bytes:
    """PNG bytes of ``picture`` scaled (NEAREST, so pixels stay crisp) to width x height."""
    buffer = io.BytesIO()
    picture.resize((width, height), Image.NEAREST).save(buffer, format="PNG")
    return buffer.getvalue()

"""The reverse process over time, from the :class:`.reverse.Frame` list that
``sample(..., every=k)`` captures: an animation for the notebook and a GIF. Also the two
drawing helpers the other figures share: :func:`image_grid` and :func:`imshow_pixels`.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from matplotlib.animation import FuncAnimation
from matplotlib.figure import Figure
from PIL import Image, ImageOps

from ..pictures.images import to_numpy, to_pil
from ..reverse import Frame
from ..storage.outputs import write_output

DEFAULT_MAX_FRAMES = 60  # enough to look smooth
# to_jshtml stores every frame as a base64 PNG, and noise barely compresses: frames are capped
# to keep an animation under half of matplotlib's 20 MB animation.embed_limit.
EMBED_BUDGET_BYTES = 10_000_000
ANIMATION_HEIGHT_PX = 128  # one image on screen: 64 px images drawn 2x, 32 px 4x
# The GIF: the first 4 pictures, and as many frames as keep it near 2 MB; frames of noise cost
# about 0.65 bytes a pixel (measured).
GIF_MAX_IMAGES = 4
GIF_BUDGET_BYTES = 2_000_000
GIF_BYTES_PER_PIXEL = 0.65


def check_frames(frames: Sequence[Frame]) -> int:
    """Raise ``ValueError`` unless ``frames`` is a non-empty list of Frame; return its length."""
    if not frames or not all(isinstance(f, Frame) for f in frames):
        raise ValueError(
            "frames must be a non-empty list of Frame: run sample(..., every=10) and pass "
            "result.frames."
        )
    return len(frames)


def frame_indices(count: int, max_frames: int) -> list[int]:
    """At most ``max_frames`` indices into ``count`` frames, the first and the last kept,
    denser towards the end, where the picture appears: index j is round((count-1) (1 - (1-u)^2))
    with u = j / (max_frames-1), so the gaps shrink from twice the average to under one frame
    (repeats are kept once). All ``count`` indices when ``count <= max_frames``.
    """
    if max_frames < 2:
        raise ValueError(
            f"max_frames must be >= 2 (the first and the last frame), got {max_frames}."
        )
    if count <= max_frames:
        return list(range(count))
    u = np.linspace(0.0, 1.0, max_frames)
    return sorted(set(((count - 1) * (1 - (1 - u) ** 2)).round().astype(int).tolist()))


def animate(
    frames: Sequence[Frame],
    max_frames: int = DEFAULT_MAX_FRAMES,
    show_x0: bool = True,
    interval_ms: int = 100,
    scale: Optional[int] = None,
) -> FuncAnimation:
    """Animate the reverse process: x_t of the batch in a row, the predicted x_0 below it.

    At most ``max_frames`` frames (:func:`frame_indices`), fewer where the HTML would pass
    ``EMBED_BUDGET_BYTES``; every image pixel drawn ``scale`` x ``scale`` screen pixels
    (default: an image at most ``ANIMATION_HEIGHT_PX`` high).
    """
    count = check_frames(frames)
    rows = [("x_t", lambda f: f.x_t)] + ([("pred. x_0", lambda f: f.x0_pred)] * show_x0)
    fig, shown, title = _animation_figure([(name, pick(frames[0])) for name, pick in rows], scale)
    # The first frame, x_T, is pure noise, which PNG barely compresses: the largest frame.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    frame_bytes = len(buffer.getvalue()) * 4 / 3  # base64 in the HTML
    most = min(max_frames, max(2, int(EMBED_BUDGET_BYTES // frame_bytes)))
    picked = [frames[i] for i in frame_indices(count, most)]

    def update(k: int) -> list:
        for artist, (_, pick) in zip(shown, rows):
            artist.set_data(to_numpy(side_by_side(pick(picked[k]))))
        title.set_text(f"t = {picked[k].t}" + (" · final image" if k == len(picked) - 1 else ""))
        return [*shown, title]

    update(0)
    return FuncAnimation(fig, update, frames=len(picked), interval=interval_ms, blit=False)


def animation_html(frames: Sequence[Frame], **kwargs: object) -> str:
    """The :func:`animate` animation as HTML/JS, for ``IPython.display.HTML(...)``."""
    return animate(frames, **kwargs).to_jshtml()


def save_gif(
    frames: Sequence[Frame],
    path: Union[str, Path],
    duration_ms: int = 80,
    scale: Optional[int] = None,
    max_frames: int = DEFAULT_MAX_FRAMES,
    hold_last_ms: int = 1500,
    max_images: int = GIF_MAX_IMAGES,
) -> Path:
    """Write x_t of each frame as a looping GIF; returns the path written.

    The first ``max_images`` images side by side, each upscaled ``scale`` times with NEAREST
    (default: about ``ANIMATION_HEIGHT_PX`` high); at most ``max_frames`` frames, fewer where
    ``GIF_BUDGET_BYTES`` asks it; the last held ``hold_last_ms``. Written by
    :func:`.storage.outputs.write_output`: a file at ``path`` that we did not write is kept
    and the GIF goes to a fresh name beside it (``reverse-2.gif``).
    """
    check_frames(frames)
    side = frames[0].x_t.shape[-1]
    scale = max(1, ANIMATION_HEIGHT_PX // side) if scale is None else scale
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}.")
    shown = min(len(frames[0].x_t), max(1, int(max_images)))
    width = (shown * (side + 1) - 1) * scale
    affordable = int(GIF_BUDGET_BYTES / (GIF_BYTES_PER_PIXEL * width * side * scale))
    picked = [frames[i] for i in frame_indices(len(frames), min(max_frames, max(2, affordable)))]
    pictures = [
        ImageOps.scale(to_pil(side_by_side(frame.x_t[:shown])), scale, Image.NEAREST)
        for frame in picked
    ]
    durations = [duration_ms] * (len(pictures) - 1) + [hold_last_ms]

    def write(f: BinaryIO) -> None:
        pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=durations, loop=0)  # fmt: skip

    return write_output(path, write, "GIF")


def image_grid(batch: torch.Tensor, ncols: int, pad: int = 1) -> torch.Tensor:
    """Images [n, C, H, W] in [-1, 1] as one image [C, r H + (r-1) pad, k W + (k-1) pad],
    k = min(ncols, n) columns and r = ceil(n / k) rows, with white gaps and leftover cells.
    Built by torchvision's ``make_grid``, less its outer border and its grey-to-RGB copy."""
    from torchvision.utils import make_grid  # here: importing torchvision takes about 1.3 s

    if batch.dim() != 4 or len(batch) == 0:
        raise ValueError(f"batch must be images [n, C, H, W] with n >= 1, got {list(batch.shape)}.")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}.")
    if len(batch) == 1:  # make_grid returns a single image as it is, unpadded
        return batch[0]
    grid = make_grid(batch, nrow=ncols, padding=pad, pad_value=1.0)  # 1.0 is white in [-1, 1]
    _, height, width = grid.shape
    return grid[: batch.shape[1], pad : height - pad, pad : width - pad]


def side_by_side(batch: torch.Tensor, pad: int = 1) -> torch.Tensor:
    """Images [n, C, H, W] in one row: one image [C, H, n W + (n-1) pad], white gaps."""
    return image_grid(batch, ncols=len(batch), pad=pad)


def imshow_pixels(ax: object, pixels: np.ndarray) -> object:
    """Show uint8 pixels [H, W, 3] or [H, W] (grey) on matplotlib axes without resampling blur."""
    cmap = "gray" if pixels.ndim == 2 else None
    return ax.imshow(pixels, cmap=cmap, vmin=0, vmax=255, interpolation="nearest")


def _animation_figure(
    rows: Sequence[tuple[str, torch.Tensor]], scale: Optional[int]
) -> tuple[Figure, list, object]:
    """A figure of one named row per batch, each image pixel scale x scale screen pixels:
    (figure, image artists, title)."""
    h, w = to_numpy(side_by_side(rows[0][1])).shape[:2]
    scale = scale or max(1, ANIMATION_HEIGHT_PX // h)
    left, top, gap, dpi = 24, 26, 6, 100  # pixels for the row labels, the title, between rows
    width_px = max(left + w * scale + 4, 200)  # room for the title under small images
    height_px = top + len(rows) * (h * scale + gap)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    shown = []
    for r, (name, batch) in enumerate(rows):
        bottom = height_px - top - (r + 1) * h * scale - r * gap
        ax = fig.add_axes(
            [left / width_px, bottom / height_px, w * scale / width_px, h * scale / height_px]
        )
        shown.append(imshow_pixels(ax, to_numpy(side_by_side(batch))))
        ax.set(xticks=[], yticks=[])
        ax.set_ylabel(name, fontsize=9)
    title = fig.text(0.5, 1 - 4 / height_px, "", ha="center", va="top", fontsize=10)
    return fig, shown, title

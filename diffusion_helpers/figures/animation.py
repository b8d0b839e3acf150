"""Pictures of the reverse process over time: an animation for the notebook and a GIF.

Both take the :class:`.sampling.Frame` list that ``sample(..., every=k)`` captures (one frame
every k steps, from t = T-1 down to the finished images) and keep at most a few dozen of them
with :func:`frame_indices`, denser at the end of the run, where the picture appears.

This module also holds the two drawing helpers that the static figures of :mod:`.figures.plots` and the
sliders of :mod:`.widgets` share with it: :func:`image_grid` (a batch as one picture, built by
torchvision's ``make_grid``) and :func:`imshow_pixels`. Keeping them here lets both import
this module without it importing either of them.
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
from PIL import Image

from ..pictures.images import to_numpy, to_pil
from ..reverse import Frame
from ..storage.outputs import write_output

# Frames in an animation or GIF: enough to look smooth.
DEFAULT_MAX_FRAMES = 60
# An animation embedded by to_jshtml stores every frame as a base64 PNG, and PNGs of noise
# barely compress. Frames are capped so that the animation stays under this budget, half of
# matplotlib's 20 MB animation.embed_limit, judged by the size of its first (noisiest) frame.
EMBED_BUDGET_BYTES = 10_000_000
# Default on-screen height of one image in an animation: 64 px images are drawn 2x, 32 px 4x.
ANIMATION_HEIGHT_PX = 128
# The reverse GIF: the first 4 pictures, and as many frames as keep it near 2 MB. Frames of
# noise cost about 0.65 bytes a pixel in a GIF (measured: 60 frames of 4 noised 64 px pictures
# at 2x, 2.48 MB); 8 pictures at 3x made the 64 px GIF 7.9 MB.
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
    denser towards the end.

    Index j of ``max_frames`` is round((count-1) (1 - (1-u)^2)) with u = j / (max_frames-1),
    so the gap between picked frames shrinks steadily from about twice the average at the start
    to under one frame at the end (indices that round to the same frame are kept once, so
    fewer than ``max_frames`` may come back). Frames run from t = T-1 to t = 0, and the
    reverse process changes little while x_t is still mostly noise and most in its last few
    hundred steps (the linear schedule's abar_t is below 0.05 for t > 600): evenly spaced
    frames would spend half an animation on pure noise.
    All ``count`` indices are returned when ``count <= max_frames``.
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
    """Animate the reverse process: x_t (and the predicted x_0 below it) over the frames.

    Keeps at most ``max_frames`` frames, the first and the last among them, picked denser
    towards the end of the run by :func:`frame_indices`, and fewer if the animation embedded by
    ``to_jshtml`` could pass ``EMBED_BUDGET_BYTES`` (half of matplotlib's 20 MB
    ``animation.embed_limit``). The images of the batch are shown side by side in one row. Each
    image pixel is drawn as ``scale`` x ``scale`` screen pixels (default: the largest that keeps
    an image at most ``ANIMATION_HEIGHT_PX`` high). In a notebook, show it with
    ``IPython.display.HTML(animation_html(frames))``.
    """
    count = check_frames(frames)
    rows = [("x_t", lambda f: f.x_t)] + ([("pred. x_0", lambda f: f.x0_pred)] * show_x0)
    fig, shown, title = _animation_figure([pick(frames[0]) for _, pick in rows], scale)
    # The first frame, x_T, is pure noise, which PNG barely compresses: the largest frame.
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    frame_bytes = len(buffer.getvalue()) * 4 / 3  # base64 in the HTML
    most = min(max_frames, max(2, int(EMBED_BUDGET_BYTES // frame_bytes)))
    picked = [frames[i] for i in frame_indices(count, most)]

    def update(k: int) -> list:
        for artist, (_, pick) in zip(shown, rows):
            artist.set_data(to_numpy(side_by_side(pick(picked[k]))))
        title.set_text(_frame_label(picked, k))
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
    """Write the reverse process (x_t of each frame, images side by side) as a looping GIF.

    The first ``max_images`` images of the batch are shown, each upscaled ``scale`` times with
    NEAREST (pixels stay sharp; None: to about ANIMATION_HEIGHT_PX, so 64 px 2x and 32 px 4x).
    At most ``max_frames`` frames are kept, fewer where GIF_BUDGET_BYTES asks it (noisy frames
    barely compress: the budget keeps a GIF near 2 MB whatever the size), picked denser towards
    the end of the run by :func:`frame_indices`; the last (the finished images) is held for
    ``hold_last_ms``. Pillow merges consecutive frames that are identical in pixels, so a run
    whose last steps change nothing visible gives fewer GIF frames. Written by
    :func:`.storage.outputs.write_output`: a file at ``path`` that we did not write (or a
    symlink) is kept, and the GIF goes to a fresh name beside it (``reverse-2.gif``). Returns
    the path written.
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
    pictures = []
    for frame in picked:
        picture = to_pil(side_by_side(frame.x_t[:shown]))
        pictures.append(
            picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
        )
    durations = [duration_ms] * (len(pictures) - 1) + [hold_last_ms]

    def write(f: BinaryIO) -> None:
        pictures[0].save(f, format="GIF", save_all=True, append_images=pictures[1:],
                         duration=durations, loop=0)  # fmt: skip

    return write_output(path, write, "GIF")


def image_grid(batch: torch.Tensor, ncols: int, pad: int = 1) -> torch.Tensor:
    """Images [n, C, H, W] in [-1, 1] as one image, ``ncols`` to a row, white gaps of ``pad``
    pixels between them: [C, r H + (r-1) pad, k W + (k-1) pad] for k = min(ncols, n) columns
    and r = ceil(n / k) rows. Cells left over in the last row are white.

    Built by ``torchvision.utils.make_grid``, less two things it does that we do not want: it
    pads the outside too (cropped off here) and repeats a grey channel into RGB (the first C
    channels are kept).
    """
    # Imported here, not at the top: importing torchvision takes about 1.3 s (measured with
    # python -X importtime on a 2-core CPU machine), which every other use of the package would pay for nothing.
    from torchvision.utils import make_grid

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
    grey = pixels.ndim == 2
    return ax.imshow(
        pixels, cmap="gray" if grey else None, vmin=0, vmax=255, interpolation="nearest"
    )


def _animation_figure(
    batches: Sequence[torch.Tensor], scale: Optional[int]
) -> tuple[Figure, list, object]:
    """A figure sized in whole pixels with one row per batch (the images side by side), each
    image pixel drawn as scale x scale screen pixels; returns (figure, image artists, title)."""
    names = ["x_t", "pred. x_0"]
    h, w = to_numpy(side_by_side(batches[0])).shape[:2]
    scale = scale or max(1, ANIMATION_HEIGHT_PX // h)
    left, top, gap, dpi = 24, 26, 6, 100  # pixels for the row labels, the title, between rows
    width_px = max(left + w * scale + 4, 200)  # room for the title under small images
    height_px = top + len(batches) * (h * scale + gap)
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    shown = []
    for r, batch in enumerate(batches):
        bottom = height_px - top - (r + 1) * h * scale - r * gap
        ax = fig.add_axes(
            [left / width_px, bottom / height_px, w * scale / width_px, h * scale / height_px]
        )
        shown.append(imshow_pixels(ax, to_numpy(side_by_side(batch))))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(names[r], fontsize=9)
    title = fig.text(0.5, 1 - 4 / height_px, "", ha="center", va="top", fontsize=10)
    return fig, shown, title


def _frame_label(frames: Sequence[Frame], k: int) -> str:
    """The title of frame k: "t = 250", or "t = 0 · final image" for the last frame."""
    final = " · final image" if k == len(frames) - 1 else ""
    return f"t = {frames[k].t}{final}"

"""Tests of animation.py: frame picking, the animation, the GIF and the image grid (Agg)."""

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_helpers.figures import animation  # noqa: E402
from diffusion_helpers.figures.animation import (
    animate,  # noqa: E402
    frame_indices,  # noqa: E402
    image_grid,  # noqa: E402
    save_gif,  # noqa: E402
    side_by_side,  # noqa: E402
)
from diffusion_helpers.reverse import Frame  # noqa: E402

EMBED_LIMIT_BYTES = 20 * 1024 * 1024  # matplotlib's default animation.embed_limit (20 MB)


def synthetic_frames(count, n=2, size=16, seed=0):
    """Frames from T-1 down to 0 whose x_t are pure noise (the worst case for PNG size)."""
    gen = torch.Generator().manual_seed(seed)
    ts = np.linspace(count - 1, 0, count).round().astype(int)
    return [
        Frame(int(t), torch.randn(n, 3, size, size, generator=gen), torch.zeros(n, 3, size, size))
        for t in ts
    ]


# ---------------------------------------------------------------- frame picking


@pytest.mark.parametrize("count,most", [(5, 10), (1000, 60), (61, 60), (1000, 2)])
def test_frame_indices_keep_ends(count, most):
    idx = frame_indices(count, most)
    assert idx[0] == 0 and idx[-1] == count - 1
    assert len(idx) <= min(count, most) and idx == sorted(set(idx))
    if count > most > 4:  # denser where the picture appears: at the end of the run
        gaps = np.diff(idx)
        assert gaps[-len(gaps) // 4 :].mean() < gaps[: len(gaps) // 4].mean()


def test_frame_indices_gaps_shrink_from_twice_the_average():
    idx = frame_indices(1000, 60)
    gaps = np.diff(idx)
    average = 999 / 59
    # The docstring's promise: the first gap about twice the average (2 (1 - u) at u = 0,
    # 33.6 before rounding), the last ones a single frame.
    assert 1.9 * average < gaps[0] < 2.1 * average
    assert gaps[-1] == 1
    assert (np.diff(gaps) <= 1).all()  # never growing, up to rounding


def test_frames_must_be_frames(tmp_path):
    with pytest.raises(ValueError, match="every"):
        save_gif([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="every"):
        animate([torch.zeros(1, 3, 8, 8)])


# ---------------------------------------------------------------- animation and GIF


def test_animation_of_1000_frames_stays_under_embed_limit():
    frames = synthetic_frames(1000, n=4, size=32)  # all noise: PNGs barely compress
    anim = animate(frames)
    used = len(list(anim.new_frame_seq()))
    assert 2 <= used <= animation.DEFAULT_MAX_FRAMES
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns (and drops frames) past the limit
        html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == used
    assert len(html) < EMBED_LIMIT_BYTES
    print(f"{used} frames, {len(html) / 1e6:.1f} MB")
    assert len(anim._fig.axes) == 2  # x_t and the predicted x_0
    small = animate(frames[:3], show_x0=False)
    assert small.to_jshtml().count("data:image/png;base64") == 3
    assert len(small._fig.axes) == 1


def test_save_gif_frames_loop_and_size(tmp_path):
    frames = synthetic_frames(25, n=2, size=8)
    path = save_gif(frames, tmp_path / "sub" / "reverse.gif", scale=3, max_frames=10)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(frame_indices(25, 10))  # one per picked frame
        assert gif.info["loop"] == 0
        assert gif.size == ((2 * 8 + 1) * 3, 8 * 3)  # two images and a 1 px gap, upscaled 3x
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == 1500  # the finished images are held longer


# ---------------------------------------------------------------- image grid


def hand_row(batch, pad):
    """The row side_by_side built by hand before it used make_grid: images and white gaps."""
    gap = torch.ones(batch.shape[1], batch.shape[2], pad)
    pieces = [p for x in batch for p in (x, gap)][:-1]
    return torch.cat(pieces, dim=-1)


@pytest.mark.parametrize("channels,pad", [(3, 1), (1, 1), (3, 2), (3, 0)])
def test_side_by_side_matches_the_hand_written_row(channels, pad):
    batch = torch.rand(3, channels, 5, 7, generator=torch.Generator().manual_seed(0)) * 2 - 1
    row = side_by_side(batch, pad=pad)
    assert row.shape == (channels, 5, 3 * 7 + 2 * pad)  # grey stays one channel
    assert torch.equal(row, hand_row(batch, pad))
    assert torch.equal(side_by_side(batch[:1]), batch[0])  # one image: itself


def test_image_grid_rows_columns_and_blank_cells():
    values = torch.linspace(-0.9, 0.5, 5)  # image i is flat at values[i]; white is 1.0
    batch = values[:, None, None, None].expand(5, 3, 4, 6).clone()
    grid = image_grid(batch, ncols=2)
    assert grid.shape == (3, 3 * 4 + 2, 2 * 6 + 1)  # 3 rows of 2, 1 px gaps, no outer border
    for i, value in enumerate(values):
        r, c = divmod(i, 2)
        cell = grid[:, r * 5 : r * 5 + 4, c * 7 : c * 7 + 6]
        assert torch.equal(cell, torch.full_like(cell, float(value))), i
    assert (grid[:, 10:, 7:] == 1).all()  # the empty sixth cell is white
    assert (grid[:, 4, :] == 1).all() and (grid[:, :, 6] == 1).all()  # the gaps
    assert image_grid(batch, ncols=10).shape == (3, 4, 5 * 6 + 4)  # fewer than ncols
    with pytest.raises(ValueError, match="ncols"):
        image_grid(batch, ncols=0)
    with pytest.raises(ValueError, match="batch"):
        image_grid(batch[0], ncols=2)


def test_save_gif_keeps_a_file_that_is_not_ours_and_a_symlink(tmp_path):
    """The GIF goes to a fresh name beside them, and save_gif returns the name it used."""
    frames = synthetic_frames(3)
    (tmp_path / "reverse.gif").write_bytes(b"the user's own GIF")
    written = save_gif(frames, tmp_path / "reverse.gif")
    assert written == tmp_path / "reverse-2.gif"
    assert (tmp_path / "reverse.gif").read_bytes() == b"the user's own GIF"
    with Image.open(written) as gif:
        assert gif.n_frames == 3
    assert save_gif(frames, tmp_path / "reverse.gif") == written  # ours: replaced
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not a GIF")
    (tmp_path / "link.gif").symlink_to(outside)
    assert save_gif(frames, tmp_path / "link.gif") == tmp_path / "link-2.gif"
    assert outside.read_text() == "not a GIF"


def test_the_64_px_reverse_gif_stays_near_2_mb(tmp_path):
    """100 frames of 8 noised 64 px pictures (the notebooks' run: every=10): before the cap
    the GIF was 7.9 MB. Now 4 pictures at 2x, and as many frames as GIF_BUDGET_BYTES allows."""
    frames = synthetic_frames(100, n=8, size=64)  # pure noise: the worst case
    path = save_gif(frames, tmp_path / "reverse.gif")
    assert path.stat().st_size < 1.2 * animation.GIF_BUDGET_BYTES, path.stat().st_size
    with Image.open(path) as gif:
        assert gif.size == ((4 * 65 - 1) * 2, 64 * 2)  # the first 4 pictures, 2x
        assert gif.n_frames >= 20  # still an animation

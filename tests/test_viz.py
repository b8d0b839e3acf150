"""Tests of the pictures: every figure, animation, GIF and widget, headless under Agg."""

import io
import math
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from diffusion_helpers import viz, widgets  # noqa: E402
from diffusion_helpers.images import to_numpy  # noqa: E402
from diffusion_helpers.sampling import Frame  # noqa: E402
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402

EMBED_LIMIT_BYTES = 20 * 1024 * 1024  # matplotlib's default animation.embed_limit (20 MB)


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=50)


@pytest.fixture(scope="module")
def image():
    """A 16 px RGB picture with structure: a horizontal ramp in red, vertical in green."""
    ramp = torch.linspace(-1, 1, 16)
    return torch.stack([ramp.expand(16, 16), ramp[:, None].expand(16, 16), -ramp.expand(16, 16)])


def synthetic_frames(count, n=2, size=16, seed=0):
    """Frames from T-1 down to 0 whose x_t are pure noise (the worst case for PNG size)."""
    gen = torch.Generator().manual_seed(seed)
    ts = np.linspace(count - 1, 0, count).round().astype(int)
    return [
        Frame(int(t), torch.randn(n, 3, size, size, generator=gen), torch.zeros(n, 3, size, size))
        for t in ts
    ]


def png_pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


# ---------------------------------------------------------------- figures


def test_show_images_grid_and_titles(image):
    batch = torch.stack([image] * 5)
    fig = viz.show_images(batch, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last one blank
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == list("abcde")
    assert np.array_equal(shown[0].images[0].get_array(), to_numpy(image))
    with pytest.raises(ValueError, match="titles"):
        viz.show_images(batch, titles=["only one"])


@pytest.mark.parametrize("chain", [False, True])
def test_noising_grid_panels_labels_and_noise_level(image, schedule, chain):
    ts = [0, 10, 49]
    fig = viz.plot_noising_grid(image, schedule, ts, torch.Generator().manual_seed(0), chain)
    assert len(fig.axes) == len(ts) * (2 if chain else 1)
    clean = to_numpy(image).astype(float)
    for row in range(2 if chain else 1):
        axes = fig.axes[row * len(ts) : (row + 1) * len(ts)]
        for ax, t in zip(axes, ts):
            assert f"t = {t}" in ax.get_title()
            assert f"{float(schedule.alpha_bars[t]):.4f}" in ax.get_title()
        first, last = (
            np.abs(ax.images[0].get_array() - clean).mean() for ax in (axes[0], axes[-1])
        )
        # t = 0 adds noise of std sqrt(beta_0) = 0.01 (about 1.3 grey levels of 255); at t = 49
        # of this short schedule abar = 0.6, so the noise std is 0.63, about 80 levels.
        assert first < 5 < 30 < last


def test_schedules_three_panels_overlaid(schedule):
    cosine = NoiseSchedule(50, "cosine")
    fig = viz.plot_schedules({"linear": schedule, "cosine": cosine})
    assert len(fig.axes) == 3
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    log_snr = fig.axes[2].lines[1].get_ydata()
    abar = cosine.alpha_bars.numpy()
    np.testing.assert_allclose(log_snr, np.log(abar / (1 - abar)))
    assert len(viz.plot_schedules([schedule, cosine]).axes[0].lines) == 2  # a list works too
    with pytest.raises(ValueError, match="NoiseSchedule"):
        viz.plot_schedules({})


def test_losses_raw_and_smoothed():
    fig = viz.plot_losses([0.5] * 20 + [0.1] * 200, smooth=0.9)
    (ax,) = fig.axes
    raw, smoothed = ax.lines
    assert ax.get_yscale() == "log"
    # The debiased EMA of a constant is that constant from the very first step...
    np.testing.assert_allclose(smoothed.get_ydata()[:20], 0.5)
    # ...and it follows a drop: 200 steps later only 0.9^200 (~7e-10) of the old level is left.
    assert smoothed.get_ydata()[-1] == pytest.approx(0.1, rel=1e-6)
    assert len(raw.get_ydata()) == 220
    with pytest.raises(ValueError, match="smooth"):
        viz.plot_losses([1.0], smooth=1.0)
    with pytest.raises(ValueError, match="empty"):
        viz.plot_losses([])


def test_loss_by_timestep_bucket_means():
    gen = torch.Generator().manual_seed(0)
    ts = torch.randint(0, 80, (500,), generator=gen)  # buckets 8 and 9 of T = 100 stay empty
    losses = torch.rand(500, generator=gen)
    fig = viz.plot_loss_by_timestep(ts, losses, schedule_steps=100, buckets=10)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert len(heights) == 10
    for b in range(8):  # each bucket holds t in [10 b, 10 b + 10)
        inside = (ts >= 10 * b) & (ts < 10 * b + 10)
        assert heights[b] == pytest.approx(losses[inside].double().mean().item())
    assert math.isnan(heights[8]) and math.isnan(heights[9])
    with pytest.raises(ValueError, match="one loss per timestep"):
        viz.plot_loss_by_timestep(ts, losses[:3], 100)


def test_noise_prediction_panels(image, schedule):
    x_t = torch.stack([image] * 3)
    eps = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    pred = eps + 0.1
    fig = viz.plot_noise_prediction(x_t, eps, pred, [5, 20, 40])
    assert len(fig.axes) == 12  # 3 rows x (x_t, true, predicted, difference)
    assert fig.axes[0].get_title() == "x_t, t = 5"
    assert "MSE = 0.010" in fig.axes[3].get_title()  # (0.1)^2
    with pytest.raises(ValueError, match="one t per row"):
        viz.plot_noise_prediction(x_t, eps, pred, [5])


# ---------------------------------------------------------------- animation and GIF


@pytest.mark.parametrize("count,most", [(5, 10), (1000, 60), (61, 60), (1000, 2)])
def test_frame_indices_keep_ends(count, most):
    idx = viz.frame_indices(count, most)
    assert idx[0] == 0 and idx[-1] == count - 1
    assert len(idx) <= min(count, most) and idx == sorted(set(idx))
    if count > most > 4:  # denser where the picture appears: at the end of the run
        gaps = np.diff(idx)
        assert gaps[-len(gaps) // 4 :].mean() < gaps[: len(gaps) // 4].mean()


def test_animation_of_1000_frames_stays_under_embed_limit():
    frames = synthetic_frames(1000, n=4, size=32)  # all noise: PNGs barely compress
    anim = viz.animate(frames)
    used = len(list(anim.new_frame_seq()))
    assert 2 <= used <= viz.DEFAULT_MAX_FRAMES
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns (and drops frames) past the limit
        html = anim.to_jshtml()
    assert html.count("data:image/png;base64") == used
    assert len(html) < EMBED_LIMIT_BYTES
    print(f"{used} frames, {len(html) / 1e6:.1f} MB")
    assert len(anim._fig.axes) == 2  # x_t and the predicted x_0
    small = viz.animate(frames[:3], show_x0=False)
    assert small.to_jshtml().count("data:image/png;base64") == 3
    assert len(small._fig.axes) == 1


def test_save_gif_frames_loop_and_size(tmp_path):
    frames = synthetic_frames(25, n=2, size=8)
    path = viz.save_gif(frames, tmp_path / "sub" / "reverse.gif", scale=3, max_frames=10)
    with Image.open(path) as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == len(viz.frame_indices(25, 10))  # one GIF frame per picked frame
        assert gif.info["loop"] == 0
        assert gif.size == ((2 * 8 + 1) * 3, 8 * 3)  # two images and a 1 px gap, upscaled 3x
        gif.seek(gif.n_frames - 1)
        assert gif.info["duration"] == 1500  # the finished images are held longer


def test_frames_must_be_frames(tmp_path):
    with pytest.raises(ValueError, match="every"):
        viz.save_gif([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="every"):
        widgets.reverse_explorer([torch.zeros(1, 3, 8, 8)])


# ---------------------------------------------------------------- widgets


def parts(box):
    """(play, slider, label, [image widgets]) of a widget made by widgets._explorer."""
    (play, slider), label, panels = box.children[0].children, box.children[1], box.children[2]
    return play, slider, label, [panel.children[1] for panel in panels.children]


def test_forward_slider_moves_pictures_and_label(image, schedule):
    box = widgets.forward_slider(image, schedule, seed=0, display_size=64)
    play, slider, label, (closed, chain) = parts(box)
    assert slider.description == "t" and slider.max == play.max == schedule.num_steps - 1
    assert png_pixels(closed.value).shape == (64, 64, 3)
    # At t = 0 both pictures are the clean image up to noise of std 0.01 (1.3 grey levels);
    # the 16 px image is shown 4x with NEAREST, so every 4th pixel is one image pixel.
    clean = to_numpy(image).astype(float)
    for picture in (closed, chain):
        assert np.abs(png_pixels(picture.value)[::4, ::4] - clean).mean() < 5
    before = (closed.value, chain.value, label.value)
    slider.value = 30
    assert closed.value != before[0] and chain.value != before[1] and label.value != before[2]
    abar = float(schedule.alpha_bars[30])
    assert label.value.startswith(f"t = 30 · ᾱ_t = {abar:.4f}")
    assert f"√(1-ᾱ_t) = {math.sqrt(1 - abar):.2f}" in label.value
    play.value = 45  # the Play widget drives the slider, and the slider the pictures
    assert slider.value == 45 and label.value.startswith("t = 45 ")


def test_forward_slider_refuses_a_batch(image, schedule):
    with pytest.raises(ValueError, match="one image"):
        widgets.forward_slider(torch.stack([image, image]), schedule)


def test_reverse_explorer_steps_through_frames():
    frames = synthetic_frames(5, n=2, size=8)
    box = widgets.reverse_explorer(frames, display_size=32)
    play, slider, label, (x_t, x0_pred) = parts(box)
    assert slider.max == play.max == 4
    assert label.value == f"step 1/5 · t = {frames[0].t}"
    assert png_pixels(x_t.value).shape == (32, (2 * 8 + 1) * 4, 3)  # two images side by side
    before = x_t.value
    slider.value = 4
    assert x_t.value != before
    assert label.value == "step 5/5 · t = 0 (final image)"

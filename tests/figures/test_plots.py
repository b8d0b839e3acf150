"""Tests of the static figures of viz.py, headless under Agg (animation and widgets have their
own test files)."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from IPython.core.formatters import PNGFormatter  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from tiny import ramp_picture  # noqa: E402

from diffusion_helpers.figures.plots import (
    _show_figures_inline,  # noqa: E402
    plot_chain_vs_closed_form,  # noqa: E402
    plot_loss_by_timestep,  # noqa: E402
    plot_losses,  # noqa: E402
    plot_noise_prediction,  # noqa: E402
    plot_noising_grid,  # noqa: E402
    plot_pixel_values,  # noqa: E402
    plot_sampler_quality,  # noqa: E402
    plot_schedules,  # noqa: E402
    show_images,  # noqa: E402
)
from diffusion_helpers.pictures.images import to_numpy  # noqa: E402
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=50)


@pytest.fixture(scope="module")
def image():
    return ramp_picture()


# ---------------------------------------------------------------- figures


def test_show_images_grid_and_titles(image):
    batch = torch.stack([image] * 5)
    fig = show_images(batch, titles=list("abcde"), ncols=3)
    assert len(fig.axes) == 6  # 2 rows x 3 columns, the last one blank
    shown = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in shown] == list("abcde")
    assert np.array_equal(shown[0].images[0].get_array(), to_numpy(image))
    with pytest.raises(ValueError, match="titles"):
        show_images(batch, titles=["only one"])


@pytest.mark.parametrize("chain", [False, True])
def test_noising_grid_panels_labels_and_noise_level(image, schedule, chain):
    ts = [0, 10, 49]
    fig = plot_noising_grid(image, schedule, ts, torch.Generator().manual_seed(0), chain)
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
    fig = plot_schedules({"linear": schedule, "cosine": cosine})
    assert len(fig.axes) == 3
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    log_snr = fig.axes[2].lines[1].get_ydata()
    abar = cosine.alpha_bars.numpy()
    np.testing.assert_allclose(log_snr, np.log(abar / (1 - abar)))
    assert len(plot_schedules([schedule, cosine]).axes[0].lines) == 2  # a list works too
    with pytest.raises(ValueError, match="NoiseSchedule"):
        plot_schedules({})


def test_losses_raw_and_smoothed():
    fig = plot_losses([0.5] * 20 + [0.1] * 200, smooth=0.9)
    (ax,) = fig.axes
    raw, smoothed = ax.lines
    assert ax.get_yscale() == "log"
    # The debiased EMA of a constant is that constant from the very first step...
    np.testing.assert_allclose(smoothed.get_ydata()[:20], 0.5)
    # ...and it follows a drop: 200 steps later only 0.9^200 (~7e-10) of the old level is left.
    assert smoothed.get_ydata()[-1] == pytest.approx(0.1, rel=1e-6)
    assert len(raw.get_ydata()) == 220
    with pytest.raises(ValueError, match="smooth"):
        plot_losses([1.0], smooth=1.0)
    with pytest.raises(ValueError, match="empty"):
        plot_losses([])


def test_loss_by_timestep_bucket_means():
    gen = torch.Generator().manual_seed(0)
    ts = torch.randint(0, 80, (500,), generator=gen)  # buckets 8 and 9 of T = 100 stay empty
    losses = torch.rand(500, generator=gen)
    fig = plot_loss_by_timestep(ts, losses, schedule_steps=100, buckets=10)
    heights = [bar.get_height() for bar in fig.axes[0].patches]
    assert len(heights) == 10
    for b in range(8):  # each bucket holds t in [10 b, 10 b + 10)
        inside = (ts >= 10 * b) & (ts < 10 * b + 10)
        assert heights[b] == pytest.approx(losses[inside].double().mean().item())
    assert math.isnan(heights[8]) and math.isnan(heights[9])
    with pytest.raises(ValueError, match="one loss per timestep"):
        plot_loss_by_timestep(ts, losses[:3], 100)


def test_noise_prediction_panels(image, schedule):
    x_t = torch.stack([image] * 3)
    eps = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    pred = eps + 0.1
    fig = plot_noise_prediction(x_t, eps, pred, [5, 20, 40])
    assert len(fig.axes) == 12  # 3 rows x (x_t, true, predicted, difference)
    assert fig.axes[0].get_title() == "x_t, t = 5"
    assert "MSE = 0.010" in fig.axes[3].get_title()  # (0.1)^2
    with pytest.raises(ValueError, match="one t per row"):
        plot_noise_prediction(x_t, eps, pred, [5])


def test_sampler_quality_one_line_per_sampler_sorted_by_calls():
    curves = {"DDPM": [(1000, 38.1)], "SDE": [(50, 37.8), (10, 35.7), (20, 39.0)]}
    fig = plot_sampler_quality(curves)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["DDPM", "SDE"]
    assert list(ax.lines[1].get_xdata()) == [10, 20, 50]  # in order of calls, each with its score
    assert list(ax.lines[1].get_ydata()) == [35.7, 39.0, 37.8]
    assert ax.get_xscale() == "log" and ax.get_xlabel() and ax.get_ylabel()
    assert {text.get_text() for text in ax.texts} == {"38.1", "35.7", "39.0", "37.8"}
    for bad in ({}, {"DDPM": []}):
        with pytest.raises(ValueError, match="at least one"):
            plot_sampler_quality(bad)


def data_axes(fig):
    """The axes of a figure that plot data (lines, bars or histograms), not pictures."""
    return [ax for ax in fig.axes if (ax.lines or ax.patches) and not ax.images]


def test_every_plot_has_axis_labels(image, schedule):
    gen = torch.Generator().manual_seed(0)
    ts = torch.randint(0, 50, (200,), generator=gen)
    figures = {
        "schedules": plot_schedules([schedule, NoiseSchedule(50, "cosine")]),
        "pixel_values": plot_pixel_values(image),
        "chain_vs_closed_form": plot_chain_vs_closed_form(image, schedule, n=64),
        "losses": plot_losses([1.0, 0.5, 0.2]),
        "loss_by_timestep": plot_loss_by_timestep(ts, torch.rand(200, generator=gen), 50),
    }
    for name, fig in figures.items():
        axes = data_axes(fig)
        assert axes, name
        for ax in axes:
            assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: {ax.get_title()!r}"
    # The noising grid is pictures: the columns are timesteps, the rows name the process.
    grid = plot_noising_grid(image, schedule, [0, 49], gen, chain=True)
    assert grid.get_supxlabel() == "timestep t"
    assert [ax.get_ylabel() for ax in grid.axes[::2]] == [
        "closed form\nq(x_t | x_0)",
        "step by step\nq(x_t | x_{t-1})",
    ]


def test_figures_show_inline_in_ipython(monkeypatch):
    """Importing viz registers figure_png for Figure in the running IPython shell."""
    import IPython

    png = PNGFormatter()

    class Shell:  # the part of an IPython shell that _show_figures_inline uses
        display_formatter = type("Formatters", (), {"formatters": {"image/png": png}})()

    fig = Figure(figsize=(1, 1))
    fig.subplots().plot([0, 1])
    assert png(fig) is None  # nothing registered: IPython would print <Figure size ...>
    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    _show_figures_inline()
    assert png(fig).startswith(b"\x89PNG")
    monkeypatch.setattr(IPython, "get_ipython", lambda: None)
    _show_figures_inline()  # outside IPython: nothing to do, no error


def test_plot_edit_trade_draws_each_edits_psnr_to_drawing_and_picture():
    from diffusion_helpers.figures.plots import plot_edit_trade
    from diffusion_helpers.metrics.psnr import psnr

    g = torch.Generator().manual_seed(0)
    drawing, picture = torch.rand(2, 1, 3, 8, 8, generator=g) * 2 - 1
    edits = torch.stack([drawing[0] * (1 - s) + picture[0] * s for s in (0.1, 0.5, 0.9)])
    fig = plot_edit_trade([0.1, 0.5, 0.9], edits, drawing, picture)
    faithful, realistic = fig.axes[0].lines
    assert np.allclose(faithful.get_ydata(), psnr(edits, drawing).numpy())
    assert np.allclose(realistic.get_ydata(), psnr(edits, picture).numpy())
    assert faithful.get_ydata()[0] > faithful.get_ydata()[-1]  # less faithful as s grows
    with pytest.raises(ValueError, match="one strength per edit"):
        plot_edit_trade([0.1], edits, drawing, picture)

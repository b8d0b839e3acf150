"""Tests of the figures of the 2D world (figures/points.py), headless under Agg: the right
panels with labels, and what each panel draws is the quantity its title names."""

import math

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from diffusion_helpers.figures.points import (  # noqa: E402
    NEAR,
    as_xy,
    check_points,
    plot_memorisation,
    plot_points_dissolving,
    plot_score_field,
    plot_trajectories,
)
from diffusion_helpers.forward import add_noise  # noqa: E402
from diffusion_helpers.reverse import Sampler
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402

SCHEDULE = NoiseSchedule(1000)


class StandardNormal:
    """Data N(0, I) stays N(0, I) under noising, so s(x, t) = -x and eps = sqrt(1-abar) x."""

    config = type("Config", (), dict(image_size=1, image_channels=2, num_classes=None))()

    def __call__(self, x, t):
        return SCHEDULE.gather(SCHEDULE.sqrt_one_minus_alpha_bars, t, x) * x


@pytest.fixture(scope="module")
def points():
    g = torch.Generator().manual_seed(0)
    return (torch.rand(400, 2, 1, 1, generator=g) * 2 - 1) * torch.tensor([1.0, 0.3])[:, None, None]


def scatter_xy(ax, index=0):
    return [c for c in ax.collections if isinstance(c, PathCollection)][index].get_offsets()


def assert_labelled_plane(ax):
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "y" and ax.get_title()
    assert ax.get_aspect() == 1.0  # one unit as long on both axes


def test_check_points_names_the_shape():
    assert check_points(torch.zeros(3, 2, 1, 1)).shape == (3, 2, 1, 1)
    for bad in (torch.zeros(3, 2), torch.zeros(3, 3, 1, 1), torch.zeros(0, 2, 1, 1)):
        with pytest.raises(ValueError, match=r"\[N, 2, 1, 1\]"):
            check_points(bad)
    with pytest.raises(ValueError, match="floating-point"):
        check_points(torch.zeros(3, 2, 1, 1, dtype=torch.long))
    assert as_xy(torch.ones(2, 2, 1, 1)).shape == (2, 2)


def test_dissolving_panels_show_eq_4_with_one_noise_draw(points):
    ts = [0, 100, 999]
    fig = plot_points_dissolving(points, SCHEDULE, ts, seed=3)
    assert len(fig.axes) == 3
    eps = torch.randn(points.shape, generator=torch.Generator().manual_seed(3))
    for ax, t in zip(fig.axes, ts):
        assert_labelled_plane(ax)
        assert f"t = {t}" in ax.get_title() and "ᾱ_t" in ax.get_title()
        expected = add_noise(points, t, SCHEDULE, noise=eps)[0].reshape(-1, 2).numpy()
        np.testing.assert_allclose(scatter_xy(ax), expected, rtol=1e-6, atol=1e-6)
    # At T-1 the cloud is N(0, I): per-coordinate std within 0.15 of 1 (400 points: the
    # standard error of a std is 1 / sqrt(800) = 0.035).
    np.testing.assert_allclose(np.asarray(scatter_xy(fig.axes[-1])).std(0), 1.0, atol=0.15)
    assert "ᾱ_t = 4.0e-05" in fig.axes[-1].get_title()  # tiny values are not shown as 0.0000
    with pytest.raises(ValueError, match="timesteps"):
        plot_points_dissolving(points, SCHEDULE, [])
    with pytest.raises(ValueError, match="outside"):
        plot_points_dissolving(points, SCHEDULE, [1000])


def test_score_field_arrows_point_along_the_score(points):
    ts = [5, 300, 900]
    fig = plot_score_field(StandardNormal(), SCHEDULE, ts, points=points, grid=8)
    assert len(fig.axes) == 3
    for ax, t in zip(fig.axes, ts):
        assert_labelled_plane(ax)
        assert f"t = {t}" in ax.get_title() and "|s|" in ax.get_title()
        (quiver,) = [c for c in ax.collections if isinstance(c, Quiver)]
        assert quiver.N == 64
        where, arrows = quiver.get_offsets(), np.stack([quiver.U, quiver.V], 1)
        # s = -x: every arrow points at the origin (an even grid has no point at the origin)
        cosine = (arrows * -where).sum(1) / (
            np.linalg.norm(arrows, axis=1) * np.linalg.norm(where, axis=1)
        )
        np.testing.assert_allclose(cosine, 1.0, atol=1e-5)
        assert np.linalg.norm(arrows, axis=1).max() <= (where[1, 0] - where[0, 0]) + 1e-9
        # the title's typical |s| is the median |x| over the grid
        assert f"{np.median(np.linalg.norm(where, axis=1)):.3g}" in ax.get_title()
        assert len(scatter_xy(ax)) == len(points)  # the noised cloud behind
    assert len(plot_score_field(StandardNormal(), SCHEDULE, [5]).axes[0].collections) == 1
    with pytest.raises(ValueError, match="eps_fn"):
        plot_score_field(lambda x, t: x.reshape(-1, 2), SCHEDULE, [5])


def test_trajectories_follow_the_captured_frames():
    model, schedule = StandardNormal(), SCHEDULE
    sde = sample(model, schedule, 50, Sampler("ddim", steps=20, eta=1.0), seed=0, every=1,
                 progress=False)  # fmt: skip
    ode = sample(model, schedule, 50, Sampler("ddim", steps=20), seed=0, every=1, progress=False)
    fig = plot_trajectories(sde.frames, ode.frames, paths=3)
    assert len(fig.axes) == 2
    titles = [ax.get_title() for ax in fig.axes]
    assert "SDE" in titles[0] and "ODE" in titles[1]
    for ax, frames in zip(fig.axes, (sde.frames, ode.frames)):
        assert_labelled_plane(ax)
        assert "3 paths" in ax.get_title() and f"t = {frames[0].t}" in ax.get_title()
        paths = [line for line in ax.lines if len(line.get_xdata()) == len(frames)]
        assert len(paths) == 3
        first = np.array([f.x_t[0].reshape(2).tolist() for f in frames])
        np.testing.assert_allclose(paths[0].get_xydata(), first, rtol=1e-6)
        assert ax.get_legend() is not None
    # same seed, same start x_T; the SDE then wanders off the ODE's path
    assert torch.equal(sde.frames[0].x_t, ode.frames[0].x_t)
    assert not torch.allclose(sde.frames[-1].x_t, ode.frames[-1].x_t)
    with pytest.raises(ValueError, match="at least two Frames"):
        plot_trajectories([], ode.frames)


def test_memorisation_counts_the_copies():
    train = torch.tensor([[-0.5, 0.0], [0.5, 0.0], [0.0, 0.5]])[:, :, None, None]
    copies = train.repeat(10, 1, 1, 1) + 0.5 * NEAR  # all within NEAR of a training point
    elsewhere = torch.tensor([[0.0, -0.5]]).repeat(20, 1)[:, :, None, None]  # none
    cloud = torch.zeros(5, 2, 1, 1)
    fig = plot_memorisation(train, elsewhere, copies, cloud=cloud)
    assert len(fig.axes) == 3
    for ax in fig.axes:
        assert_labelled_plane(ax)
    assert "3 training points" in fig.axes[0].get_title()
    assert f"0 of 20 within {NEAR}" in fig.axes[1].get_title()
    assert f"30 of 30 within {NEAR}" in fig.axes[2].get_title()
    assert fig.axes[0].get_legend() is not None
    # each panel: the cloud behind, the training points and (right two) the samples on top
    assert [len(ax.collections) for ax in fig.axes] == [2, 3, 3]
    assert math.isclose(float(fig.axes[2].get_ylim()[1]), 1.1)

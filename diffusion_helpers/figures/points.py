"""Pictures of the 2D world of notebook 07: a cloud of points, the score, the reverse paths.

A cloud of N points in the plane is a tensor [N, 2, 1, 1]: N one-pixel "pictures" with two
channels, x and y (:mod:`.tutorial.points` makes them from the learner's picture).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Callable, Optional

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle

from ..checks.tensors import check_points
from ..forward import add_noise
from ..reverse import Frame
from ..schedule import NoiseSchedule

CLOUD = dict(s=4, color="tab:blue", alpha=0.5, linewidths=0)  # the points, drawn small and light
FAINT = dict(s=3, color="0.7", alpha=0.5, linewidths=0)  # a cloud behind arrows or paths
TRAINING = dict(s=70, facecolors="none", edgecolors="tab:red", linewidths=1.4)  # open circles
PANEL = 3.4  # inches per panel: 3-4 panels fit a notebook's width
# A sample "is" a training point within NEAR of one: under a pixel of a 64 px picture (0.031).
NEAR = 0.02
# Arrows grow with |s| up to this quantile of |s| in the panel, so the few huge ones far from
# the cloud do not shrink all the others to dots.
ARROW_QUANTILE = 0.7


def as_xy(points: torch.Tensor, name: str = "points") -> np.ndarray:
    """A cloud [N, 2, 1, 1] as a float64 numpy array [N, 2] of (x, y), for plotting."""
    return check_points(points, name).detach().cpu().double().reshape(-1, 2).numpy()


def plot_points_dissolving(
    points: torch.Tensor, schedule: NoiseSchedule, timesteps: Sequence[int], seed: int = 0
) -> Figure:
    """The cloud noised to each of ``timesteps`` by x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    (DDPM eq. 4), one panel each, one noise draw (``seed``) and one scale for all; the dashed
    square is the data range [-1, 1]^2, the circle 2 sigma of N(0, I).
    """
    check_points(points)
    ts = _timesteps(schedule, timesteps)
    x0 = points.detach().cpu().float()
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    fig = Figure(figsize=(PANEL * 0.85 * len(ts) + 0.4, PANEL), layout="constrained")
    axes = fig.subplots(1, len(ts), squeeze=False)[0]
    for ax, t in zip(axes, ts):
        xy = as_xy(add_noise(x0, t, schedule, noise=eps)[0])
        ax.scatter(xy[:, 0], xy[:, 1], **CLOUD)
        ax.add_patch(Rectangle((-1, -1), 2, 2, fill=False, ls="--", color="0.4", lw=1))
        ax.add_patch(Circle((0, 0), 2.0, fill=False, color="tab:orange", lw=1.2))
        ax.set_title(f"t = {t}, {_abar_text(schedule, t)}", fontsize=10)
        _plane(ax, 3.0)
    keys = [Line2D([], [], ls="--", color="0.4", label="data range [-1, 1]²"),
            Line2D([], [], color="tab:orange", label="2σ of N(0, I)")]  # fmt: skip
    axes[0].legend(handles=keys, fontsize=8, loc="upper left")
    fig.suptitle("the forward process: x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε", fontsize=11)
    return fig


def plot_score_field(
    eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    points: Optional[torch.Tensor] = None,
    grid: int = 15,
    seed: int = 0,
) -> Figure:
    """Arrows of the score s(x, t) = grad log p_t(x) on a ``grid`` x ``grid`` of the plane, one
    panel per timestep, from a noise predictor ``eps_fn(x [M, 2, 1, 1], t [M])`` by Tweedie's
    formula s = -eps(x, t) / sqrt(1 - abar_t). Arrow lengths follow |s| up to the panel's
    ``ARROW_QUANTILE``; the title gives the median |s|. ``points``, the clean cloud, is drawn
    behind, noised to each t with one noise draw (``seed``).
    """
    ts = _timesteps(schedule, timesteps)
    if points is not None:
        check_points(points)
        x0 = points.detach().cpu().float()
        eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed))
    fig = Figure(figsize=(PANEL * len(ts) + 0.4, PANEL + 0.4), layout="constrained")
    axes = fig.subplots(1, len(ts), squeeze=False)[0]
    for ax, t in zip(axes, ts):
        abar = float(schedule.alpha_bars[t])
        half = max(1.2, math.sqrt(abar) + 2.0 * math.sqrt(1 - abar))  # holds most of x_t
        side = np.linspace(-half, half, grid + 2)[1:-1]  # no arrows on the frame
        gx, gy = np.meshgrid(side, side)
        xy = torch.tensor(np.stack([gx.ravel(), gy.ravel()], 1), dtype=torch.float32)
        with torch.no_grad():
            predicted = eps_fn(xy[:, :, None, None], torch.full((len(xy),), t, dtype=torch.long))
        check_points(predicted, "eps_fn(x, t)")
        score = -as_xy(predicted) / math.sqrt(1 - abar)  # Tweedie: s = -eps / sqrt(1 - abar)
        if points is not None:
            cloud = as_xy(add_noise(x0, t, schedule, noise=eps)[0])
            ax.scatter(cloud[:, 0], cloud[:, 1], **{**CLOUD, "alpha": 0.3})
        size = np.linalg.norm(score, axis=1)
        cap = max(float(np.quantile(size, ARROW_QUANTILE)), 1e-12)
        arrows = score / cap * np.minimum(1.0, cap / np.maximum(size, 1e-12))[:, None]
        arrows *= 0.9 * (side[1] - side[0])  # the longest arrow: 0.9 of the grid spacing
        ax.quiver(gx.ravel(), gy.ravel(), arrows[:, 0], arrows[:, 1], color="0.15",
                  angles="xy", scale_units="xy", scale=1.0, width=0.006)  # fmt: skip
        ax.set_title(f"t = {t}, {_abar_text(schedule, t)}\ntypical |s| = {np.median(size):.3g}",
                     fontsize=10)  # fmt: skip
        _plane(ax, half)
    fig.suptitle("the score s(x, t) = ∇ log p_t(x) = -ε(x, t) / √(1-ᾱ_t): arrows point uphill, "
                 "towards the noised cloud (blue)", fontsize=11)  # fmt: skip
    return fig


def plot_trajectories(
    sde_frames: Sequence[Frame],
    ode_frames: Sequence[Frame],
    paths: int = 4,
    titles: Sequence[str] = ("reverse SDE (DDPM)", "probability-flow ODE (DDIM, η = 0)"),
) -> Figure:
    """The paths of the first ``paths`` points from x_T (a circle) to x_0 (a dot) by the reverse
    SDE (left) and the probability-flow ODE (right), from the frames ``sample(..., every=k)``
    captures (``frames[i].x_t`` [n, 2, 1, 1]); all n final points drawn faintly behind.
    """
    runs = [("sde_frames", sde_frames), ("ode_frames", ode_frames)]
    if len(titles) != 2:
        raise ValueError(f"titles must name the two panels (SDE, ODE), got {len(titles)}.")
    tracks = []
    for name, frames in runs:
        if len(frames) < 2 or not all(isinstance(f, Frame) for f in frames):
            raise ValueError(
                f"{name} must hold at least two Frames: sample(..., every=k) captures them."
            )
        tracks.append(np.stack([as_xy(f.x_t, f"{name}[{i}].x_t") for i, f in enumerate(frames)]))
    shown = min(paths, *(track.shape[1] for track in tracks))
    half = max(1.1, 1.05 * max(float(np.abs(track[:, :shown]).max()) for track in tracks))
    fig = Figure(figsize=(2 * PANEL * 1.3 + 0.4, PANEL * 1.3 + 0.3), layout="constrained")
    for ax, (_, frames), track, title in zip(fig.subplots(1, 2), runs, tracks, titles):
        ax.scatter(track[-1][:, 0], track[-1][:, 1], **FAINT)
        for k in range(shown):
            colour = f"C{k % 10}"
            ax.plot(track[:, k, 0], track[:, k, 1], lw=1.0, color=colour, alpha=0.8)
            ax.plot(*track[0, k], "o", ms=8, mfc="white", mew=1.5, color=colour)
            ax.plot(*track[-1, k], "o", ms=6, color=colour, mec="black", mew=0.6)
        keys = [Line2D([], [], ls="", marker="o", ms=8, mfc="white", mew=1.5, color="0.3",
                       label="start x_T ~ N(0, I)"),
                Line2D([], [], ls="", marker="o", ms=6, color="0.3", mec="black", mew=0.6,
                       label="end: a sample x_0")]  # fmt: skip
        ax.legend(handles=keys, fontsize=8, loc="lower right")
        ax.set_title(f"{title}\n{shown} paths, t = {frames[0].t} → {frames[-1].t}", fontsize=10)
        _plane(ax, half)
    return fig


def plot_memorisation(
    training_points: torch.Tensor,
    net_samples: torch.Tensor,
    ideal_samples: torch.Tensor,
    cloud: Optional[torch.Tensor] = None,
) -> Figure:
    """Three panels: the few training points (red circles), samples of a net trained on them,
    and samples of the ideal denoiser of those points, each titled with how many lie within
    ``NEAR`` of a training point; ``cloud``, the points they were drawn from, faintly behind.
    """
    train_xy = as_xy(training_points, "training_points")
    samples = [as_xy(net_samples, "net_samples"), as_xy(ideal_samples, "ideal_samples")]
    names = ["samples of a net trained on them", "samples of the ideal denoiser"]
    behind = as_xy(cloud, "cloud") if cloud is not None else None
    fig = Figure(figsize=(3 * PANEL + 0.4, PANEL + 0.4), layout="constrained")
    axes = fig.subplots(1, 3)
    axes[0].set_title(f"the {len(train_xy)} training points", fontsize=10)
    for ax, xy, name in zip(axes[1:], samples, names):
        nearest = torch.cdist(torch.from_numpy(xy), torch.from_numpy(train_xy)).min(1).values
        copies = int((nearest < NEAR).sum())
        ax.set_title(f"{name}\n{copies} of {len(xy)} within {NEAR} of a training point",
                     fontsize=10)  # fmt: skip
    for i, ax in enumerate(axes):
        if behind is not None:
            ax.scatter(behind[:, 0], behind[:, 1], **FAINT)
        ax.scatter(train_xy[:, 0], train_xy[:, 1], **TRAINING)
        if i > 0:
            xy = samples[i - 1]
            ax.scatter(xy[:, 0], xy[:, 1], **{**CLOUD, "s": 5, "alpha": 0.4})
        _plane(ax, 1.1)
    keys = [Line2D([], [], ls="", marker="o", ms=8, mfc="none", mec="tab:red", mew=1.4,
                   label="training point")]  # fmt: skip
    if behind is not None:
        keys.append(
            Line2D([], [], ls="", marker="o", ms=3, color="0.7", label="the cloud they came from")
        )
    axes[0].legend(handles=keys, fontsize=8, loc="lower right")
    return fig


def _timesteps(schedule: NoiseSchedule, timesteps: Sequence[int]) -> list[int]:
    """``timesteps`` as a non-empty list of ints, each checked against the schedule."""
    ts = [int(t) for t in timesteps]
    if not ts:
        raise ValueError("timesteps is empty: name at least one timestep to show.")
    schedule.check_t(torch.tensor(ts))
    return ts


def _abar_text(schedule: NoiseSchedule, t: int) -> str:
    """abar_t for a title: four decimals as in the noising grid, or like 4.0e-05 when tiny."""
    abar = float(schedule.alpha_bars[t])
    return f"ᾱ_t = {abar:.4f}" if abar >= 1e-3 else f"ᾱ_t = {abar:.1e}"


def _plane(ax: Axes, half: float) -> None:
    """Square axes from -half to half, labelled x and y, one unit as long on both."""
    ax.set(xlim=(-half, half), ylim=(-half, half), aspect="equal", xlabel="x", ylabel="y")
    ax.grid(alpha=0.25)

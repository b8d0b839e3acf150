"""The tutorial's static figures: images, the noising grid, schedules, losses, noise guesses.

Every function returns the ``matplotlib.figure.Figure`` it drew, built without pyplot, so that
nothing piles up in pyplot's list and everything works headless. Importing this module lets a
notebook cell that ends in ``dh.plot_...(...)`` show the figure (:func:`_show_figures_inline`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from ..checks.tensors import check_image, image_batch
from ..forward import add_noise, add_noise_chain
from ..metrics.psnr import psnr
from ..pictures.images import to_numpy
from ..runtime.environment import quick_mode
from ..schedule import NoiseSchedule
from .animation import imshow_pixels

# Noise eps ~ N(0, 1) is shown as eps / NOISE_RANGE in [-1, 1]: +-2 sigma spans black to white.
NOISE_RANGE = 2.0


def show_images(
    images: Union[torch.Tensor, Sequence[torch.Tensor]],
    titles: Optional[Sequence[str]] = None,
    ncols: int = 8,
    size: float = 2.0,
) -> Figure:
    """Show images [B, C, H, W] (or [C, H, W], or a list of [C, H, W]) in [-1, 1] in a grid."""
    batch = _as_batch(images, "images")
    if titles is not None and len(titles) != len(batch):
        raise ValueError(f"got {len(titles)} titles for {len(batch)} images.")
    ncols = max(1, min(ncols, len(batch)))
    nrows = -(-len(batch) // ncols)  # ceil
    fig = Figure(
        figsize=(size * ncols, size * nrows + (0.3 if titles else 0)), layout="constrained"
    )
    for i, ax in enumerate(fig.subplots(nrows, ncols, squeeze=False).ravel()):
        ax.set_axis_off()
        if i < len(batch):
            imshow_pixels(ax, to_numpy(batch[i]))
            if titles is not None:
                ax.set_title(titles[i], fontsize=10)
    return fig


def _picture_rows(
    fig: Figure, rows: Sequence[tuple[Optional[str], Sequence[tuple[torch.Tensor, str]]]]
) -> None:
    """Fill ``fig`` with rows of (name or None: no frames, [(picture, title), ...])."""
    axes = fig.subplots(len(rows), len(rows[0][1]), squeeze=False)
    for ax_row, (name, cells) in zip(axes, rows):
        for ax, (picture, title) in zip(ax_row, cells):
            imshow_pixels(ax, to_numpy(picture))
            ax.set(xticks=[], yticks=[])
            ax.set_title(title, fontsize=9)
            ax.axis("on" if name else "off")
        ax_row[0].set_ylabel(name or "", fontsize=9)


def plot_noising_grid(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    generator: Optional[torch.Generator] = None,
    chain: bool = False,
) -> Figure:
    """One image noised to each of ``timesteps`` by the closed form q(x_t | x_0) (DDPM eq. 4),
    all panels with one noise draw eps; with ``chain=True`` a second row runs the chain
    q(x_t | x_{t-1}) (eq. 2) instead: other noise, the same distribution.
    """
    x0 = _as_batch(x0, "x0")[:1]
    ts = [int(t) for t in timesteps]
    schedule.check_t(torch.tensor(ts, dtype=torch.long))
    eps = torch.randn(x0.shape, generator=generator, dtype=x0.dtype)
    rows = [("closed form\nq(x_t | x_0)", [add_noise(x0, t, schedule, noise=eps)[0] for t in ts])]
    if chain:
        rows.append(
            ("step by step\nq(x_t | x_{t-1})", list(add_noise_chain(x0, ts, schedule, generator)))
        )
    titles = [f"t = {t}\nᾱ_t = {float(schedule.alpha_bars[t]):.4f}" for t in ts]
    fig = Figure(figsize=(1.9 * len(ts) + 0.6, 2.2 * len(rows)), layout="constrained")
    _picture_rows(fig, [(name, list(zip(pictures, titles))) for name, pictures in rows])
    fig.supxlabel("timestep t", fontsize=9)
    return fig


def plot_noise_at_sizes(
    picture: torch.Tensor,
    schedule: NoiseSchedule,
    t: int,
    sizes: Sequence[int] = (32, 64, 128),
    seed: int = 0,
) -> Figure:
    """Why a bigger picture needs more noise: ``picture`` at each of ``sizes`` px noised to the
    same ``t`` (eq. 4). Three rows: x_t at each size; each shrunk to the smallest size by a
    k x k average, which divides the noise's variance by k^2 (the SNR times k^2: the bigger
    picture's layout was less destroyed); the same with the schedule shifted by k (log-SNR
    lowered by 2 log k), which undoes it.
    """
    x = _as_batch(picture, "picture")[:1].float()
    sizes = sorted(int(s) for s in sizes)
    small = sizes[0]
    if any(s % small for s in sizes):
        raise ValueError(f"sizes must be multiples of the smallest, {small}; got {sizes}.")
    schedule.check_t(int(t))
    g = torch.Generator().manual_seed(seed)
    names = ("the same t", f"shrunk to\n{small} px", "shifted\nschedule, shrunk")
    rows: list[tuple[str, list]] = [(name, []) for name in names]
    for size in sizes:
        x0 = F.interpolate(x, size=(size, size), mode="area") if x.shape[-1] != size else x
        eps = torch.randn(x0.shape, generator=g)
        k = size // small
        shifted = NoiseSchedule(schedule.num_steps, schedule.kind, schedule.beta_start,
                                schedule.beta_end, shift=schedule.shift * k)  # fmt: skip
        for (_, cells), sched, shrink in ((rows[0], schedule, 1), (rows[1], schedule, k),
                                          (rows[2], shifted, k)):  # fmt: skip
            x_t = F.avg_pool2d(add_noise(x0, int(t), sched, noise=eps)[0], shrink)
            snr = float(sched.alpha_bars[t] / (1 - sched.alpha_bars[t])) * shrink**2
            where = f"{size} px" + (f" → {small} px" if shrink > 1 else "")
            cells.append((x_t, f"{where}\nSNR {snr:.2g}"))
    fig = Figure(figsize=(2.1 * len(sizes) + 0.8, 2.4 * len(rows)), layout="constrained")
    _picture_rows(fig, rows)
    fig.suptitle(
        f"t = {t}: the same noise, three sizes (SNR = signal / noise variance)", fontsize=10
    )
    return fig


def plot_noise_prediction(
    x_t: torch.Tensor,
    true_noise: torch.Tensor,
    predicted_noise: torch.Tensor,
    t: Union[torch.Tensor, Sequence[int]],
) -> Figure:
    """For each row (one t): x_t, the true eps, the predicted eps and their difference, the
    noise shown as eps / 2, so that black to white spans -2 sigma to +2 sigma."""
    for name, x in (("x_t", x_t), ("true_noise", true_noise), ("predicted_noise", predicted_noise)):
        check_image(x, name)
        if x.shape != x_t.shape:
            raise ValueError(f"{name} has shape {list(x.shape)} but x_t has {list(x_t.shape)}.")
    ts = torch.as_tensor(t).reshape(-1).tolist()
    if len(ts) != x_t.shape[0]:
        raise ValueError(f"got {len(ts)} timesteps for {x_t.shape[0]} images: give one t per row.")
    rows = []
    for row, step in enumerate(ts):
        diff = predicted_noise[row] - true_noise[row]
        rows.append((None, [
            (x_t[row], f"x_t, t = {step}"),
            (true_noise[row] / NOISE_RANGE, "true noise ε"),
            (predicted_noise[row] / NOISE_RANGE, "predicted ε_θ(x_t, t)"),
            (diff / NOISE_RANGE, f"difference, MSE = {float((diff**2).mean()):.3f}"),
        ]))  # fmt: skip
    fig = Figure(figsize=(8, 2.1 * len(ts)), layout="constrained")
    _picture_rows(fig, rows)
    fig.suptitle("noise shown as ε/2: black is -2σ, white is +2σ", fontsize=9)
    return fig


def plot_schedules(schedules: Union[dict[str, NoiseSchedule], Sequence[NoiseSchedule]]) -> Figure:
    """Three panels, schedules overlaid: beta_t, abar_t, and log-SNR(t) = log(abar_t/(1-abar_t))."""
    if not isinstance(schedules, dict):
        schedules = {f"{s.kind} (T={s.num_steps})": s for s in schedules}
    if not schedules or not all(isinstance(s, NoiseSchedule) for s in schedules.values()):
        raise ValueError("schedules must be a non-empty dict or list of NoiseSchedule objects.")
    fig = Figure(figsize=(13, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [
        ("betas", "β_t, noise added at step t (log scale)", "β_t"),
        ("alpha_bars", "ᾱ_t (signal left: x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε)", "ᾱ_t"),
        ("log_snr", "log-SNR(t) = log(ᾱ_t / (1-ᾱ_t))", "log-SNR(t)"),
    ]
    for ax, (attr, title, ylabel) in zip(axes, panels):
        for name, s in schedules.items():
            ax.plot(np.arange(s.num_steps), getattr(s, attr).numpy(), label=name)
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="timestep t", ylabel=ylabel)
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")  # the cosine schedule's betas jump to 0.999 at the very end
    axes[0].legend(fontsize=9)
    return fig


def plot_pixel_values(image: torch.Tensor, bins: int = 32) -> Figure:
    """The picture beside a histogram of its values in [-1, 1], one colour per channel
    (x = 2 p / 255 - 1 for a pixel value p in 0..255)."""
    x = _as_batch(image, "image")[:1]
    fig = Figure(figsize=(9, 3), layout="constrained")
    ax_img, ax_hist = fig.subplots(1, 2, width_ratios=[1, 2.2])
    imshow_pixels(ax_img, to_numpy(x))
    ax_img.set_title(f"{x.shape[-1]}x{x.shape[-2]} pixels", fontsize=10)
    ax_img.set_axis_off()
    colours = ["tab:red", "tab:green", "tab:blue"] if x.shape[1] == 3 else ["0.3"]
    names = ["red", "green", "blue"] if x.shape[1] == 3 else ["grey"]
    for channel, colour, name in zip(x[0], colours, names):
        values = channel.reshape(-1).numpy()
        ax_hist.hist(values, bins=bins, range=(-1, 1), color=colour, alpha=0.5, label=name)
    ax_hist.set(xlim=(-1.05, 1.05), ylabel="number of pixels",
                xlabel="value: -1 is black (p = 0), +1 is full brightness (p = 255)")  # fmt: skip
    ax_hist.legend(fontsize=9)
    return fig


def plot_chain_vs_closed_form(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    n: Optional[int] = None,
    seed: int = 0,
    num_points: int = 12,
    max_pixels: int = 256,
) -> Figure:
    """Eq. 4 against eq. 2 by simulation: ``n`` runs (default 1,024; 256 in quick mode) of the
    chain q(x_t | x_{t-1}) from up to ``max_pixels`` pixels of ``x0``; at ``num_points``
    timesteps, the picture left (the slope of mean(x_t) against x_0) and the noise (the std of
    x_t) beside the closed form's sqrt(abar_t) and sqrt(1 - abar_t).
    """
    n = n or (256 if quick_mode() else 1024)
    values = _as_batch(x0, "x0")[0].reshape(-1).double()
    values = values[:: max(1, values.numel() // max_pixels)][:max_pixels]
    T = schedule.num_steps
    ts = sorted({int(t) for t in np.linspace(0, T - 1, num_points).round()})
    start = values.reshape(1, 1, 1, -1).expand(n, 1, 1, -1)
    gen = torch.Generator().manual_seed(seed)
    chain = add_noise_chain(start, ts, schedule, generator=gen)[:, :, 0, 0, :]  # [K, n, P]
    centred = values - values.mean()
    slope = ((chain.mean(1) - chain.mean((1, 2))[:, None]) * centred).sum(1) / (centred**2).sum()
    spread = chain.std(1).mean(1)
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    panels = [
        (schedule.sqrt_alpha_bars, slope, "picture left: slope of mean(x_t) vs x_0", "√ᾱ_t",
         "weight of x_0 in x_t"),
        (schedule.sqrt_one_minus_alpha_bars, spread, "noise: std of x_t", "√(1-ᾱ_t)",
         "std of the noise in x_t"),
    ]  # fmt: skip
    for ax, (curve, measured, title, name, ylabel) in zip(fig.subplots(1, 2), panels):
        ax.plot(np.arange(T), curve.numpy(), color="tab:blue",
                label=f"closed form q(x_t | x_0): {name}")  # fmt: skip
        ax.plot(ts, measured.numpy(), "o", color="tab:orange",
                label=f"step-by-step chain, {n} runs")  # fmt: skip
        ax.set_title(title, fontsize=10)
        ax.set(xlabel="timestep t", ylabel=ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def plot_losses(losses: Sequence[float], smooth: float = 0.98) -> Figure:
    """Training loss per step, raw and smoothed, log-scale y. The EMA with factor ``smooth``
    in [0, 1), ema_k = smooth ema_{k-1} + (1 - smooth) loss_k, is divided by (1 - smooth^k) so
    the start is not pulled towards 0 (as in Adam's bias fix)."""
    values = np.asarray(torch.as_tensor(losses, dtype=torch.float64).reshape(-1))
    if values.size == 0:
        raise ValueError("losses is empty: train for at least one step first.")
    if not 0.0 <= smooth < 1.0:
        raise ValueError(f"smooth must be in [0, 1) (0 = no smoothing), got {smooth}.")
    ema, acc = np.empty_like(values), 0.0
    for k, v in enumerate(values):
        acc = smooth * acc + (1 - smooth) * v
        ema[k] = acc / (1 - smooth ** (k + 1))
    ax = Figure(figsize=(7, 3.6), layout="constrained").subplots()
    steps = np.arange(1, values.size + 1)
    ax.plot(steps, values, lw=0.6, alpha=0.35, color="tab:blue", label="loss per step")
    ax.plot(steps, ema, lw=2, color="tab:blue", label=f"smoothed (EMA {smooth})")
    ax.set(yscale="log", xlabel="training step", ylabel="MSE between true and predicted noise")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax.figure


def plot_loss_by_timestep(
    timesteps: Union[torch.Tensor, Sequence[int]],
    losses: Union[torch.Tensor, Sequence[float]],
    schedule_steps: int,
    buckets: int = 10,
) -> Figure:
    """Mean loss per bucket of t, as bars: at which timesteps the noise is hard to predict.
    ``timesteps`` and ``losses``: one of each per training sample (any shape, flattened);
    ``schedule_steps``: T, so that the buckets cover [0, T-1]."""
    t = torch.as_tensor(timesteps).reshape(-1).long().numpy()
    loss = torch.as_tensor(losses, dtype=torch.float64).reshape(-1).numpy()
    if t.size != loss.size or t.size == 0:
        raise ValueError(f"need one loss per timestep, got {t.size} t and {loss.size} losses.")
    if not 1 <= buckets <= schedule_steps:
        raise ValueError(f"buckets must be between 1 and T = {schedule_steps}, got {buckets}.")
    edges = np.linspace(0, schedule_steps, buckets + 1)
    sums, counts = np.histogram(t, edges, weights=loss)[0], np.histogram(t, edges)[0]
    means = np.divide(sums, counts, out=np.full(buckets, np.nan), where=counts > 0)
    ax = Figure(figsize=(7, 3.6), layout="constrained").subplots()
    ax.bar(edges[:-1], means, width=np.diff(edges), align="edge", edgecolor="white")
    ax.set(xlabel="timestep t (small t: little noise, large t: almost pure noise)",
           ylabel="mean loss")  # fmt: skip
    ax.set_title(f"Loss by timestep ({t.size} samples, {buckets} buckets)", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    return ax.figure


def plot_sampler_quality(
    curves: Mapping[str, Sequence[tuple[int, float]]],
    ylabel: str = "mean PSNR against your picture (dB)",
) -> Figure:
    """Quality against the number of model calls, one line per sampler: ``curves`` maps a
    sampler's name to its (model calls, score) points, e.g. ``{"DDPM": [(1000, 38.1)]}``."""
    if not curves or any(len(points) == 0 for points in curves.values()):
        raise ValueError("curves must map each sampler name to at least one (calls, score).")
    ax = Figure(figsize=(7, 3.8), layout="constrained").subplots()
    for name, points in curves.items():
        calls, scores = zip(*sorted(points))
        ax.plot(calls, scores, marker="o", lw=1.8, label=name)
        for x, y in zip(calls, scores):
            ax.annotate(f"{y:.1f}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set(xscale="log", xlabel="model calls (steps), log scale: the time a sampler takes",
           ylabel=ylabel)  # fmt: skip
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)
    return ax.figure


def plot_edit_trade(
    strengths: Sequence[float], edits: torch.Tensor, drawing: torch.Tensor, picture: torch.Tensor
) -> Figure:
    """SDEdit's trade (notebook 06): the PSNR of each edit ``edits`` [len(strengths), C, H, W]
    against the ``drawing`` it started from (faithful) and against the ``picture`` the model
    learned (realistic), by strength t0 / T."""
    if len(strengths) != len(edits):
        raise ValueError(f"one strength per edit: {len(strengths)} strengths, {len(edits)} edits.")
    ax = Figure(figsize=(6, 3.2), layout="constrained").subplots()
    ax.plot(strengths, psnr(edits, drawing), "o-", label="PSNR to the drawing (faithful)")
    ax.plot(strengths, psnr(edits, picture), "s-", label="PSNR to the learned picture (realistic)")
    ax.set(xlabel="strength $t_0 / T$", ylabel="dB")
    ax.legend()
    return ax.figure


def _as_batch(images: Union[torch.Tensor, Sequence[torch.Tensor]], name: str) -> torch.Tensor:
    """[C, H, W], [B, C, H, W] or a list of [C, H, W] -> [B, C, H, W] on the CPU."""
    if isinstance(images, (list, tuple)):
        images = torch.stack([x.detach().cpu() for x in images])
    return image_batch(images, name).detach().cpu()


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes, cropped to what was drawn."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return buffer.getvalue()


def _show_figures_inline() -> None:
    """Let Jupyter and Colab show a returned ``Figure``: register :func:`figure_png` as its PNG
    formatter in the running IPython shell (pyplot, which would do it, may never be imported).
    Called at import so that no notebook can forget it; outside IPython it does nothing."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None and hasattr(shell, "display_formatter"):
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


_show_figures_inline()

"""The notebooks' derivations checked with numbers, and notebook 03's what-if runs.

Each check returns a :class:`Comparison`, a small table of what was measured beside what the
formula predicts. Timesteps are 0-based: code ``t`` is the paper's t + 1.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Optional, Union

import torch
from matplotlib.figure import Figure

from ..figures.plots import show_images
from ..forward import add_noise, add_noise_step
from ..metrics.psnr import psnr
from ..reverse import Sampler, predict_x0, q_posterior
from ..runtime.environment import quick_mode
from ..sampling import sample
from ..schedule import NoiseSchedule
from ..training import train


class Row(NamedTuple):
    """One line of a :class:`Comparison`."""

    quantity: str
    measured: float
    predicted: float
    formula: str = ""


@dataclass
class Comparison:
    """A numerical check: what was measured beside what the formula predicts."""

    title: str
    rows: list[Row]

    def __repr__(self) -> str:
        width = max(len(r.quantity) for r in self.rows)
        lines = [self.title, f"{'':<{width}}  {'measured':>12}  {'formula':>12}"]
        for r in self.rows:
            line = f"{r.quantity:<{width}}  {r.measured:>12.6g}  {r.predicted:>12.6g}"
            lines.append(f"{line}  {r.formula}" if r.formula else line)
        return "\n".join(lines)


def _scalars(n: int, value: float) -> torch.Tensor:
    """``n`` copies of one pixel value as a float64 batch [n, 1, 1, 1]: one sample per row."""
    return torch.full((n, 1, 1, 1), float(value), dtype=torch.float64)


def two_steps_in_one(
    schedule: NoiseSchedule, t: int = 500, x: float = 0.5, n: int = 200_000, seed: int = 0
) -> Comparison:
    """Two forward steps (eq. 2) at t and t + 1 from ``x``, ``n`` times, against one Gaussian
    step of alpha = alpha_t alpha_{t+1}: mean sqrt(alpha_t alpha_{t+1}) x, variance
    1 - alpha_t alpha_{t+1}. Repeated, this makes alpha-bar_t the product of all alphas."""
    schedule.check_t(torch.tensor([t, t + 1]))
    g = torch.Generator().manual_seed(seed)
    x_t = add_noise_step(_scalars(n, x), t, schedule, generator=g)
    x_t1 = add_noise_step(x_t, t + 1, schedule, generator=g)
    a1, a2 = float(schedule.alphas[t]), float(schedule.alphas[t + 1])
    return Comparison(
        f"two steps of q(x_t | x_(t-1)) at t = {t}, {t + 1} from x = {x}, {n:,} samples",
        [
            Row("mean after two steps", x_t1.mean().item(), (a1 * a2) ** 0.5 * x, "√(α₁α₂) x"),
            Row("variance after two steps", x_t1.var().item(), 1 - a1 * a2, "1 - α₁α₂"),
        ],
    )


def variance_goes_to_one(
    schedule: NoiseSchedule,
    start_variances: Sequence[float] = (0.0, 0.25, 4.0),
    at: Sequence[int] = (99, 999),
    n: Optional[int] = None,
    seed: int = 0,
) -> Comparison:
    """The forward chain (eq. 2) from x ~ N(0, v0) for each start variance v0: Var(x_t) at the
    steps ``at`` against Var(x_t) = abar_t v0 + (1 - abar_t), which goes to 1 whatever v0.
    ``n`` samples each (default 20,000; 5,000 in quick mode)."""
    n = n or (5_000 if quick_mode() else 20_000)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for v0 in start_variances:
        x = torch.randn(n, 1, 1, 1, generator=g, dtype=torch.float64) * float(v0) ** 0.5
        for t in range(max(at) + 1):
            x = add_noise_step(x, t, schedule, generator=g)
            if t in at:
                abar = float(schedule.alpha_bars[t])
                rows.append(Row(f"start {v0:g}, t = {t}", x.var().item(), abar * v0 + 1 - abar))
    return Comparison(f"Var(x_t) of the forward chain, {n:,} samples each", rows)


def posterior_by_sampling(
    schedule: NoiseSchedule,
    t: int = 10,
    x0: float = 0.5,
    n: Optional[int] = None,
    seed: int = 0,
) -> Comparison:
    """Pairs (x_{t-1}, x_t) of the forward process from one pixel value ``x0``, fitted by least
    squares x_{t-1} = a x_t + b: a and b must be eq. 7's weights of x_t and of x_0 (times x0),
    the residual variance beta-tilde_t. Needs t >= 1. ``n`` pairs (default 400,000; 100,000 in
    quick mode)."""
    n = n or (100_000 if quick_mode() else 400_000)
    if not 1 <= t < schedule.num_steps:
        raise ValueError(f"t must be between 1 and T-1 = {schedule.num_steps - 1}, got {t}.")
    g = torch.Generator().manual_seed(seed)
    x_prev, _ = add_noise(_scalars(n, x0), t - 1, schedule, generator=g)  # q(x_{t-1} | x_0)
    x_t = add_noise_step(x_prev, t, schedule, generator=g)  # q(x_t | x_{t-1})
    u, v = x_t.reshape(-1), x_prev.reshape(-1)
    slope = ((u - u.mean()) * (v - v.mean())).mean() / u.var(unbiased=False)
    intercept = v.mean() - slope * u.mean()
    residual = (v - (slope * u + intercept)).var()
    c1, c2 = float(schedule.posterior_mean_coef1[t]), float(schedule.posterior_mean_coef2[t])
    variance = float(schedule.posterior_variance[t])
    return Comparison(
        f"q(x_(t-1) | x_t, x_0) at t = {t} from x_0 = {x0}, by regression on {n:,} samples",
        [
            Row("weight of x_t in the mean", slope.item(), c2, "√α_t (1-ᾱ_(t-1)) / (1-ᾱ_t)"),
            Row("x_0's part of the mean", intercept.item(), c1 * x0, "√ᾱ_(t-1) β_t / (1-ᾱ_t) x_0"),
            Row("variance", residual.item(), variance, "β̃_t = (1-ᾱ_(t-1)) / (1-ᾱ_t) β_t"),
        ],
    )


def _noised(
    x0: torch.Tensor, schedule: NoiseSchedule, timesteps: Sequence[int], seed: int
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor, torch.Generator]]:
    """For each t: (t, the noise eps, x_t by eq. 4, the generator), in float64."""
    g = torch.Generator().manual_seed(seed)
    for t in timesteps:
        eps = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        yield t, eps, add_noise(x0.double(), t, schedule, noise=eps)[0], g


def posterior_mean_is_algorithm_2_mean(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int] = (0, 10, 500, 999),
    seed: int = 0,
) -> Comparison:
    """Given the exact noise eps of x_t, the posterior mean mu_tilde(x_t, x_0) (eq. 7) and
    Algorithm 2's mean 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) eps) agree to rounding:
    Algorithm 2 is eq. 7 with x_0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (eq. 15)."""
    rows = []
    for t, eps, x_t, _ in _noised(x0, schedule, timesteps, seed):
        mu_tilde, _ = q_posterior(x0.double(), x_t, t, schedule)
        coef = float(schedule.betas[t] / schedule.sqrt_one_minus_alpha_bars[t])
        algorithm_2 = (x_t - coef * eps) / float(schedule.alphas[t]) ** 0.5
        gap = (mu_tilde - algorithm_2).abs().max().item()
        rows.append(Row(f"t = {t}: largest |μ̃ - Algorithm 2's mean|", gap, 0.0))
    return Comparison("the posterior mean (eq. 7) and Algorithm 2's mean, exact noise", rows)


def noise_error_vs_x0_error(
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int] = (0, 10, 100, 500, 999),
    error: float = 0.1,
    seed: int = 0,
) -> Comparison:
    """For eps_hat = eps + ``error`` N(0, 1): ||eps - eps_hat||^2 / ||x0 - x0_hat||^2 =
    abar_t / (1 - abar_t), the signal-to-noise ratio, since by eq. 15
    x0_hat - x0 = -sqrt((1 - abar_t) / abar_t) (eps_hat - eps)."""
    rows = []
    for t, eps, x_t, g in _noised(x0, schedule, timesteps, seed):
        eps_hat = eps + error * torch.randn(x0.shape, generator=g, dtype=torch.float64)
        x0_hat = predict_x0(x_t, t, eps_hat, schedule)
        ratio = ((eps - eps_hat) ** 2).sum() / ((x0.double() - x0_hat) ** 2).sum()
        abar = float(schedule.alpha_bars[t])
        rows.append(Row(f"t = {t}: ‖ε-ε̂‖² / ‖x₀-x̂₀‖²", ratio.item(), abar / (1 - abar)))
    return Comparison("the noise loss weights errors in the picture by ᾱ_t / (1-ᾱ_t)", rows)


@dataclass
class WhatIfRun:
    """One variant of a what-if experiment: its samples [n, C, H, W], their PSNR [n] against
    the training picture, and what they cost."""

    images: torch.Tensor
    psnr: torch.Tensor
    steps: int
    train_seconds: float
    sample_seconds: float


def what_if(
    runs: dict[str, tuple],
    x0: torch.Tensor,
    *,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    n: int = 4,
    seed: int = 0,
    batch_size: Optional[int] = None,
    device: Optional[Union[str, torch.device]] = None,
    sampler: Optional[Sampler] = None,
) -> dict[str, WhatIfRun]:
    """Train each of ``runs`` (name -> ``(model, schedule)`` or ``(model, schedule,
    prediction)``, ``"eps"`` by default) on ``x0`` with the same budget, batch size and seed,
    then draw ``n`` samples with the same seed and ``sampler`` (default DDPM's T steps)."""
    out = {}
    for name, (model, schedule, *rest) in runs.items():
        trained = train(
            model, x0, schedule, minutes=minutes, steps=steps, seed=seed, device=device,
            batch_size=batch_size, prediction=rest[0] if rest else "eps", progress=False,
        )  # fmt: skip
        start = time.perf_counter()  # trained.model predicts the noise, whatever the net learned
        images = sample(trained.model, schedule, n, sampler, seed=seed, progress=False).images
        seconds = time.perf_counter() - start
        out[name] = WhatIfRun(images, psnr(images, x0), trained.steps, trained.elapsed, seconds)
    return out


def show_what_if(results: dict[str, WhatIfRun]) -> Figure:
    """Each variant's samples in a row, titled with its name, training steps and sampling time
    (first image) and each sample's PSNR."""
    titles = []
    for name, run in results.items():
        for i, score in enumerate(run.psnr.tolist()):
            head = f"{name}\n{run.steps} steps, sampled in {run.sample_seconds:.1f} s\n"
            titles.append((head if i == 0 else "\n\n") + f"PSNR {score:.1f} dB")
    n = max(len(run.images) for run in results.values())
    images = torch.cat([run.images for run in results.values()])
    return show_images(images, titles=titles, ncols=n, size=2.2)


def noise_prediction_examples(
    model: torch.nn.Module,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x0`` [1, C, H, W] noised to each of ``timesteps`` (eq. 4), and the model's guess of the
    noise: ``(x_t, noise, predicted noise, t)``, one row per timestep, on the CPU (the arguments
    of :func:`.figures.plots.plot_noise_prediction`)."""
    t = torch.tensor([int(s) for s in timesteps], dtype=torch.long)
    x = x0[:1].expand(len(t), *x0.shape[1:])
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    x_t, _ = add_noise(x, t, schedule, noise=eps)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(x_t.to(device), t.to(device)).float().cpu()
    model.train(was_training)
    return x_t, eps, predicted, t

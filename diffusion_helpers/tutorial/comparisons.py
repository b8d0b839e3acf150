"""Notebook 04's sampler comparisons: one model, the same x_T, several samplers, each timed and
scored by PSNR against the picture the model learned."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Callable, Optional

import torch
from matplotlib.figure import Figure

from ..figures.plots import show_images
from ..metrics.psnr import psnr
from ..reverse import Sampler, SampleResult
from ..sampling import sample
from ..schedule import NoiseSchedule


def compare_samplers(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    samplers: Mapping[str, Sampler],
    picture: torch.Tensor,
    *,
    n: int,
    seed: int = 0,
) -> dict[str, SampleResult]:
    """name -> the ``n`` samples of each of ``samplers`` from the same x_T (``seed``), with one
    line each printed (:func:`describe_run`)."""
    if not samplers:
        raise ValueError("samplers is empty: give at least one name -> dh.Sampler(...).")
    results = {}
    for name, sampler in samplers.items():
        results[name] = sample(model, schedule, n, sampler, seed=seed, progress=False)
        print(describe_run(name, results[name], picture))
    return results


def describe_run(name: str, run: SampleResult, picture: torch.Tensor) -> str:
    """The sampler's name, model calls, seconds and mean PSNR against ``picture``, in one line."""
    score = psnr(run.images, picture).mean()
    return (
        f"{name:<30} {len(run.timesteps):5d} calls {run.seconds:6.1f} s   mean PSNR {score:5.1f} dB"
    )


def quality_by_steps(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    samplers: Mapping[str, Sampler],
    picture: torch.Tensor,
    *,
    steps: Sequence[int],
    n: int,
    seed: int = 0,
    earlier: Optional[Mapping[str, SampleResult]] = None,
) -> dict[str, list[tuple[int, float]]]:
    """name -> [(model calls, mean PSNR)] for each of ``samplers`` at each number of ``steps``,
    plus the ``earlier`` runs as one point each (for :func:`.figures.plots.plot_sampler_quality`)."""
    curves = {name: [_point(run, picture)] for name, run in (earlier or {}).items()}
    for name, sampler in samplers.items():
        by_steps = {f"{name}, {k} steps": replace(sampler, steps=k) for k in steps}
        runs = compare_samplers(model, schedule, by_steps, picture, n=n, seed=seed)
        curves[name] = [_point(run, picture) for run in runs.values()]
    return curves


def show_runs(runs: Mapping[str, SampleResult], picture: torch.Tensor, per_run: int = 4) -> Figure:
    """A row per run of its first ``per_run`` samples, titled with its name and their PSNR."""
    images, titles = [], []
    for name, run in runs.items():
        shown = run.images[:per_run]
        images.append(shown)
        titles += [f"{name}\n{s:.1f} dB" for s in psnr(shown, picture)]
    ncols = min(per_run, max(len(x) for x in images))
    return show_images(torch.cat(images), titles=titles, ncols=ncols, size=2.6)


def _point(run: SampleResult, picture: torch.Tensor) -> tuple[int, float]:
    return len(run.timesteps), psnr(run.images, picture).mean().item()

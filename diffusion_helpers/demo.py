"""The whole tutorial, headless: what ``python -m diffusion_helpers demo|train|sample`` runs.

Each function writes its pictures to a folder and prints one line per file, so a person can
open them; the notebooks show the same pictures inline.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import torch
from matplotlib.figure import Figure

from . import tutorial, viz
from .checkpoint import export_weights, load_for_sampling
from .images import load_image_info, sample_image_path
from .sampling import psnr, sample
from .schedule import NoiseSchedule
from .train import train
from .unet import UNet

FORWARD_STEPS = [0, 50, 100, 200, 300, 500, 700, 999]  # where the forward grid looks (T = 1000)


def run_demo(
    image: Optional[Path],
    out: Path,
    *,
    size: Optional[int] = None,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    seed: int = 0,
    device: Optional[str] = None,
) -> dict:
    """Forward grid, schedule plot, training, reverse GIF and final samples with PSNR, in ``out``.

    Returns a summary dict (paths, PSNR, times) that the tests read.
    """
    cfg = tutorial.settings(device)
    size = size or cfg.image_size
    x0, info = load_image_info(image if image is not None else sample_image_path(), size=size)
    model = UNet.preset(cfg.preset, image_channels=x0.shape[1], image_size=size)  # checks size
    out.mkdir(parents=True, exist_ok=True)
    print(f"Picture: {info.describe()}")
    schedule = NoiseSchedule(cfg.num_steps)
    g = torch.Generator().manual_seed(seed)

    written = {
        "forward_grid": _save(
            viz.plot_noising_grid(x0, schedule, _forward_steps(schedule), generator=g),
            out / "forward_grid.png",
        ),
        "schedules": _save(
            viz.plot_schedules(
                {"linear (DDPM)": schedule, "cosine": NoiseSchedule(cfg.num_steps, "cosine")}
            ),
            out / "schedules.png",
        ),
    }

    print(
        f"Training a {cfg.preset} U-Net ({model.num_parameters() / 1e6:.2f} M parameters) "
        f"on {cfg.device.type}..."
    )
    result = train(
        model,
        x0,
        schedule,
        minutes=_budget(minutes, steps, cfg),
        steps=_steps(minutes, steps, cfg),
        device=cfg.device,
        seed=seed,
        checkpoint=out / "unet.pt",
    )
    written["loss"] = _save(viz.plot_losses(result.losses), out / "loss.png")
    written["checkpoint"] = out / "unet.pt"

    start = time.perf_counter()
    run = sample(
        result.model,
        schedule,
        n=cfg.num_samples,
        seed=seed,
        every=max(1, schedule.num_steps // 100),
    )
    sample_seconds = time.perf_counter() - start
    scores = psnr(run.images, x0, mirror=True)
    written["reverse_gif"] = viz.save_gif(run.frames, out / "reverse.gif")
    titles = ["your picture"] + [f"{s:.1f} dB" for s in scores.tolist()]
    written["samples"] = _save(
        viz.show_images(torch.cat([x0, run.images]), titles=titles), out / "samples.png"
    )

    for name, path in written.items():
        print(f"  {name:<13} {path}")
    print(
        f"Trained {result.steps} steps in {result.elapsed:.0f} s; sampled {cfg.num_samples} "
        f"pictures in {sample_seconds:.0f} s; mean PSNR {scores.mean():.1f} dB."
    )
    print(f"Everything is in {out.resolve()}")
    return {
        "files": written,
        "psnr": scores,
        "train_seconds": result.elapsed,
        "sample_seconds": sample_seconds,
        "steps": result.steps,
    }


def run_train(
    image: Optional[Path],
    out: Path,
    *,
    size: Optional[int] = None,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    seed: int = 0,
    device: Optional[str] = None,
    preset: Optional[str] = None,
    export: Optional[Path] = None,
) -> Path:
    """Train on a picture (or a folder of pictures) and write the checkpoint ``out``; with
    ``export``, also a small float16 copy of the EMA weights for sampling only."""
    cfg = tutorial.settings(device)
    size = size or cfg.image_size
    source = image if image is not None else sample_image_path()
    data = source if Path(source).is_dir() else load_image_info(source, size=size)[0]
    model = UNet.preset(preset or cfg.preset, image_size=size)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = train(
        model,
        data,
        NoiseSchedule(cfg.num_steps),
        minutes=_budget(minutes, steps, cfg),
        steps=_steps(minutes, steps, cfg),
        device=cfg.device,
        seed=seed,
        checkpoint=out,
    )
    print(f"Trained {result.steps} steps in {result.elapsed:.0f} s; checkpoint: {out}")
    if export is not None:
        small = export_weights(out, export)
        print(f"Sampling-only copy: {small} ({small.stat().st_size / 1e6:.1f} MB)")
    return out


def run_sample(
    checkpoint: Optional[Path],
    out: Path,
    *,
    n: int = 8,
    method: str = "ddpm",
    ddim_steps: int = 50,
    seed: int = 0,
    device: Optional[str] = None,
) -> dict:
    """Sample ``n`` pictures from a checkpoint (default: the shipped one) into ``out``."""
    path = checkpoint if checkpoint is not None else tutorial.PRETRAINED
    model, schedule, _ = load_for_sampling(path, tutorial.settings(device).device)
    run = sample(
        model,
        schedule,
        n=n,
        method=method,
        steps=ddim_steps if method == "ddim" else None,
        seed=seed,
        every=max(1, schedule.num_steps // 100),
    )
    out.mkdir(parents=True, exist_ok=True)
    written = {
        "samples": _save(viz.show_images(run.images), out / "samples.png"),
        "reverse_gif": viz.save_gif(run.frames, out / "reverse.gif"),
    }
    for name, p in written.items():
        print(f"  {name:<13} {p}")
    return written


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _forward_steps(schedule: NoiseSchedule) -> list[int]:
    T = schedule.num_steps
    return sorted({min(T - 1, round(t * T / 1000)) for t in FORWARD_STEPS})


def _budget(
    minutes: Optional[float], steps: Optional[int], cfg: tutorial.TutorialSettings
) -> Optional[float]:
    if minutes is not None:
        return minutes
    return None if steps is not None or cfg.train_steps is not None else cfg.train_minutes


def _steps(
    minutes: Optional[float], steps: Optional[int], cfg: tutorial.TutorialSettings
) -> Optional[int]:
    if steps is not None:
        return steps
    return None if minutes is not None else cfg.train_steps

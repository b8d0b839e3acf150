"""DDPM (all T steps) against DDIM (50 steps) on the same trained model: time and quality.

Trains the default model of this machine (``tutorial.settings``: the tiny U-Net on the 32 px
default picture on a CPU) for the default budget, or loads ``--checkpoint``; then samples the
same number of images with each method from the same seed (DDIM twice: eta = 0, the
deterministic sampler, and eta = 1, which adds DDPM-like noise) and prints the wall time of
each, the DDPM / DDIM time ratio, and the PSNR of the samples against the training picture.

    python bench/sample_speed.py                        # train (default budget), then compare
    python bench/sample_speed.py --minutes 2 --n 8
    python bench/sample_speed.py --checkpoint outputs/unet.pt
    python bench/sample_speed.py --save /tmp/unet.pt     # keep the trained model

The CPU is often shared: the load average is printed so that times can be judged.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from diffusion_helpers import tutorial
from diffusion_helpers.checkpoint import load_model
from diffusion_helpers.images import DEFAULT_IMAGE, load_image
from diffusion_helpers.sampling import psnr, sample
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.train import train
from diffusion_helpers.unet import UNet


def get_model(args, cfg, schedule):
    """The trained model and the picture it learned (trained here unless --checkpoint)."""
    if args.checkpoint:
        model = load_model(args.checkpoint, device=cfg.device)
        x0 = load_image(
            args.image, size=model.config.image_size, channels=model.config.image_channels
        )
        print(f"Loaded {args.checkpoint} ({model.num_parameters() / 1e6:.2f} M parameters).")
        return model, x0
    x0 = load_image(args.image, size=cfg.image_size)
    model = UNet.preset(cfg.preset, image_channels=x0.shape[1], image_size=cfg.image_size)
    minutes = args.minutes if args.minutes is not None else cfg.train_minutes
    steps = None if args.minutes is not None else cfg.train_steps
    print(f"Training the {cfg.preset} U-Net ({model.num_parameters() / 1e6:.2f} M parameters) "
          f"on {cfg.image_size} px for {minutes} min / {steps} steps on {cfg.device.type}...")  # fmt: skip
    result = train(model, x0, schedule, minutes=minutes, steps=steps, device=cfg.device,
                   seed=args.seed, checkpoint=args.save, progress=False)  # fmt: skip
    print(f"  {result.steps} steps in {result.elapsed:.0f} s, final loss ~ "
          f"{sum(result.losses[-50:]) / len(result.losses[-50:]):.4f}")  # fmt: skip
    return result.model, x0


def timed_sample(model, schedule, args, **kwargs):
    start = time.perf_counter()
    run = sample(model, schedule, n=args.n, seed=args.seed, progress=False, **kwargs)
    return run.images, time.perf_counter() - start  # .images is on the CPU: the GPU has synced


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=None, help="training budget")
    parser.add_argument("--checkpoint", type=Path, default=None, help="skip training: load this")
    parser.add_argument("--save", type=Path, default=None, help="keep the trained model here")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--n", type=int, default=8, help="images per method")
    parser.add_argument("--ddim-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    args = parser.parse_args()

    cfg = tutorial.settings(args.device)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} "
          f"({os.cpu_count()} cores); torch threads {torch.get_num_threads()}")  # fmt: skip
    schedule = NoiseSchedule(cfg.num_steps)
    model, x0 = get_model(args, cfg, schedule)
    sample(model, schedule, n=args.n, method="ddim", steps=2, progress=False)  # warm-up

    runs = [("DDPM", schedule.num_steps, *timed_sample(model, schedule, args, method="ddpm"))]
    for eta in (0.0, 1.0):  # deterministic DDIM, and DDIM with DDPM-like noise
        images, seconds = timed_sample(
            model, schedule, args, method="ddim", steps=args.ddim_steps, eta=eta
        )
        runs.append((f"DDIM eta={eta:g}", args.ddim_steps, images, seconds))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{args.n} images of {x0.shape[-1]} px, T = {schedule.num_steps}, on {cfg.device}")
    print(f"{'method':<12}{'steps':>7}{'seconds':>10}{'PSNR mean':>11}{'min':>7}{'max':>7}")
    for name, steps, images, seconds in runs:
        db = psnr(images, x0)
        print(
            f"{name:<12}{steps:>7}{seconds:>10.2f}{db.mean():>11.2f}{db.min():>7.2f}{db.max():>7.2f}"
        )
    print(f"DDPM / DDIM time: {runs[0][3] / runs[1][3]:.1f}x")


if __name__ == "__main__":
    main()

"""The samplers side by side on one trained model: seconds and PSNR of DDPM, DDIM, DPM-Solver++.

By default loads the shipped memorised model (``diffusion_helpers/data/pretrained_tiny.pt``: the
tiny U-Net trained on ``images/scene.png`` at 32 px, T = 1000) and its picture; ``--checkpoint``
loads another, ``--minutes`` trains one here first (``tutorial.settings``). Then it samples the
same number of images from the same seed with each method:

    DDPM (all T steps), DDIM-50 with eta = 0 (deterministic) and eta = 1 (DDPM-like noise),
    DPM-Solver++(2M) with 10, 20 and 50 steps, eta = 0 (the ODE) and eta = 1 (the SDE),
    and, at 20 steps, DDIM with eta = 1 on DPM-Solver's timesteps (even in log-SNR) and
    DPM-Solver++ on DDIM's (even in t), which separate what the spacing does from what the
    solver does,

and prints the wall time of each and the PSNR of the samples against the picture (the nearer
of it and its mirror image: training flips pictures), mean and min over the images.

``--digits CHECKPOINT`` scores the same samplers on a class-conditional digits model instead
(notebook 05's ``digits.pt``, or ``bench/dataset_quality.py --save``): ``--n`` samples, n / 10
per digit at guidance w = 1.5, each scored by the class accuracy and the Frechet distance of
``evaluate.py``'s classifier (as in dataset_quality.py). DDPM only with ``--with-ddpm``.

    OMP_NUM_THREADS=1 python bench/sample_speed.py          # shipped model, 8 images, seed 0
    python bench/sample_speed.py --digits outputs/digits.pt --n 500
    OMP_NUM_THREADS=1 python bench/sample_speed.py --inpaint --n 4   # RePaint settings instead
    python bench/sample_speed.py --checkpoint outputs/unet.pt
    python bench/sample_speed.py --minutes 2 --save /tmp/unet.pt   # train here, keep the model

``--inpaint`` instead fills the centre square (a quarter of the picture; ``--fill right``: the
right half) of the picture itself with RePaint (DDPM; ``--method``, ``--steps``) at several
resample/jump settings (``--repaint 1,1 2,10``) and prints the PSNR of the filled part: the
memorised model knows what belongs there.

The CPU is often shared: the CPU, the torch thread count and the load average are printed so
that times can be judged.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import torch

from diffusion_helpers.editing import inpaint
from diffusion_helpers.guidance import DEFAULT_GUIDANCE
from diffusion_helpers.metrics.classifier import (
    class_accuracy,
    features,
    frechet_distance,
    train_classifier,
)
from diffusion_helpers.metrics.psnr import psnr
from diffusion_helpers.pictures.data import load_dataset
from diffusion_helpers.pictures.images import load_image, sample_image_path
from diffusion_helpers.reverse import Sampler, model_device, reverse_process
from diffusion_helpers.sampling import load_for_sampling, sample
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.timesteps import ddim_timesteps, logsnr_timesteps
from diffusion_helpers.training import train
from diffusion_helpers.tutorial.settings import settings
from diffusion_helpers.tutorial.sweeps import class_labels
from diffusion_helpers.unet import UNet

SHIPPED = (
    Path(__file__).resolve().parent.parent / "diffusion_helpers" / "data" / "pretrained_tiny.pt"
)


def describe_cpu() -> str:
    """The CPU's model name and its widest vector unit, from /proc/cpuinfo (Linux)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return f"unknown CPU ({os.cpu_count()} cores)"
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines()
                 if ln.startswith("model name")), "unknown CPU")  # fmt: skip
    flags = set(next((ln.split(":", 1)[1].split() for ln in info.splitlines()
                      if ln.startswith("flags")), []))  # fmt: skip
    unit = ("AVX-512 with BF16" if flags & {"avx512_bf16", "amx_bf16"} else
            "AVX-512 without BF16" if "avx512f" in flags else "AVX2" if "avx2" in flags
            else "no AVX2")  # fmt: skip
    return f"{name}, {unit}, {os.cpu_count()} cores"


def get_model(args, cfg):
    """(model, schedule, picture): loaded from a checkpoint, or trained here with --minutes."""
    if args.minutes is None:
        model, schedule, _ = load_for_sampling(args.checkpoint, device=cfg.device)
        x0 = load_image(args.image, size=model.config.image_size,
                        channels=model.config.image_channels)  # fmt: skip
        print(f"Loaded {args.checkpoint} ({model.num_parameters() / 1e6:.2f} M parameters).")
        return model, schedule, x0
    schedule = NoiseSchedule(cfg.num_steps)
    x0 = load_image(args.image, size=cfg.image_size)
    model = UNet.preset(cfg.preset, image_channels=x0.shape[1], image_size=cfg.image_size)
    print(f"Training the {cfg.preset} U-Net ({model.num_parameters() / 1e6:.2f} M parameters) "
          f"on {cfg.image_size} px for {args.minutes} min on {cfg.device.type}...")  # fmt: skip
    result = train(model, x0, schedule, minutes=args.minutes, steps=None, device=cfg.device,
                   seed=args.seed, checkpoint=args.save, progress=False)  # fmt: skip
    print(f"  {result.steps} steps in {result.elapsed:.0f} s, final loss ~ "
          f"{sum(result.losses[-50:]) / len(result.losses[-50:]):.4f}")  # fmt: skip
    return result.model, schedule, x0


def timed_sample(model, schedule, args, sampler, timesteps=None, labels=None):
    """``args.n`` samples; ``timesteps`` runs the loop on those instead of the sampler's own."""
    start = time.perf_counter()
    if timesteps is None:
        run = sample(model, schedule, args.n, sampler, labels=labels, seed=args.seed,
                     progress=False)  # fmt: skip
    else:  # as sample() does: x_T and every z from one CPU generator seeded with args.seed
        generator = torch.Generator().manual_seed(args.seed)
        c, size = model.config.image_channels, model.config.image_size
        x = torch.randn(args.n, c, size, size, generator=generator).to(model_device(model))
        run = reverse_process(model, schedule, x, timesteps, sampler, generator=generator,
                              labels=labels, progress=False)  # fmt: skip
    return run.images, time.perf_counter() - start  # .images is on the CPU: the GPU has synced


def sampler_plan(schedule, ddpm=True):
    """(name, steps, Sampler, timesteps or None) of each sampler in the table."""
    T = schedule.num_steps
    plan = [("DDPM", T, Sampler("ddpm"), None)] if ddpm else []
    plan += [(f"DDIM eta={eta:g}", 50, Sampler("ddim", 50, eta), None) for eta in (0.0, 1.0)]
    for eta, name in ((0.0, "DPM-Solver++"), (1.0, "SDE-DPM-Solver++")):
        plan += [(name, k, Sampler("dpm_solver", k, eta), None) for k in (10, 20, 50)]
    # the spacing apart from the solver: DDIM on DPM-Solver's timesteps, DPM-Solver on DDIM's
    logsnr, even = logsnr_timesteps(schedule, 20), ddim_timesteps(T, 20)
    plan += [("DDIM eta=1 logSNR", 20, Sampler("ddim", eta=1.0), logsnr)]
    plan += [(f"{name} even t", 20, Sampler("dpm_solver", eta=eta), even)
             for eta, name in ((0.0, "DPM++"), (1.0, "SDE-DPM++"))]  # fmt: skip
    return plan


def digits_table(args):
    """The samplers on a class-conditional digits model: class accuracy and Frechet distance."""
    model, schedule, _ = load_for_sampling(args.digits, device=args.device)
    size = model.config.image_size
    data = load_dataset("digits", size)
    print(f"Loaded {args.digits}: {model.num_parameters() / 1e6:.2f} M parameters, {size} px, "
          f"{model.config.num_classes} classes; {data.describe()}")  # fmt: skip
    classifier = train_classifier(data.images, data.labels, seed=0)
    real = features(classifier, data.images)
    labels = class_labels(10, args.n // 10)
    rows = []
    for name, steps, sampler, timesteps in sampler_plan(schedule, ddpm=args.with_ddpm):
        guided = dataclasses.replace(sampler, guidance_scale=DEFAULT_GUIDANCE)
        images, seconds = timed_sample(model, schedule, args, guided, timesteps, labels)
        rows.append((name, steps, seconds, class_accuracy(classifier, images, labels),
                     frechet_distance(features(classifier, images), real)))  # fmt: skip
        print(f"  {name} {steps}: {seconds:.1f} s", flush=True)
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"\n{args.n} digits ({args.n // 10} per class) of {size} px, w = {DEFAULT_GUIDANCE}, "
          f"T = {schedule.num_steps}, seed {args.seed}, torch threads {torch.get_num_threads()}; "
          f"classifier {classifier.held_out_accuracy:.1%} on held-out real digits")  # fmt: skip
    print(f"{'method':<20}{'steps':>6}{'seconds':>9}{'accuracy':>10}{'Frechet':>9}")
    for name, steps, seconds, accuracy, frechet in rows:
        print(f"{name:<20}{steps:>6}{seconds:>9.2f}{accuracy:>10.1%}{frechet:>9.1f}")


def inpaint_table(model, schedule, x0, args):
    """RePaint on the picture's centre square at several settings: seconds and PSNR."""
    size = x0.shape[-1]
    mask = torch.ones(1, 1, size, size)
    if args.fill == "centre":
        mask[..., size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 0
    else:
        mask[..., size // 2 :] = 0  # the right half
    fill = mask == 0
    image = x0.expand(args.n, -1, -1, -1)
    flat = image.clone()
    flat[fill.expand_as(flat)] = 0.0  # grey: what a fill that knows nothing scores
    steps = f"{args.method}-{args.steps or 'default'}, eta {args.eta:g}"
    print(f"\nRePaint ({steps}, T = {schedule.num_steps}), {args.n} images of {size} px, seed "
          f"{args.seed}, {args.fill} filled; torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{'resample':>9}{'jump':>6}{'seconds':>9}{'PSNR mean':>11}{'min':>7}  kept exact")
    db = psnr(flat, x0, mask=~fill)
    print(f"{'grey fill':>15}{'':>9}{db.mean():>11.2f}{db.min():>7.2f}")
    for resample, jump in args.repaint:
        start = time.perf_counter()
        run = inpaint(model, schedule, image, mask, Sampler(args.method, args.steps, args.eta),
                      resample=resample, jump=jump, seed=args.seed, progress=False)  # fmt: skip
        seconds = time.perf_counter() - start
        db = psnr(run.images, x0, mask=~fill)
        kept = torch.equal(run.images[~fill.expand_as(image)], image[~fill.expand_as(image)])
        print(f"{resample:>9}{jump:>6}{seconds:>9.1f}{db.mean():>11.2f}{db.min():>7.2f}  {kept}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", type=Path, default=SHIPPED, help="the model to load")
    parser.add_argument("--minutes", type=float, default=None, help="train here instead")
    parser.add_argument("--save", type=Path, default=None, help="keep the trained model here")
    parser.add_argument("--image", type=Path, default=sample_image_path())
    parser.add_argument("--n", type=int, default=8, help="images per method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--inpaint", action="store_true", help="the RePaint table instead")
    parser.add_argument("--repaint", type=lambda v: tuple(int(k) for k in v.split(",")),
                        nargs="+", default=[(1, 1), (2, 10), (4, 10)],
                        help="resample,jump pairs for --inpaint")  # fmt: skip
    parser.add_argument(
        "--fill",
        choices=("centre", "right"),
        default="centre",
        help="--inpaint: fill the centre square (a quarter) or the right half",
    )
    parser.add_argument("--method", default="ddpm", help="--inpaint: the sampler")
    parser.add_argument("--steps", type=int, default=None, help="--inpaint: its steps")
    parser.add_argument("--eta", type=float, default=0.0, help="--inpaint: its eta")
    parser.add_argument("--digits", type=Path, default=None,
                        help="score the samplers on this conditional digits model instead")  # fmt: skip
    parser.add_argument("--with-ddpm", action="store_true",
                        help="--digits: DDPM too (1000 steps: 500 guided digits take 20 min)")  # fmt: skip
    args = parser.parse_args()
    if args.digits is not None:
        if args.n % 10:
            parser.error("--n must be a multiple of 10 with --digits (n / 10 per digit).")
        print(f"CPU: {describe_cpu()}; torch threads {torch.get_num_threads()}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        digits_table(args)
        return

    cfg = settings(args.device)
    print(f"CPU: {describe_cpu()}; torch threads {torch.get_num_threads()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    model, schedule, x0 = get_model(args, cfg)
    sample(model, schedule, args.n, Sampler("ddim", 2), progress=False)  # warm-up
    if args.inpaint:
        inpaint_table(model, schedule, x0, args)
        print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return

    T = schedule.num_steps
    runs = []
    for name, steps, sampler, timesteps in sampler_plan(schedule):
        images, seconds = timed_sample(model, schedule, args, sampler, timesteps)
        runs.append((name, steps, images, seconds))
    print(f"load average after:  {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"\n{args.n} images of {x0.shape[-1]} px, T = {T}, seed {args.seed}, on {cfg.device}, "
        f"torch threads {torch.get_num_threads()}; PSNR against the picture or its mirror"
    )
    print(f"{'method':<20}{'steps':>6}{'seconds':>9}{'PSNR mean':>11}{'min':>7}{'max':>7}")
    for name, steps, images, seconds in runs:
        db = psnr(images, x0, mirror=True)
        print(f"{name:<20}{steps:>6}{seconds:>9.2f}{db.mean():>11.2f}{db.min():>7.2f}"
              f"{db.max():>7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

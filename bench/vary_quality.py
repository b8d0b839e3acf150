"""Variations of one picture (diffusion_helpers/vary.py): are they new, do they look right?

For each picture: train a patch model on random crops (``vary.train_variations``, a fixed
number of ``--steps`` so the quality does not depend on how busy the machine is, or
``--minutes``), sample ``--n`` variations at the picture's size and a few at a larger size,
and print the three measurements of ``vary``:

- copy PSNR: the best PSNR of the picture (its mirror image, shifts of up to 4 px) against a
  sample; the max over samples. Below 20 dB: no sample is a copy.
- patch distance: 7x7 patches of the samples against their nearest patch of the picture (RMS
  in [-1, 1] units), beside the same for held-out corner crops of the picture ("ref").
- colour distance: colour histograms (total variation, 0..1), beside that of the picture's
  four quarters against the whole picture ("ref").
- spread: mean RMS difference between two samples.

A PNG per picture (the picture, its samples, the larger samples) goes to ``--out``. The CPU
(model name, AVX-512 BF16 / AVX2), the thread count and the load average are printed, since
the machine is often shared.

    python tools/make_photos.py                          # once: images/landscape.png, pebbles.png
    OMP_NUM_THREADS=2 python bench/vary_quality.py --steps 1500
    python bench/vary_quality.py --pictures scene my_photo.jpg --steps 3000 --size 64
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path

from diffusion_helpers.checks.tensors import check_image, one_picture
from diffusion_helpers.figures.plots import show_images
from diffusion_helpers.metrics.copying import (
    copy_psnr,
    held_out_patch_distance,
    patch_distance,
    sample_spread,
)
from diffusion_helpers.pictures.images import load_image, sample_image_path
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.tutorial.variations import sample_variations, train_variations

PICTURES = ["scene", "face", "pattern", "landscape", "pebbles"]


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def picture_path(name: str) -> Path:
    """A bundled picture's name (images/<name>.png) or a path."""
    path = Path(name)
    return path if path.suffix else sample_image_path(name)


def measure(name: str, args: argparse.Namespace, schedule: NoiseSchedule) -> dict:
    """Train on one picture, sample, measure; write the PNG. Returns one row of the table."""
    picture = load_image(picture_path(name), size=args.size)
    start = time.perf_counter()
    result = train_variations(picture, schedule, crop=args.crop, steps=args.steps,
                                   minutes=args.minutes, seed=args.seed, device=args.device,
                                   flip=args.flip, progress=False)  # fmt: skip
    train_s = time.perf_counter() - start
    sampler = dict(method="ddim", steps=args.sample_steps, eta=1.0, progress=False)
    start = time.perf_counter()
    same = sample_variations(result.model, schedule, args.n, args.size, seed=1, **sampler)
    large = sample_variations(result.model, schedule, 2, args.large, seed=2, **sampler)
    sample_s = time.perf_counter() - start
    images = same.images
    half = args.size // 2  # the four quarters of the picture: the yardstick for colours
    quarters = torch.cat(
        [picture[..., y : y + half, x : x + half] for y in (0, half) for x in (0, half)]
    )
    row = dict(
        picture=name,
        steps=result.steps,
        train_s=train_s,
        sample_s=sample_s,
        copy=float(copy_psnr(images, picture).max()),
        copy_large=float(copy_psnr(large.images, picture).max()),
        patch=float(patch_distance(images, picture, mirror=args.flip).mean()),
        patch_large=float(patch_distance(large.images, picture, mirror=args.flip).mean()),
        patch_ref=held_out_patch_distance(picture),
        colour=float(colour_distance(images, picture).mean()),
        colour_ref=float(colour_distance(quarters, picture).mean()),
        spread=sample_spread(images),
        loss=sum(result.losses[-100:]) / len(result.losses[-100:]),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    titles = [f"{name} ({args.size} px)"] + [f"{s:.1f} dB" for s in copy_psnr(images, picture)]
    show_images(torch.cat([picture, images]), titles=titles, ncols=len(titles), size=2.0).savefig(
        args.out / f"vary_{name}.png", dpi=100
    )
    show_images(large.images, titles=[f"{args.large} px"] * 2, ncols=2, size=3.0).savefig(
        args.out / f"vary_{name}_large.png", dpi=100
    )
    return row


# Colour histograms: 8 bins per channel (512 colours for RGB), coarse enough that a handful of
# samples at 48 px (thousands of pixels) fill them without holes.
COLOUR_BINS = 8


def colour_histogram(images: torch.Tensor, bins: int = COLOUR_BINS) -> torch.Tensor:
    """The share of pixels of each colour: [n, bins^C], each row summing to 1 (each channel's
    [-1, 1] cut into ``bins`` equal bins; a colour is one bin per channel)."""
    check_image(images, "images")
    n, c = images.shape[:2]
    level = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * bins).long().clamp_max(bins - 1)
    weights = bins ** torch.arange(c - 1, -1, -1)
    index = (level * weights[None, :, None, None]).sum(1).flatten(1)  # [n, H W] colour numbers
    hist = torch.zeros(n, bins**c).scatter_add_(1, index, torch.ones(index.shape))
    return hist / index.shape[1]


def colour_distance(
    samples: torch.Tensor, picture: torch.Tensor, bins: int = COLOUR_BINS
) -> torch.Tensor:
    """Total-variation distance between the colour histogram of each sample and the picture's:
    half the sum of |share differences|, 0 = the same colours in the same amounts, 1 = no
    colour in common. float32 [n]."""
    picture = one_picture(picture)
    mine, theirs = colour_histogram(samples, bins), colour_histogram(picture, bins)
    return 0.5 * (mine - theirs).abs().sum(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pictures", nargs="+", default=PICTURES)
    parser.add_argument("--size", type=int, default=48, help="picture side (px)")
    parser.add_argument("--crop", type=int, default=None, help="crop side (default size / 2)")
    parser.add_argument("--large", type=int, default=None, help="larger canvas (default 4/3 size)")
    parser.add_argument("--steps", type=int, default=1500, help="training steps per picture")
    parser.add_argument("--minutes", type=float, default=None, help="or a time budget")
    parser.add_argument("--n", type=int, default=6, help="samples per picture")
    parser.add_argument("--sample-steps", type=int, default=100, help="DDIM (eta = 1) steps")
    parser.add_argument("--flip", action="store_true", help="train on mirrored crops too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench_output"))
    args = parser.parse_args()
    if args.minutes is not None and args.steps == parser.get_default("steps"):
        args.steps = None  # --minutes alone: a time budget
    args.large = args.large or args.size * 4 // 3
    print(f"{describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"load average before: {load_average()}")
    schedule = NoiseSchedule(1000)
    rows = []
    for name in args.pictures:
        rows.append(measure(name, args, schedule))
        r = rows[-1]
        print(f"  {name}: {r['steps']} steps in {r['train_s']:.0f} s, sampling "
              f"{r['sample_s']:.0f} s, load {load_average()}", flush=True)  # fmt: skip
    print(f"\n{args.size} px pictures, crops {args.crop or args.size // 2} px, "
          f"{args.n} samples at {args.size} px and 2 at {args.large} px, DDIM eta=1 "
          f"{args.sample_steps} steps; load average after: {load_average()}\n")  # fmt: skip
    header = ("picture", "steps", "train s", "copy dB", f"copy@{args.large}", "patch",
              f"patch@{args.large}", "ref", "colour", "ref", "spread")  # fmt: skip
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(f"| {r['picture']} | {r['steps']} | {r['train_s']:.0f} | {r['copy']:.1f} | "
              f"{r['copy_large']:.1f} | {r['patch']:.3f} | {r['patch_large']:.3f} | "
              f"{r['patch_ref']:.3f} | {r['colour']:.2f} | {r['colour_ref']:.2f} | "
              f"{r['spread']:.3f} |")  # fmt: skip
    print(f"\nPictures of the samples: {args.out}/vary_<picture>.png and _large.png")


if __name__ == "__main__":
    main()

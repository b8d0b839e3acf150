"""Your picture at 32, 64 and 128 px: what a few minutes of training reach, design by design.

For each picture side and design, a fresh net is trained on one real photo (scikit-learn's
bundled ``flower.jpg``, a dahlia, 427x640, centre-cropped; no download) for each budget, then
8 pictures are drawn with SDE-DPM-Solver++ in 20 steps (the demo's sampler) and their PSNR
against the photo is reported (mean and minimum), with the steps trained and the seconds of
sampling. The designs:

- ``plain``: the tiny U-Net at the picture's side, the linear schedule as DDPM has it;
- ``stem``: the same U-Net behind a patch stem of side / 32, at most 2, so it works at 32 px
  inside at 64 px and at 64 px inside at 128 (Hoogeboom et al. 2023; a 4x4 stem packs 48
  values a position, more than the tiny net's 32 base channels carry, which UNet refuses:
  measured before the check, it learned nothing at 128 px);
- ``stem+shift``: and the schedule's log-SNR lowered by 2 log(side / 32) (the resolution
  shift of the same paper; DDPM's linear schedule was tuned at 32 px);
- ``diffusers`` (with ``--diffusers``, at 64 px): diffusers' ``UNet2DModel`` with the tiny
  net's widths, blocks and attention, plain, trained by the same ``train``.

The budgets are wall-clock minutes: run it alone (nothing else on the CPU), and name the CPU
with the figures (it prints it). ``--steps`` trains a fixed number of steps instead, which does
not depend on load (for exploring while the machine is busy).

    python bench/picture_size.py                      # 32/64/128 px x 3 designs x 1/2/4 min
    python bench/picture_size.py --sizes 64 --minutes 4 --diffusers
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from PIL import Image
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path
from sklearn.datasets import load_sample_image

from diffusion_helpers.metrics.psnr import psnr
from diffusion_helpers.pictures.images import load_image
from diffusion_helpers.reverse import FAST_SAMPLER
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.training import train
from diffusion_helpers.unet import UNet

INNER = 32  # the side the stem brings every picture to, where the tiny net was tuned


def photo(size: int, name: str) -> torch.Tensor:
    """A real photo bundled with scikit-learn, at ``size`` px in [-1, 1], [1, 3, S, S]."""
    path = Path(f"/tmp/bench_{name}").with_suffix(".png")
    if not path.exists():
        Image.fromarray(load_sample_image(name)).save(path)
    return load_image(path, size=size)


def diffusers_net(size: int) -> torch.nn.Module:
    """diffusers' UNet2DModel with the tiny preset's widths, blocks and attention, wrapped to
    the call our train() and sample() make (``net(x, t)`` -> eps) and given our config."""
    from diffusers import UNet2DModel

    ours = UNet.preset("tiny", image_size=size).config
    net = UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=tuple(ours.base_channels * m for m in ours.channel_mults),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    )  # fmt: skip

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net, self.config = net, ours

        def forward(self, x, t, labels=None):
            return self.net(x, t).sample

        def num_parameters(self) -> int:
            return sum(p.numel() for p in self.parameters())

    return Wrapped()


MAX_STEM = 2  # 2 x 2 x 3 = 12 values a position, within the tiny net's 32 channels


def design(name: str, size: int) -> tuple[torch.nn.Module, NoiseSchedule]:
    """(model, schedule) of a design at ``size`` px, seeded."""
    stem = min(max(1, size // INNER), MAX_STEM)
    if name == "diffusers":
        return diffusers_net(size), NoiseSchedule(1000)
    patch = stem if name.startswith("stem") else 1
    shift = size / INNER if name == "stem+shift" else 1.0
    model = UNet.preset("tiny", image_size=size, patch_size=patch, seed=0)
    return model, NoiseSchedule(1000, shift=shift)


def run(name: str, size: int, budget: dict, picture: torch.Tensor, n: int) -> dict:
    """Train one design with ``budget`` (minutes= or steps=), sample, score."""
    model, schedule = design(name, size)
    result = train(model, picture, schedule, seed=0, device="cpu", progress=False, **budget)
    start = time.perf_counter()
    images = sample(result.model, schedule, n, FAST_SAMPLER, seed=1, progress=False).images
    seconds = time.perf_counter() - start
    db = psnr(images, picture)
    return dict(design=name, size=size, steps=result.steps, batch=result.config.batch_size,
                train_s=result.elapsed, sample_s=seconds, mean=float(db.mean()),
                min=float(db.min()), images=images)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128])
    parser.add_argument("--designs", nargs="+", default=["plain", "stem", "stem+shift"])
    parser.add_argument("--minutes", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--steps", type=int, nargs="+", help="fixed step budgets instead")
    parser.add_argument("--photo", default="flower.jpg", help="china.jpg or flower.jpg")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--diffusers", action="store_true", help="also UNet2DModel at 64 px")
    parser.add_argument("--save", type=Path, help="a folder for each run's samples (PNG)")
    args = parser.parse_args()
    print(f"{describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    budgets = [dict(steps=s) for s in args.steps] if args.steps else [
        dict(minutes=m) for m in args.minutes]  # fmt: skip
    plan = [(d, s) for s in args.sizes for d in args.designs if s > INNER or d == "plain"]
    if args.diffusers:
        plan.append(("diffusers", 64))
    rows = []
    for name, size in plan:
        picture = photo(size, args.photo)
        for budget in budgets:
            row = run(name, size, budget, picture, args.n)
            row["budget"] = next(iter(budget.values()))
            rows.append(row)
            print(f"  {name:<11}{size:>4} px {row['budget']:>6g}: {row['steps']:>5} steps, "
                  f"{row['mean']:.1f} dB (min {row['min']:.1f})", flush=True)  # fmt: skip
            if args.save:
                args.save.mkdir(parents=True, exist_ok=True)
                from diffusion_helpers.figures.plots import show_images

                fig = show_images(torch.cat([picture, row.pop("images")]), ncols=args.n + 1)
                fig.savefig(args.save / f"{name}_{size}_{row['budget']:g}.png", dpi=80)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    unit = "steps" if args.steps else "minutes"
    print(f"\n{args.photo}, {args.n} samples by SDE-DPM-Solver++ (20 steps), PSNR against it")
    print(f"| design | side | {unit} | steps (batch) | mean PSNR (min) | sampling s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['design']} | {r['size']} | {r['budget']:g} | {r['steps']:,} ({r['batch']}) | "
              f"{r['mean']:.1f} dB ({r['min']:.1f}) | {r['sample_s']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()

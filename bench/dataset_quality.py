"""Learning the digits: our conditional tiny U-Net against diffusers' UNet2DModel, one budget.

Both are trained on this machine on the 16 px digits for the same budget, and their samples
are scored.

    python bench/dataset_quality.py                     # 4 minutes each: the CPU budget
    python bench/dataset_quality.py --steps 1800        # what an idle 2-core CPU does in 4 min
    python bench/dataset_quality.py --steps 300 --guidance 0 1 1.5 2 3 5 7   # a guidance table

Both nets have the tiny preset's widths, blocks per level, GroupNorm groups and attention
(1.1 M parameters; diffusers' built by bench/train_speed.py's ``diffusers_twin``) and are
trained by ``diffusion_helpers.train.train`` with all its defaults (batch, learning rate,
warm-up and cosine decay, gradient clipping, EMA, bf16 autocast where it measured faster, the
thread count), diffusers' net wrapped so that ``train`` can drive it: the same loop, only the
network differs. Ours is class-conditional (``num_classes=10``, 10% of labels dropped);
diffusers' is unconditional. Each then draws ``--n`` samples with the same sampler and seed
(DPM-Solver++ in 20 steps by default), ours one class after another (n / 10 per digit).

Reported, for each:
  - class accuracy: how often the classifier of ``evaluate.py`` (trained on the real digits)
    reads the digit ours was asked for (at each ``--guidance`` w; ours only);
  - Fréchet distance of the classifier's features to those of all 1,797 real digits, with
    n real digits as the floor that n pictures can reach (n / 10 per class: compare ours
    with it; drawn at random: compare the unconditional samples with it); ours also at w = 0
    (unconditional, like diffusers');
  - memorisation ratio (``evaluate.memorisation_ratio``: about 1 for new pictures, 0 for copies);
  - training images/s and steps, and sampling seconds.
Our samples, one row per digit, go to ``bench_output/digits_samples.png``; every number to
``bench_output/dataset_quality.json``. The CPU is often shared: its name, the thread count and
the load average before and after are printed. diffusers is a bench-only extra
(requirements-bench.txt).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path
from torch import nn
from train_speed import diffusers_twin

from diffusion_helpers.figures.gallery import plot_class_rows
from diffusion_helpers.guidance import DEFAULT_GUIDANCE
from diffusion_helpers.metrics.classifier import (
    class_accuracy,
    features,
    frechet_distance,
    train_classifier,
    within_class_diversity,
)
from diffusion_helpers.metrics.copying import diversity, memorisation_ratio
from diffusion_helpers.pictures.data import load_dataset
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.training import DEFAULT_MINUTES, train
from diffusion_helpers.tutorial.sweeps import class_labels, pick_per_class
from diffusion_helpers.unet import UNet, UNetConfig

OUTPUT = Path("bench_output")


class DiffusersEps(nn.Module):
    """diffusers' UNet2DModel as an eps_theta(x_t, t) with our config, so that ``train`` and
    ``sample`` drive it exactly as they drive our U-Net."""

    def __init__(self, net: nn.Module, config: UNetConfig) -> None:
        super().__init__()
        self.net = net
        self.config = config

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.net(x, t).sample

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def fit(model, data, schedule, args, checkpoint=None):
    """``train`` with the package's defaults and this run's budget; returns (EMA model, result)."""
    budget = dict(steps=args.steps) if args.steps else dict(minutes=args.minutes)
    result = train(model, data, schedule, seed=args.seed, progress=False, device=args.device,
                   threads=args.threads, checkpoint=checkpoint, cuda_graphs=args.cuda_graphs,
                   **budget)  # fmt: skip
    return result.model, result


def pick(images, k, generator):
    """``k`` of ``images`` [N, C, H, W], drawn at random without replacement."""
    return images[torch.randperm(len(images), generator=generator)[:k]]


def draw(model, schedule, args, **kwargs):
    """``args.n`` samples with the chosen sampler; returns (images, seconds)."""
    start = time.perf_counter()
    run = sample(model, schedule, n=args.n, method=args.method, steps=args.sampler_steps,
                 seed=args.seed + 1, progress=False, **kwargs)  # fmt: skip
    return run.images, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="per net")
    parser.add_argument("--steps", type=int, default=None, help="fixed steps (replaces minutes)")
    parser.add_argument("--n", type=int, default=500, help="samples per net (a multiple of 10)")
    parser.add_argument("--guidance", type=float, nargs="+", default=[DEFAULT_GUIDANCE])
    parser.add_argument("--method", default="dpm_solver", choices=("ddpm", "ddim", "dpm_solver"))
    parser.add_argument("--sampler-steps", type=int, default=None, help="default: the method's")
    parser.add_argument("--size", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="training threads for both nets (default: train() picks per run, "
                             "from the cores other programs leave free)")  # fmt: skip
    parser.add_argument("--skip-diffusers", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--cuda-graphs", default="auto", choices=("auto", "on", "off"),
                        help="on a GPU: see diffusion_helpers/graphs.py (default: auto)")  # fmt: skip
    parser.add_argument("--save", type=Path, default=None, help="keep our model (a new file)")
    args = parser.parse_args()
    if args.save is not None and args.save.exists():
        parser.error(f"--save {args.save} exists: train() would resume from it. Pick a new name.")
    if args.n % 10:
        parser.error("--n must be a multiple of 10 (n / 10 samples per digit).")
    if args.method == "ddpm":
        args.sampler_steps = None

    print(f"CPU: {describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    if args.device.startswith("cuda"):
        print(f"GPU: {torch.cuda.get_device_name(args.device)}; CUDA graphs: {args.cuda_graphs}")
    load_before = os.getloadavg()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}")
    budget = f"{args.steps} steps" if args.steps else f"{args.minutes:g} minutes"
    data = load_dataset("digits", args.size)
    schedule = NoiseSchedule()
    print(f"{data.describe()}; budget {budget} per net; {args.n} samples each, {args.method} "
          f"({args.sampler_steps or 'default'} steps)")  # fmt: skip

    ours = UNet.preset("tiny", image_channels=1, image_size=args.size, num_classes=10,
                       seed=args.seed)  # fmt: skip
    ours, ours_run = fit(ours, data, schedule, args, checkpoint=args.save)
    nets = {"ours": (ours, ours_run)}
    if not args.skip_diffusers:
        plain = UNet.preset("tiny", image_channels=1, image_size=args.size)
        torch.manual_seed(args.seed)
        theirs = DiffusersEps(diffusers_twin(plain), plain.config)
        nets["diffusers"] = fit(theirs, data, schedule, args)
    load_after_training = os.getloadavg()

    classifier = train_classifier(data.images, data.labels, seed=0)
    real = features(classifier, data.images)
    gen = torch.Generator().manual_seed(args.seed)
    per_class = args.n // 10
    random_real = pick(data.images, args.n, gen)
    # n / 10 of each class, at random (the digits are stored writer by writer)
    balanced, _ = pick_per_class(data.images, data.labels, per_class, seed=args.seed)
    floor = {
        "random": frechet_distance(features(classifier, random_real), real),
        "per class": frechet_distance(features(classifier, balanced), real),
    }

    labels = class_labels(10, per_class)
    rows = []  # (net, w, images, seconds)
    for w in args.guidance:
        images, seconds = draw(ours, schedule, args, labels=labels, guidance_scale=w)
        rows.append(("ours", w, images, seconds))
    if 0.0 not in args.guidance:
        images, seconds = draw(ours, schedule, args)  # the null label: unconditional
        rows.append(("ours", 0.0, images, seconds))
    if "diffusers" in nets:
        images, seconds = draw(nets["diffusers"][0], schedule, args)
        rows.append(("diffusers", None, images, seconds))
    load_after = os.getloadavg()

    results = []
    for net, w, images, seconds in rows:
        run = nets[net][1]
        results.append(dict(
            net=net,
            guidance=w,
            accuracy=class_accuracy(classifier, images, labels) if w else None,
            frechet=frechet_distance(features(classifier, images), real),
            memorisation=memorisation_ratio(images, data.images),
            diversity=diversity(images),
            class_diversity=within_class_diversity(images, labels) if w else None,
            train_steps=run.steps,
            train_images_per_second=run.images_per_second,
            sample_seconds=seconds,
        ))  # fmt: skip

    print(f"load average after training: {' '.join(f'{x:.2f}' for x in load_after_training)}, "
          f"after sampling: {' '.join(f'{x:.2f}' for x in load_after)}")  # fmt: skip
    for name, (_, run) in nets.items():
        cfg = run.config
        print(f"training {name}: {run.steps} steps in {run.elapsed:.0f} s, batch "
              f"{cfg.batch_size}, lr {cfg.lr:.2g}, {cfg.precision}, "
              f"{cfg.threads} threads, CUDA graphs {run.cuda_graphs}")  # fmt: skip
    print(f"classifier: {classifier.held_out_accuracy:.1%} held-out accuracy")
    print(f"Fréchet distance floor ({args.n} real digits vs all): random {floor['random']:.1f}, "
          f"{per_class} per class {floor['per class']:.1f}")  # fmt: skip
    print(f"diversity of the real digits: {diversity(data.images):.2f} in all, "
          f"{within_class_diversity(data.images, data.labels):.2f} within a class")  # fmt: skip
    print(f"\n{'net':<10}{'w':>5}{'accuracy':>10}{'Fréchet':>9}{'memo.':>7}{'div.':>6}"
          f"{'in class':>9}{'steps':>7}{'train img/s':>12}{'sample s':>10}")  # fmt: skip
    for r in results:
        w = "-" if r["guidance"] is None else f"{r['guidance']:g}"
        acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.1%}"
        within = "-" if r["class_diversity"] is None else f"{r['class_diversity']:.2f}"
        print(f"{r['net']:<10}{w:>5}{acc:>10}{r['frechet']:>9.1f}{r['memorisation']:>7.2f}"
              f"{r['diversity']:>6.2f}{within:>9}{r['train_steps']:>7}"
              f"{r['train_images_per_second']:>12.0f}{r['sample_seconds']:>10.1f}")  # fmt: skip

    OUTPUT.mkdir(exist_ok=True)
    shown = rows[0][2].reshape(10, per_class, *rows[0][2].shape[1:])[:, :10].flatten(0, 1)
    fig = plot_class_rows(shown, class_labels(10, min(10, per_class)), data.classes, size=0.5)
    fig.savefig(OUTPUT / "digits_samples.png", dpi=100, bbox_inches="tight")
    report = dict(cpu=describe_cpu(), budget=budget, load_before=load_before,
                  load_after_training=load_after_training, load_after=load_after,
                  n=args.n, method=args.method, sampler_steps=args.sampler_steps,
                  floor=floor, results=results)  # fmt: skip
    (OUTPUT / "dataset_quality.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {OUTPUT / 'digits_samples.png'} (ours, w = {rows[0][1]:g}) and "
          f"{OUTPUT / 'dataset_quality.json'}")  # fmt: skip


if __name__ == "__main__":
    main()

"""The picture recipe, measured: what the net predicts, whether it sees where each pixel is, and
diffusers' UNet2DModel with its own schedulers, all at the same step count on the same photos.

For each choice a fresh tiny U-Net (1.1 M parameters) is trained by ``dh.train`` on one real
photo at 64 px (scikit-learn's bundled ``china.jpg`` and ``flower.jpg``, centre-cropped; no
download), batch 4, for a fixed number of steps; then 8 pictures are drawn with SDE-DPM-Solver++
in 20 steps (the demo's sampler) and their PSNR against the photo is printed, mean and worst.
The choices:

- ``eps``: DDPM as the paper has it, the noise as the target (the default before this recipe);
- ``x0``: the picture as the target (``prediction="x0"``);
- ``flow``: flow matching, the velocity on the straight path (``prediction="velocity"`` on the
  ``"flow"`` schedule, notebook 07);
- ``eps+pos``, ``flow+pos`` and ``recipe`` (x0+pos, the default for one picture): the same with
  the first layer seeing each pixel's place (``UNet(position_octaves=5)`` at 64 px, the
  tutorial's ``log2(side) - 1`` octaves at other sizes);
- ``diffusers eps``, ``diffusers v``: diffusers' ``UNet2DModel`` with the tiny net's widths,
  blocks and attention, trained with its ``DDPMScheduler`` (``add_noise``; the target the noise,
  or ``get_velocity``'s v) by the same optimiser, learning rate, warm-up, decay and EMA, and
  sampled by its own ``DPMSolverMultistepScheduler`` (``"sde-dpmsolver++"``, 20 steps): what a
  user would build from the library instead.

The step count: ``--steps``, else the steps the recipe takes in 4 minutes on this CPU (the
demo's budget), timed first. Steps, not minutes, for every choice, so load does not move the
figures; compare with another machine at its count (the 2-core AVX2 EPYC: 566). Runs in fp32
and, where the CPU has native bf16, again in bf16 at that precision's own count.

    python bench/picture_recipe.py                      # everything (about an hour idle)
    python bench/picture_recipe.py --steps 566 --choices eps recipe --photos flower.jpg
    python bench/picture_recipe.py --steps 566 --choices recipe --lr 5e-4 --adam-beta2 0.999
    python bench/picture_recipe.py --steps 566 --choices recipe --photos flower.jpg --size 128
"""

from __future__ import annotations

import argparse
import copy
import os
import time
from pathlib import Path

import torch
from PIL import Image
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path
from sklearn.datasets import load_sample_image

import diffusion_helpers as dh
from diffusion_helpers.runtime.device import cpu_supports_bf16
from diffusion_helpers.train import ema_decay, ema_update, lr_factor
from diffusion_helpers.tutorial.settings import position_octaves

CHOICES = {  # name: (prediction, schedule kind, whether the net sees where each pixel is)
    "eps": ("eps", "linear", False),
    "x0": ("x0", "linear", False),
    "flow": ("velocity", "flow", False),
    "eps+pos": ("eps", "linear", True),
    "flow+pos": ("velocity", "flow", True),
    "recipe": ("x0", "linear", True),
}
DIFFUSERS = ("diffusers eps", "diffusers v")
SIZE, BATCH, SAMPLES = 64, 4, 8


def photo(name: str) -> torch.Tensor:
    """A real photo bundled with scikit-learn, at SIZE px in [-1, 1], [1, 3, S, S]."""
    path = Path(f"/tmp/bench_{name}").with_suffix(".png")
    if not path.exists():
        Image.fromarray(load_sample_image(name)).save(path)
    return dh.load_image(path, size=SIZE)


def ours(choice: str, picture: torch.Tensor, steps: int, precision: str, **options) -> torch.Tensor:
    """Train one of :data:`CHOICES` for ``steps`` (``options``: ``lr``, ``adam_beta2`` in place
    of the defaults); return 8 samples."""
    prediction, kind, positions = CHOICES[choice]
    schedule = dh.NoiseSchedule(1000, kind)
    octaves = position_octaves(SIZE) if positions else 0  # the tutorial's: 5 at 64 px
    net = dh.UNet.preset("tiny", image_size=SIZE, position_octaves=octaves, seed=0)
    run = dh.train(net, picture, schedule, steps=steps, batch_size=BATCH, seed=0, device="cpu",
                   precision=precision, prediction=prediction, progress=False, **options)  # fmt: skip
    return dh.sample(run.model, schedule, SAMPLES, dh.FAST_SAMPLER, seed=1, progress=False).images


def theirs(choice: str, picture: torch.Tensor, steps: int, precision: str) -> torch.Tensor:
    """diffusers' UNet2DModel, DDPMScheduler and DPMSolverMultistepScheduler (see the module)."""
    from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel

    target = "epsilon" if choice == "diffusers eps" else "v_prediction"
    tiny = dh.UNet.preset("tiny", image_size=SIZE).config
    torch.manual_seed(0)
    net = UNet2DModel(
        sample_size=SIZE, in_channels=3, out_channels=3, layers_per_block=1,
        block_out_channels=tuple(tiny.base_channels * m for m in tiny.channel_mults),
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D", "UpBlock2D"), norm_num_groups=8,
    )  # fmt: skip
    ema = copy.deepcopy(net).requires_grad_(False)
    scheduler = DDPMScheduler(num_train_timesteps=1000, prediction_type=target)
    lr = dh.default_lr(dh.UNet.preset("tiny", image_size=SIZE), BATCH)  # ours for the noise
    optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    dtype = torch.bfloat16 if precision == "bf16" else None
    x0 = picture.expand(BATCH, -1, -1, -1)
    for i in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(i / steps, i, "cosine", min(50, max(1, steps // 5)))
        t = torch.randint(0, 1000, (BATCH,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        x_t = scheduler.add_noise(x0, noise, t)
        want = noise if target == "epsilon" else scheduler.get_velocity(x0, noise, t)
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            got = net(x_t, t).sample
        loss = (got.float() - want).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        ema_update(ema, net, ema_decay(i, 0.9999))
    sampler = DPMSolverMultistepScheduler.from_config(scheduler.config,
                                                      algorithm_type="sde-dpmsolver++")  # fmt: skip
    sampler.set_timesteps(20)
    g = torch.Generator().manual_seed(1)
    x = torch.randn((SAMPLES, 3, SIZE, SIZE), generator=g) * sampler.init_noise_sigma
    with torch.no_grad():
        for t in sampler.timesteps:
            x = sampler.step(ema(x, t).sample, t, x, generator=g).prev_sample
    return x.clamp(-1, 1)


def steps_in_4_minutes(precision: str) -> int:
    """The steps the recipe takes in the demo's 4 minutes here: 40 timed after 10 to warm up."""
    net = dh.UNet.preset("tiny", image_size=SIZE, position_octaves=position_octaves(SIZE), seed=0)
    picture, schedule = photo("china.jpg"), dh.NoiseSchedule(1000)
    kwargs = dict(batch_size=BATCH, seed=0, device="cpu", precision=precision, progress=False)
    dh.train(net, picture, schedule, steps=10, **kwargs)
    start = time.perf_counter()
    dh.train(net, picture, schedule, steps=40, **kwargs)
    return int(240 * 40 / (time.perf_counter() - start))


def main() -> None:
    global SIZE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, help="steps per run (default: 4 minutes' here)")
    parser.add_argument("--choices", nargs="+", default=[*CHOICES, *DIFFUSERS],
                        choices=[*CHOICES, *DIFFUSERS])  # fmt: skip
    parser.add_argument("--photos", nargs="+", default=["china.jpg", "flower.jpg"])
    parser.add_argument("--precisions", nargs="+", choices=["fp32", "bf16"],
                        default=["fp32", "bf16"] if cpu_supports_bf16() else ["fp32"])  # fmt: skip
    parser.add_argument("--save", type=Path, help="a folder for each run's samples (PNG)")
    parser.add_argument("--lr", type=float, help="our nets' learning rate (default: dh.default_lr)")
    parser.add_argument("--adam-beta2", type=float, help="our AdamW beta2 (default: the data's)")
    parser.add_argument("--size", type=int, default=64, help="picture side in px (default 64)")
    args = parser.parse_args()
    SIZE = args.size
    print(f"{describe_cpu()}; torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")  # fmt: skip
    rows = []
    for precision in args.precisions:
        steps = args.steps or steps_in_4_minutes(precision)
        print(f"{precision}: {steps} steps of batch {BATCH} per run", flush=True)
        for choice in args.choices:
            scores = []
            for name in args.photos:
                picture = photo(name)
                if choice in DIFFUSERS:
                    images = theirs(choice, picture, steps, precision)
                else:
                    options = {"lr": args.lr, "adam_beta2": args.adam_beta2}
                    images = ours(choice, picture, steps, precision,
                                  **{k: v for k, v in options.items() if v is not None})  # fmt: skip
                scores.append(dh.psnr(images, picture))
                print(f"  {choice:<14} {name:<11} {scores[-1].mean():5.1f} dB "
                      f"(worst {scores[-1].min():.1f})", flush=True)  # fmt: skip
                if args.save:
                    args.save.mkdir(parents=True, exist_ok=True)
                    fig = dh.show_images(torch.cat([picture, images]), ncols=SAMPLES + 1)
                    fig.savefig(args.save / f"{choice}_{name}_{precision}.png", dpi=80)
            rows.append((precision, steps, choice, torch.cat(scores)))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(f"{SAMPLES} samples per photo ({', '.join(args.photos)}) by SDE-DPM-Solver++ (20 steps)")
    print("| precision | steps | choice | mean PSNR | worst sample |")
    print("|---|---|---|---|---|")
    for precision, steps, choice, db in rows:
        print(f"| {precision} | {steps:,} | {choice} | {db.mean():.1f} dB | {db.min():.1f} dB |")


if __name__ == "__main__":
    main()

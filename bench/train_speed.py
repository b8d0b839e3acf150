"""Training speed of our U-Net against diffusers' UNet2DModel with the same widths, on this machine.

    python bench/train_speed.py --preset tiny --size 32 --batch 32 --rounds 5

Both nets get the same widths, blocks per level, GroupNorm groups, attention placement (one
head) and the same batch. Ours runs through ``diffusion_helpers.train.train`` itself, with its
automatic precision and memory-format choices (EMA update included); diffusers' runs through an
equivalent hand-written Algorithm 1 loop in fp32 (its usual CPU setting) and, for reference,
under the same bf16 autocast as ours. The variants alternate within each round; the median
images/s over the rounds is reported. diffusers is a bench-only extra (requirements-bench.txt).
"""

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from diffusion_helpers.forward import add_noise
from diffusion_helpers.runtime.device import pick_precision
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.training import train
from diffusion_helpers.unet import UNet


def diffusers_twin(model):
    """diffusers.UNet2DModel with our model's widths, blocks, groups and attention placement."""
    from diffusers import UNet2DModel

    cfg = model.config
    levels = cfg.attention_levels()
    n = len(cfg.channel_mults)
    down = tuple("AttnDownBlock2D" if i in levels else "DownBlock2D" for i in range(n))
    up = tuple("AttnUpBlock2D" if i in levels else "UpBlock2D" for i in reversed(range(n)))
    return UNet2DModel(
        sample_size=cfg.image_size,
        in_channels=cfg.image_channels,
        out_channels=cfg.image_channels,
        block_out_channels=tuple(cfg.base_channels * m for m in cfg.channel_mults),
        layers_per_block=cfg.num_res_blocks,
        down_block_types=down,
        up_block_types=up,
        norm_num_groups=cfg.norm_groups,
        attention_head_dim=None,  # one head of full width, as ours
        add_attention=(n - 1) in levels,  # middle attention only where ours has it
    )


def loop_speed(net, x, schedule, steps, autocast_dtype):
    """images/s of a plain Algorithm 1 loop (AdamW, clipping) for a diffusers-style net."""
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    for _ in range(steps):
        t = torch.randint(0, schedule.num_steps, (x.shape[0],), generator=g)
        x_t, eps = add_noise(x, t, schedule, generator=g)
        with torch.autocast("cpu", dtype=autocast_dtype, enabled=autocast_dtype is not None):
            out = net(x_t, t).sample
        loss = F.mse_loss(out.float(), eps)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return x.shape[0] * steps / (time.perf_counter() - start)


def step_flops(forward, x):
    """FLOPs of one training step (forward and backward) counted by FlopCounterMode."""
    counter = FlopCounterMode(display=False)
    with counter:
        out = forward(x, torch.zeros(x.shape[0], dtype=torch.long))
        out.float().pow(2).mean().backward()
    return counter.get_total_flops()


def matmul_rate(dtype, n=2048, reps=5):
    """Measured GFLOP/s of an n x n x n matmul in ``dtype`` (best of ``reps``)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(reps))
    return 2 * n**3 / best / 1e9


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="training steps per measurement")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # the same for both nets (train() would pick its own)

    load_before = os.getloadavg()
    torch.manual_seed(0)
    ours = UNet.preset(args.preset, image_size=args.size)
    theirs = diffusers_twin(ours)
    schedule = NoiseSchedule()
    x = torch.rand(args.batch, ours.config.image_channels, args.size, args.size) * 2 - 1
    auto = pick_precision("auto", torch.device("cpu"))
    bf16 = torch.bfloat16

    def ours_speed(precision):
        kw = dict(steps=args.steps, batch_size=args.batch, progress=False, device="cpu")
        kw["threads"] = args.threads
        return train(ours, x, schedule, precision=precision, seed=0, **kw).images_per_second

    variants = {
        f"ours (train(), precision=auto -> {auto})": lambda: ours_speed("auto"),
        "ours (train(), fp32)": lambda: ours_speed("fp32"),
        "diffusers UNet2DModel (fp32)": lambda: loop_speed(theirs, x, schedule, args.steps, None),
        "diffusers UNet2DModel (bf16 autocast)": lambda: loop_speed(
            theirs, x, schedule, args.steps, bf16
        ),
    }
    for fn in variants.values():  # warm-up: oneDNN picks its kernels on the first calls
        fn()
    speeds = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            speeds[name].append(fn())
    median = {name: statistics.median(v) for name, v in speeds.items()}
    load_after = os.getloadavg()

    ours.train()
    theirs.train()
    flops = {
        "ours": step_flops(ours, x),
        "diffusers": step_flops(lambda a, t: theirs(a, t).sample, x),
    }
    params = {
        "ours": ours.num_parameters(),
        "diffusers": sum(p.numel() for p in theirs.parameters()),
    }
    fp32_rate, bf16_rate = matmul_rate(torch.float32), matmul_rate(bf16)

    print(f"load average at start: {load_before}, after timing: {load_after}")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; preset {args.preset}, "
        f"{args.size} px, batch {args.batch}, {args.rounds} rounds x {args.steps} steps"
    )
    print(f"matmul 2048^3: fp32 {fp32_rate:.0f} GFLOP/s, bf16 {bf16_rate:.0f} GFLOP/s")
    for key in ("ours", "diffusers"):
        print(
            f"{key:9s}: {params[key] / 1e6:.3f} M params, "
            f"{flops[key] / 1e9:.2f} GFLOP per training step"
        )
    for name, ips in median.items():
        key = "ours" if name.startswith("ours") else "diffusers"
        gflops = flops[key] / args.batch * ips / 1e9
        print(
            f"{name:40s} {ips:7.1f} img/s  {gflops:6.1f} GFLOP/s "
            f"({100 * gflops / fp32_rate:.0f}% of fp32 matmul)  rounds: "
            + ", ".join(f"{v:.0f}" for v in speeds[name])
        )
    names = list(median)
    print(f"ratio ours default / diffusers fp32: {median[names[0]] / median[names[2]]:.2f}x")
    print(f"ratio ours fp32 / diffusers fp32:    {median[names[1]] / median[names[2]]:.2f}x")
    print(f"ratio ours default / diffusers bf16: {median[names[0]] / median[names[3]]:.2f}x")


if __name__ == "__main__":
    main()

"""Training and sampling on a CPU whose every core is already busy: the thread guard's effect.

    python bench/busy_cpu.py [--spinners N] [--rounds 2]

Times 25 training steps (tiny U-Net, batch 16, 32 px, fp32) and 40 DDIM steps for 4 pictures
at 32 px three ways, in one run:
  idle           nothing else running, torch's default threads;
  busy, fixed    N other processes spinning (N = cores), torch's default threads (what
                 happened before the guard);
  busy, guard    the same spinners, threads chosen by env.pick_threads (the package default).
Fair sharing of the cores predicts busy/idle of about 2 (two runnable programs per core).
Run it alone: other work on the machine changes every number.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time

import torch
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path

from diffusion_helpers import sampling
from diffusion_helpers.runtime.threads import pick_threads, usable_cores
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.training import train
from diffusion_helpers.unet import UNet


def spin() -> None:
    while True:
        pass


def time_training(threads: int | None) -> float:
    model = UNet.preset("tiny", image_size=32, seed=0)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    start = time.perf_counter()
    train(model, x, NoiseSchedule(1000), steps=25, batch_size=16, precision="fp32",
          device="cpu", progress=False, threads=threads, seed=0)  # fmt: skip
    return time.perf_counter() - start


def time_sampling(threads: int | None) -> float:
    """sample() picks its threads itself; for a fixed count its choice is replaced."""
    model = UNet.preset("tiny", image_size=32, seed=0).eval()
    chooser = sampling.pick_threads
    if threads is not None:
        sampling.pick_threads = lambda given, device: threads
    try:
        start = time.perf_counter()
        sampling.sample(
            model, NoiseSchedule(1000), n=4, method="ddim", steps=40, seed=0, progress=False
        )
        return time.perf_counter() - start
    finally:
        sampling.pick_threads = chooser


def measure(threads: int | None, rounds: int) -> tuple[float, float]:
    train_s = statistics.median(time_training(threads) for _ in range(rounds))
    sample_s = statistics.median(time_sampling(threads) for _ in range(rounds))
    return train_s, sample_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spinners", type=int, default=usable_cores())
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    default = torch.get_num_threads()
    print(f"CPU: {describe_cpu()}; torch {torch.__version__}; default threads {default}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    time_training(default)  # warm-up (first-call allocations, oneDNN kernels)
    rows = {"idle": measure(default, args.rounds)}
    spinners = [mp.Process(target=spin, daemon=True) for _ in range(args.spinners)]
    for p in spinners:
        p.start()
    try:
        time.sleep(2)
        rows["busy, fixed threads"] = measure(default, args.rounds)
        rows["busy, guard"] = measure(None, args.rounds)
        guard_threads = pick_threads(None, torch.device("cpu"))
    finally:
        for p in spinners:
            p.terminate()
    idle_train, idle_sample = rows["idle"]
    print(f"{args.spinners} spinning processes; the guard chose {guard_threads} thread(s)")
    print(f"{'':<22}{'train 25 steps':>16}{'x idle':>8}{'DDIM 40 steps':>16}{'x idle':>8}")
    for name, (tr, sa) in rows.items():
        print(
            f"{name:<22}{tr:>14.1f} s{tr / idle_train:>8.1f}{sa:>14.2f} s{sa / idle_sample:>8.1f}"
        )


if __name__ == "__main__":
    main()

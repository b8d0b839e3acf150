"""Training throughput of one process against several (torchrun, DDP) on this CPU.

    OMP_NUM_THREADS=1 python bench/ddp_speed.py --seconds 30 --batch 16 --rounds 2

Every variant trains the tiny preset at 32 px through ``diffusion_helpers.train.train`` with
the same GLOBAL batch (split over the processes) for ``--seconds``; the first ``--skip`` steps
(oneDNN warm-up) are not timed. Variants, on a machine of C cores: one process with C threads,
one process with 1 thread, and C processes with 1 thread each under
``python -m torch.distributed.run --standalone --nproc_per_node=C`` (gloo). Printed: the CPU,
its AVX-512 BF16 / AVX2 flags, the load average, and images/s of each (median over
``--rounds`` rounds that alternate the variants).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import torch
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path

from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.training import train
from diffusion_helpers.unet import UNet


def worker(args):
    """One process of a variant: train, and on rank 0 print images/s after the skipped steps."""
    model = UNet.preset("tiny", image_size=args.size, seed=0)
    g = torch.Generator().manual_seed(0)
    data = torch.rand(64, 3, args.size, args.size, generator=g) * 2 - 1
    stamps = []
    result = train(
        model, data, NoiseSchedule(1000), minutes=args.seconds / 60, batch_size=args.batch,
        seed=0, device="cpu", threads=args.threads, progress=False,
        callback=lambda step, loss: stamps.append(time.perf_counter()),
    )  # fmt: skip
    if os.environ.get("RANK", "0") == "0":
        timed = stamps[args.skip :] if len(stamps) > args.skip + 1 else stamps  # too few: all
        rate = (len(timed) - 1) * args.batch / (timed[-1] - timed[0]) if len(timed) > 1 else 0.0
        cfg = result.config
        print("RESULT " + json.dumps(dict(steps=result.steps, img_s=rate, batch_size=cfg.batch_size,
                                          lr=cfg.lr, precision=cfg.precision, threads=cfg.threads,
                                          processes=result.processes)))  # fmt: skip


def run_variant(args, processes, threads):
    """Run one variant in fresh processes; return rank 0's RESULT dict."""
    me = [os.path.abspath(__file__), "--worker", "--threads", str(threads)]
    me += ["--seconds", str(args.seconds), "--batch", str(args.batch), "--size", str(args.size)]
    me += ["--skip", str(args.skip)]
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run(launcher + me, capture_output=True, text=True, env=env, timeout=900)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.exit(f"variant {processes}x{threads} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=16, help="global batch (all processes)")
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--skip", type=int, default=3, help="untimed first steps")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds (median)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    cores = os.cpu_count() or 1
    print(f"CPU: {describe_cpu()}, {cores} cores; torch {torch.__version__}")
    print(f"load average before: {os.getloadavg()}")
    print(f"tiny preset, {args.size} px, global batch {args.batch}, {args.seconds:.0f} s each")
    variants = [(1, cores), (1, 1), (cores, 1)]
    rates = {v: [] for v in variants}
    for round_ in range(args.rounds):  # alternate the variants so a change of load hits all
        for processes, threads in variants:
            r = run_variant(args, processes, threads)
            rates[processes, threads].append(r["img_s"])
            print(
                f"round {round_ + 1}: {processes} process(es) x {threads} thread(s): "
                f"{r['img_s']:6.1f} images/s ({r['steps']} steps, {r['precision']}, "
                f"load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    for (processes, threads), values in rates.items():
        print(f"median {processes} x {threads}: {statistics.median(values):6.1f} images/s")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

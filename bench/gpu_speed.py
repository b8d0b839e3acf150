"""GPU speed and time to quality: eager against CUDA graphs, ours against diffusers' UNet2DModel.

    python bench/gpu_speed.py throughput              # images/s, compile time, break-even
    python bench/gpu_speed.py budget --minutes 0.5 1 2  # one-picture runs: images, PSNR
    python bench/gpu_speed.py sampling                # DDPM-1000 seconds, eager vs graphs
    python bench/dataset_quality.py --device cuda --minutes 1   # the digits, same question

Every variant runs through ``diffusion_helpers.train.train`` (its defaults: bf16 autocast on
Ampere and later, the batch size and learning rate of ``data.py``), with ``cuda_graphs`` set
to "off" (eager), "on" (compiled from the first step) or "auto" (what a learner gets:
compiled when the run can pay it back). diffusers' net, built with our widths by
bench/train_speed.py's ``diffusers_twin``, is driven by the same loop at the same precision.

- throughput: steady images/s after warm-up (the median over the last steps), the compile
  time, and the break-even: the run length from which the graphed run has trained more
  images, compile included (C / (1 - eager / graphed)).

Each training run is its own process with an empty compiler cache, as on a fresh Colab
runtime: in one process, or with the cache on disk, later compiles reuse earlier work and
would understate the compile time.
- budget: runs of a fixed wall-clock budget on the bundled picture (64 px, the small preset:
  the GPU demo), eager against auto: images trained (compile time spent from the budget) and
  mean PSNR of 8 DDPM samples against the picture.
- sampling: 8 DDPM-1000 samples, eager against a recorded CUDA graph, and how far their
  images differ (same seed; the same kernels run, so the difference is float noise).

Needs a CUDA GPU; diffusers is a bench-only extra (requirements-bench.txt).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from dataset_quality import DiffusersEps  # noqa: E402
from train_speed import diffusers_twin  # noqa: E402

from diffusion_helpers.metrics.psnr import psnr
from diffusion_helpers.pictures.images import load_image, sample_image_path  # noqa: E402
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule  # noqa: E402
from diffusion_helpers.training import default_batch_size, train
from diffusion_helpers.unet import UNet  # noqa: E402

SCHEDULE = NoiseSchedule()


def build(net: str, preset: str, size: int, seed: int = 0) -> torch.nn.Module:
    """Ours or diffusers' twin of the preset, same widths, seeded."""
    ours = UNet.preset(preset, image_size=size, seed=seed)
    if net == "ours":
        return ours
    torch.manual_seed(seed)
    return DiffusersEps(diffusers_twin(ours), ours.config)


def timed_run(model, x, graphs, **budget):
    """train() with per-step wall-clock stamps; returns (result, steady images/s)."""
    stamps = []
    result = train(model, x, SCHEDULE, seed=0, progress=False, cuda_graphs=graphs,
                   callback=lambda step, loss: stamps.append(time.perf_counter()), **budget)  # fmt: skip
    batch = result.config.batch_size
    gaps = [b - a for a, b in zip(stamps, stamps[1:])][len(stamps) // 2 :]  # the steady half
    return result, batch / statistics.median(gaps) if gaps else float("nan")


def one_run(args):
    """One training run (in its own process, see the module): prints a JSON line."""
    size = 64 if args.preset == "small" else 32
    x = torch.nn.functional.interpolate(
        load_image(sample_image_path(), size=64), size=size, mode="area"
    )
    budget = dict(minutes=args.minutes[0]) if args.timed else dict(steps=args.steps)
    run, steady = timed_run(build(args.nets[0], args.preset, size), x, args.graphs,
                            batch_size=args.batches[0] if args.batches else None, **budget)  # fmt: skip
    report = dict(steps=run.steps, batch=run.config.batch_size, steady=steady,
                  compile=run.compile_seconds, status=run.cuda_graphs)  # fmt: skip
    if args.timed:  # the quality reached: mean PSNR of 8 DDPM samples against the picture
        shown = sample(run.model, SCHEDULE, n=8, seed=1, progress=False).images
        report["psnr"] = float(psnr(shown, x, mirror=True).mean())
    print(json.dumps(report))


def fresh_process(*argv):
    """``one_run`` with these arguments in a new process with an empty compiler cache."""
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, TRITON_CACHE_DIR=cache)
        done = subprocess.run([sys.executable, __file__, "one", *map(str, argv)], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"a run failed ({' '.join(map(str, argv))}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def throughput(args):
    print(f"{'net':10s} {'preset':6s} {'batch':>5s} {'eager img/s':>11s} {'graphs img/s':>12s} "
          f"{'ratio':>5s} {'compile s':>9s} {'break-even s':>12s}")  # fmt: skip
    for preset, size in (("tiny", 32), ("small", 64)):
        if preset not in args.presets:
            continue
        default = default_batch_size(size, torch.device("cuda"))
        for batch in args.batches or (default, 2 * default, 4 * default):
            for net in args.nets:
                common = ("--nets", net, "--preset", preset, "--batches", batch)
                eager = fresh_process(*common, "--graphs", "off", "--steps", args.steps)
                graphed = fresh_process(*common, "--graphs", "on", "--steps", args.steps + 20)
                e, g, c = eager["steady"], graphed["steady"], graphed["compile"] or float("nan")
                even = c / (1 - e / g) if g > e else float("inf")
                print(f"{net:10s} {preset:6s} {batch:5d} {e:11.0f} {g:12.0f} {g / e:5.2f} "
                      f"{c:9.1f} {even:12.0f}", flush=True)  # fmt: skip


def budget(args):
    print(f"{'net':10s} {'graphs':6s} {'min':>4s} {'steps':>6s} {'images':>8s} {'compile s':>9s} "
          f"{'PSNR dB':>7s}  status")  # fmt: skip
    for minutes in args.minutes:
        images = {}
        for net in args.nets:
            for graphs in ("off", "auto"):
                r = fresh_process("--nets", net, "--preset", "small", "--graphs", graphs,
                                  "--minutes", minutes, "--timed")  # fmt: skip
                images[net, graphs] = r["steps"] * r["batch"]
                print(f"{net:10s} {graphs:6s} {minutes:4g} {r['steps']:6d} {images[net, graphs]:8d} "
                      f"{r['compile'] or 0:9.1f} {r['psnr']:7.1f}  {r['status']}", flush=True)  # fmt: skip
            ratio = images[net, "auto"] / images[net, "off"]
            print(f"  {net}: auto / eager images in {minutes:g} min = {ratio:.2f}x")


def sampling(args):
    model = UNet.preset("small", image_size=64, seed=0).cuda()
    with torch.no_grad():  # a fresh net outputs 0 (its last layer starts at zero): liven it
        model.conv_out.weight.normal_(0, 0.02, generator=torch.Generator("cuda").manual_seed(0))
    seconds, images = {}, {}
    for graphs in ("off", "on", "off", "on"):  # twice each: the first of each warms up
        torch.cuda.synchronize()
        start = time.perf_counter()
        images[graphs] = sample(model, SCHEDULE, n=args.n, seed=1, progress=False,
                                cuda_graphs=graphs).images  # fmt: skip
        seconds[graphs] = time.perf_counter() - start
    diff = float((images["on"] - images["off"]).abs().max())
    print(f"DDPM-1000, {args.n} samples, small, 64 px: eager {seconds['off']:.1f} s, "
          f"graphs {seconds['on']:.1f} s ({seconds['off'] / seconds['on']:.2f}x); "
          f"largest pixel difference {diff:.2g}")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("throughput", "budget", "sampling", "one"))
    parser.add_argument("--nets", nargs="+", default=["ours", "diffusers"],
                        choices=("ours", "diffusers"))  # fmt: skip
    parser.add_argument("--batches", type=int, nargs="+", help="default: 1, 2, 4 x the default")
    parser.add_argument(
        "--presets", nargs="+", default=["tiny", "small"], choices=("tiny", "small")
    )
    parser.add_argument("--steps", type=int, default=200, help="throughput: steps per variant")
    parser.add_argument("--minutes", type=float, nargs="+", default=[2.0], help="budget runs")
    parser.add_argument("-n", type=int, default=8, help="sampling: how many pictures")
    # for "one" (a single run, which throughput and budget start in fresh processes)
    parser.add_argument("--preset", default="small", choices=("tiny", "small"))
    parser.add_argument("--graphs", default="auto", choices=("auto", "on", "off"))
    parser.add_argument("--timed", action="store_true", help="a --minutes run, scored by PSNR")
    args = parser.parse_args()
    if (
        args.what != "one" and not torch.cuda.is_available()
    ):  # "one" also runs on a CPU (a smoke test)
        parser.error("this bench needs a CUDA GPU (the CPU figures: bench/train_speed.py).")
    if args.what != "one":
        print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}", flush=True)
    jobs = {"throughput": throughput, "budget": budget, "sampling": sampling, "one": one_run}
    jobs[args.what](args)


if __name__ == "__main__":
    main()

"""Flow matching against DDPM on the digits, at equal training minutes (notebook 07).

Two conditional tiny U-Nets, identical at the start (seed 0), each trained by dh.train on the
16 px digits for the same budget: one as DDPM (noise target, linear schedule), one by flow
matching (velocity target, NoiseSchedule(kind="flow"): rectified flow). Then, from the same
starting noise at each number of steps (1, 2, 5, 10, 20, 50), --n samples (n / 10 of each
digit, guidance w = 1.5), scored by the digit classifier of diffusion_helpers.metrics:
  - class accuracy: how often it reads the digit that was asked for;
  - Fréchet distance of its features to all 1,797 real digits (n real digits: the floor).
Samplers: the DDPM model with DDIM (Euler on its ODE) and DPM-Solver++; the flow with Euler
(DDIM on the flow model read as a noise predictor, which is the same step; tests/test_flow.py).

    python bench/flow_vs_ddpm.py                 # 4 minutes each (the CPU budget)
    python bench/flow_vs_ddpm.py --steps 1800    # a fixed number of steps each instead

Run it alone: training by the clock on a shared CPU gives the two models different steps
(both are printed). diffusers' FlowMatchEulerDiscreteScheduler is left out: its Euler step is
the one above, and diffusers is not installed where this runs.
"""

from __future__ import annotations

import argparse
import os

from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path

import diffusion_helpers as dh

STEPS = (1, 2, 5, 10, 20, 50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=None, help="train steps (instead of minutes)")
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    print(f"{describe_cpu()}; load average {os.getloadavg()[0]:.1f}")
    data = dh.load_dataset("digits", 16)
    budget = dict(minutes=None if args.steps else args.minutes, steps=args.steps, seed=0,
                  device="cpu", progress=False)  # fmt: skip
    linear, flow = dh.NoiseSchedule(1000), dh.NoiseSchedule(1000, "flow")
    nets = {}
    for name, schedule, prediction in (("DDPM", linear, "eps"), ("flow", flow, "velocity")):
        net = dh.UNet.preset("tiny", image_channels=1, image_size=16, num_classes=10, seed=0)
        run = dh.train(net, data, schedule, prediction=prediction, **budget)
        print(f"{name}: {run.steps} steps in {run.elapsed:.0f} s", flush=True)
        nets[name] = run.model
    classifier = dh.train_classifier(data.images, data.labels, seed=0)
    real = dh.features(classifier, data.images)
    floor_images, _ = dh.pick_per_class(data.images, data.labels, args.n // 10, seed=0)
    print(
        f"floor: {args.n} real digits, Fréchet {dh.frechet_distance(dh.features(classifier, floor_images), real):.1f}"
    )
    labels = dh.class_labels(10, args.n // 10)
    runs = {
        "DDPM, DDIM (Euler)": (nets["DDPM"], linear, lambda k: dh.Sampler("ddim", steps=k)),
        "DDPM, DPM-Solver++": (nets["DDPM"], linear, lambda k: dh.Sampler("dpm_solver", steps=k)),
        "flow, Euler": (nets["flow"], flow,
                        lambda k: dh.Sampler("ddim", steps=k, clip=False)),
    }  # fmt: skip
    print(f"{'steps':>5} " + " ".join(f"{name:>28}" for name in runs))
    for k in STEPS:
        cells = []
        for model, schedule, sampler in runs.values():
            images = dh.sample(model, schedule, args.n, sampler(k), labels=labels, seed=1,
                               progress=False).images  # fmt: skip
            fd = dh.frechet_distance(dh.features(classifier, images), real)
            cells.append(
                f"FD {fd:6.1f}, {dh.class_accuracy(classifier, images, labels):4.0%} right"
            )
        print(f"{k:5d} " + " ".join(f"{c:>28}" for c in cells), flush=True)


if __name__ == "__main__":
    main()

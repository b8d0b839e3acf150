"""How much of the gap between the ODE samplers and the SDE samplers a Langevin corrector
closes (notebook 07), on the shipped 64 px model of the sample picture.

One run, the same 8 starting noises (seed 0) for every sampler, mean PSNR against the picture
the model learned, and the model calls each needed:
    python bench/corrector.py [--n 8] [--steps 20] [--snr 0.05 0.1 0.16 0.3]
"""

import argparse

import torch
from sample_speed import describe_cpu  # bench/ is the script's folder, so on sys.path

import diffusion_helpers as dh
from diffusion_helpers.score import sample_with_corrector
from diffusion_helpers.tutorial.comparisons import describe_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--snr", type=float, nargs="+", default=[0.05, 0.1, 0.16, 0.3])
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, schedule, x0 = dh.load_tutorial_model("cpu")
    print(f"{describe_cpu()}; {args.n} samples, seed 0")
    for name, sampler in {
        "DDIM, eta 0 (ODE)": dh.Sampler("ddim", steps=args.steps),
        "DDIM, eta 1 (SDE)": dh.Sampler("ddim", steps=args.steps, eta=1),
        "DPM-Solver++ (ODE)": dh.Sampler("dpm_solver", steps=args.steps),
        "SDE-DPM-Solver++": dh.Sampler("dpm_solver", steps=args.steps, eta=1),
    }.items():
        run = dh.sample(model, schedule, args.n, sampler, seed=0, progress=False)
        print(describe_run(name, run, x0), flush=True)
    for snr in args.snr:
        images, calls = sample_with_corrector(model, schedule, args.n, steps=args.steps, snr=snr)
        score = dh.psnr(images, x0).mean()
        print(
            f"{f'DDIM eta 0 + Langevin, r={snr:g}':<30} {calls:5d} calls   mean PSNR {score:5.1f} dB",
            flush=True,
        )


if __name__ == "__main__":
    main()

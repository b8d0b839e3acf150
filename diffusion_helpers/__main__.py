"""Command line: ``python -m diffusion_helpers demo|train|sample``.

Every failure a user can cause (a bad option, an unreadable image, a missing checkpoint) ends
with one line on stderr and exit status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Optional

from . import demo
from .train import TrainingError


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line: what is wrong and where to look."""

    def error(self, message: str) -> NoReturn:  # noqa: D102
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``demo``, ``train`` and ``sample`` commands and their options."""
    parser = OneLineParser(
        prog="python -m diffusion_helpers",
        description="DDPM on your own picture: noise it, train a U-Net, sample it back.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--size", type=positive_int, help="image side in pixels (default: 32 on CPU, 64 on GPU)"
        )
        p.add_argument(
            "--minutes",
            type=positive_float,
            help="training budget in minutes (default: 4)",
        )
        p.add_argument(
            "--steps", type=positive_int, help="train this many steps instead of a time budget"
        )
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        p.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")

    d = sub.add_parser("demo", help="the whole tutorial, headless, writing pictures to a folder")
    d.add_argument("--image", type=Path, help="your picture (default: the bundled sample)")
    d.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)"
    )
    common(d)

    t = sub.add_parser("train", help="train a U-Net on a picture or a folder of pictures")
    t.add_argument(
        "--image", type=Path, help="a picture or a folder of pictures (default: the bundled sample)"
    )
    t.add_argument(
        "--out",
        type=Path,
        default=Path("outputs/unet.pt"),
        help="checkpoint to write (default: outputs/unet.pt); resumed if it exists",
    )
    t.add_argument(
        "--export",
        type=Path,
        help="also write a small float16 copy of the EMA weights for sampling",
    )
    t.add_argument(
        "--preset", help="U-Net preset: tiny, small or base (default: tiny on CPU, small on GPU)"
    )
    common(t)

    s = sub.add_parser("sample", help="sample pictures from a trained checkpoint")
    s.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint from `train` (default: the shipped pretrained one)",
    )
    s.add_argument(
        "--out", type=Path, default=Path("samples"), help="output folder (default: samples)"
    )
    s.add_argument("-n", type=positive_int, default=8, help="number of pictures (default: 8)")
    s.add_argument(
        "--method", choices=("ddpm", "ddim"), default="ddpm", help="sampler (default: ddpm)"
    )
    s.add_argument(
        "--ddim-steps", type=positive_int, default=50, help="steps for --method ddim (default: 50)"
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command in ("demo", "train"):  # `sample` trains nothing: no size or budget
            budget = dict(size=args.size, minutes=args.minutes, steps=args.steps)
        if args.command == "demo":
            demo.run_demo(args.image, args.out, seed=args.seed, device=args.device, **budget)
        elif args.command == "train":
            demo.run_train(
                args.image,
                args.out,
                seed=args.seed,
                device=args.device,
                preset=args.preset,
                export=args.export,
                **budget,
            )
        else:
            demo.run_sample(
                args.checkpoint,
                args.out,
                n=args.n,
                method=args.method,
                ddim_steps=args.ddim_steps,
                seed=args.seed,
                device=args.device,
            )
    except (ValueError, FileNotFoundError, TrainingError) as err:
        # ImageLoadError, CheckpointError, TrainingError and argument checks carry a full message.
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "\nstopped: any checkpoint written so far is intact and will be resumed.",
            file=sys.stderr,
        )
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

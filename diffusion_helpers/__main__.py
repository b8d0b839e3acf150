"""Command line: ``python -m diffusion_helpers demo|train|sample``.

Every failure a user can cause (a bad option, an unreadable image, a missing checkpoint, an
output that cannot be written) ends with one line on stderr and exit status 2, before any
work is done where it can be known then; nothing else is caught. Ctrl-C exits with 130 and
SIGTERM with 143, after saying truthfully what was kept.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn, Optional

from . import demo, demo_edit
from .distributed import is_main_process
from .interrupts import EXIT_STATUS, Interrupted, stop_signals
from .masks import PRESETS
from .sampling import METHODS
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
    """The ``demo``, ``train``, ``sample``, ``edit``, ``inpaint`` and ``vary`` commands."""
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
        p.add_argument("--cuda-graphs", choices=("auto", "on", "off"), default="auto",
                       help="on a GPU, replay the U-Net as CUDA graphs: auto (when a run pays "
                            "back compiling), on or off (default: auto)")  # fmt: skip

    d = sub.add_parser("demo", help="the whole tutorial, headless, writing pictures to a folder")
    d.add_argument("--image", type=Path, help="your picture (default: the bundled sample)")
    d.add_argument(
        "--out", type=Path, default=Path("demo_output"), help="output folder (default: demo_output)"
    )
    d.add_argument(
        "--resume",
        action="store_true",
        help="continue from the checkpoint in --out (default: start afresh, keeping it as "
        "unet.previous.pt)",
    )
    common(d)

    t = sub.add_parser(
        "train", help="train a U-Net on a picture, a folder of pictures or a named dataset"
    )
    t.add_argument(
        "--data",
        "--image",
        dest="data",
        help="a picture, a folder of pictures (subfolders = classes), or digits, mnist, "
        "fashion_mnist, cifar10 (default: the bundled sample picture)",
    )
    t.add_argument(
        "--no-labels",
        action="store_true",
        help="train an unconditional model even when the data has classes",
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
    s.add_argument("--method", choices=METHODS, default="ddpm", help="sampler (default: ddpm)")
    s.add_argument(
        "--steps",
        "--ddim-steps",
        dest="steps",
        type=positive_int,
        help="steps for ddim (default 50) or dpm_solver (default 20); ddpm takes all T",
    )
    s.add_argument(
        "--eta",
        type=float,
        default=0.0,
        help="fresh noise for ddim or dpm_solver: 0 deterministic (default), 1 DDPM-like; "
        "for a model of one picture, dpm_solver with --eta 1 is as good as ddpm in 20 steps",
    )
    s.add_argument(
        "--label", type=int, help="the class to draw, for a class-conditional model (e.g. 7)"
    )
    s.add_argument(
        "--guidance",
        type=float,
        help="classifier-free guidance scale w (0: unconditional, 1: plain conditional)",
    )
    s.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    s.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")

    def from_a_model(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--image", type=Path, help=f"the picture to {what} (default: the sample)")
        p.add_argument(
            "--checkpoint", type=Path, help="a trained model (default: the shipped pretrained one)"
        )
        p.add_argument("-n", type=positive_int, default=4, help="how many results (default: 4)")
        p.add_argument("--method", choices=METHODS, default="ddpm", help="sampler (default: ddpm)")
        p.add_argument("--steps", type=positive_int, help="steps for ddim or dpm_solver")
        p.add_argument(
            "--eta", type=float, default=0.0, help="fresh noise for ddim or dpm_solver (0-1)"
        )
        p.add_argument("--label", type=int, help="the class to draw (a conditional model)")
        p.add_argument("--guidance", type=float, help="classifier-free guidance scale w")
        p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
        p.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")

    e = sub.add_parser("edit", help="SDEdit: noise a picture part of the way, then denoise it")
    from_a_model(e, "edit")
    e.add_argument(
        "--strength",
        type=float,
        default=0.5,
        help="how much noise, 0 (keep the picture) to 1 (draw anew) (default: 0.5)",
    )
    e.add_argument("--out", type=Path, default=Path("edits"), help="output folder")

    i = sub.add_parser("inpaint", help="RePaint: fill part of a picture with the model")
    from_a_model(i, "fill in")
    i.add_argument("--mask", choices=PRESETS, default="centre_box", help="what to fill")
    i.add_argument("--resample", type=positive_int, default=1, help="RePaint's resampling")
    i.add_argument("--jump", type=positive_int, default=10, help="RePaint's jump length")
    i.add_argument("--out", type=Path, default=Path("inpainted"), help="output folder")

    v = sub.add_parser("vary", help="new pictures in the style of yours (a patch model)")
    v.add_argument("--image", type=Path, help="your picture (default: the bundled sample)")
    v.add_argument("--crop", type=positive_int, help="crop side (default: half the picture)")
    v.add_argument("-n", type=positive_int, default=4, help="how many variations (default: 4)")
    v.add_argument("--method", choices=METHODS, default="ddpm", help="sampler (default: ddpm)")
    v.add_argument("--sampler-steps", type=positive_int, help="steps for ddim or dpm_solver")
    v.add_argument("--out", type=Path, default=Path("variations"), help="output folder")
    common(v)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    try:
        with stop_signals():  # SIGTERM, like Ctrl-C, ends in a message and an exit status
            run(args)
    except (ValueError, FileNotFoundError, TrainingError) as err:
        # ImageLoadError, CheckpointError, TrainingError and argument checks carry a full message.
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        name = err.signal_name if isinstance(err, Interrupted) else "SIGINT"
        if is_main_process():  # under torchrun, one message for all the processes
            print(f"\nstopped by {name}: {after_stop(args)}", file=sys.stderr)
        return EXIT_STATUS[name]
    return 0


def run(args: argparse.Namespace) -> None:
    """Dispatch one parsed command."""
    if args.command in ("demo", "train"):  # the options of common() in build_parser
        common = dict(size=args.size, minutes=args.minutes, steps=args.steps, seed=args.seed,
                      device=args.device, cuda_graphs=args.cuda_graphs)  # fmt: skip
    if args.command == "demo":
        demo.run_demo(args.image, args.out, resume=args.resume, **common)
    elif args.command in ("edit", "inpaint"):
        shared = dict(checkpoint=args.checkpoint, n=args.n, method=args.method, steps=args.steps,
                      eta=args.eta, seed=args.seed, device=args.device, label=args.label,
                      guidance=args.guidance)  # fmt: skip
        if args.command == "edit":
            demo_edit.run_edit(args.image, args.out, strength=args.strength, **shared)
        else:
            demo_edit.run_inpaint(
                args.image, args.out, mask=args.mask, resample=args.resample, jump=args.jump,
                **shared,
            )  # fmt: skip
    elif args.command == "vary":
        demo_edit.run_vary(
            args.image, args.out, size=args.size, crop=args.crop, minutes=args.minutes,
            steps=args.steps, n=args.n, method=args.method, sampler_steps=args.sampler_steps,
            seed=args.seed, device=args.device,
        )  # fmt: skip
    elif args.command == "train":
        demo.run_train(args.data, args.out, preset=args.preset, export=args.export,
                       use_labels=not args.no_labels, **common)  # fmt: skip
    else:
        demo.run_sample(
            args.checkpoint,
            args.out,
            n=args.n,
            method=args.method,
            steps=args.steps,
            eta=args.eta,
            seed=args.seed,
            device=args.device,
            label=args.label,
            guidance=args.guidance,
        )


def after_stop(args: argparse.Namespace) -> str:
    """What is on disk after an interrupt, truthfully, for each command."""
    if args.command in ("sample", "edit", "inpaint"):
        return "cut short; no new pictures were written."
    path = {"demo": args.out / "unet.pt", "vary": args.out / "vary.pt"}.get(args.command, args.out)
    again = (
        "add --resume to continue" if args.command == "demo" else "run the same command to continue"
    )
    skipped = " --export was skipped." if getattr(args, "export", None) else ""
    return f"{demo.checkpoint_summary(path)}; {again}.{skipped}"


if __name__ == "__main__":
    sys.exit(main())

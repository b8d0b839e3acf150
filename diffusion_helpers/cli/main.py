"""Command line: ``python -m diffusion_helpers demo|train|sample|edit|inpaint|vary``.

Every failure a user can cause (a bad option, an unreadable image, a missing checkpoint, an
output that cannot be written) ends with one line on stderr and exit status 2, before any
work is done where it can be known then; nothing else is caught. Ctrl-C exits with 130 and
SIGTERM with 143, after saying truthfully what was kept. What the command line prints cannot
fail to print: a file name that is not UTF-8 is shown with ``\\x`` escapes.

Each command is one function (:mod:`.demo`, :mod:`.edit`) chosen by argparse's
``set_defaults``; the sampler options are added by one function, :func:`sampler_options`,
and read back as one :class:`.sampling.Sampler` by :func:`sampler_from`.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Optional, get_args

from ..checks.values import MAX_SEED
from ..checks.values import seed as check_seed
from ..pictures.masks import PRESETS
from ..reverse import FAST_SAMPLER, Sampler, Variance
from ..runtime.device import PRECISIONS
from ..runtime.distributed import is_main_process
from ..runtime.graphs import MODES as GRAPH_MODES
from ..runtime.interrupts import EXIT_STATUS, Interrupted, stop_signals
from ..storage.files import WriteError
from ..timesteps import METHODS
from ..training import TrainingError
from .demo import checkpoint_summary, run_demo, run_sample, run_train
from .edit import run_edit, run_inpaint, run_vary


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


def seed_number(text: str) -> int:
    """argparse type: a seed, a whole number from 0 to 2^63 - 1 (what torch's generator takes)."""
    try:
        return check_seed(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a whole number from 0 to {MAX_SEED}, got {text}"
        ) from None


def seed_option(p: argparse.ArgumentParser) -> None:
    """The ``--seed`` option of every command."""
    p.add_argument("--seed", type=seed_number, default=0, help="random seed (default: 0)")


def sampler_options(p: argparse.ArgumentParser, *steps_flags: str) -> None:
    """The options of a :class:`.sampling.Sampler` (default SDE-DPM-Solver++ in 20 steps);
    ``steps_flags`` name the sampler's steps option (``--steps`` where the command does not
    train, ``--sampler-steps`` where ``--steps`` counts training steps)."""
    fast = FAST_SAMPLER
    g = p.add_argument_group("sampler")
    g.add_argument("--method", choices=METHODS, default=fast.method,
                   help=f"reverse process: ddpm (Algorithm 2, all T steps), ddim or dpm_solver "
                        f"(default: {fast.method})")  # fmt: skip
    g.add_argument(*steps_flags, dest="sampler_steps", type=positive_int,
                   help="steps for ddim (default 50) or dpm_solver (default 20)")  # fmt: skip
    g.add_argument("--eta", type=float, default=None,
                   help=f"fresh noise for ddim or dpm_solver: 0 deterministic, 1 DDPM-like "
                        f"(default: {fast.eta:g} with dpm_solver, else 0)")  # fmt: skip
    g.add_argument("--variance", choices=get_args(Variance), default="posterior",
                   help="sigma_t^2 of Algorithm 2, for ddpm (default: posterior)")  # fmt: skip
    g.add_argument("--no-clip", dest="clip", action="store_false",
                   help="do not clip the predicted x_0 to [-1, 1] at each step")  # fmt: skip
    g.add_argument("--guidance", type=float,
                   help="classifier-free guidance scale w for a class-conditional model "
                        "(0: unconditional, 1: plain conditional; default 1.5)")  # fmt: skip


def sampler_from(args: argparse.Namespace) -> Sampler:
    """The :class:`.sampling.Sampler` the options of :func:`sampler_options` describe."""
    eta = (
        args.eta
        if args.eta is not None
        else FAST_SAMPLER.eta
        if args.method == "dpm_solver"
        else 0.0
    )
    return Sampler(args.method, args.sampler_steps, eta, args.variance, args.clip, args.guidance)


def training_options(p: argparse.ArgumentParser) -> None:
    """The options of the commands that train: size, budget, seed, device, precision, CUDA
    graphs."""
    p.add_argument("--size", type=positive_int,
                   help="image side in pixels (default: 64 on a CPU, 128 on a GPU)")  # fmt: skip
    p.add_argument("--minutes", type=positive_float, help="training budget in minutes (default: 4)")
    p.add_argument(
        "--steps", type=positive_int, help="train this many steps instead of a time budget"
    )
    seed_option(p)
    p.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="number format for training: auto (bf16 where the hardware has it, fp16 "
                        "on older GPUs, else fp32), fp32, bf16 or fp16 (default: auto)")  # fmt: skip
    p.add_argument("--cuda-graphs", choices=GRAPH_MODES, default="off",
                   help="on a GPU, run the U-Net as CUDA graphs (default: off)")  # fmt: skip


def from_a_model(p: argparse.ArgumentParser, what: str, n: int = 4) -> None:
    """The options of the commands that use a trained model on a picture."""
    p.add_argument("--image", type=Path, help=f"the picture to {what} (default: the sample)")
    p.add_argument("--checkpoint", type=Path,
                   help="a trained model (default: the shipped pretrained one)")  # fmt: skip
    p.add_argument("-n", type=positive_int, default=n, help=f"how many results (default: {n})")
    p.add_argument("--label", type=int, help="the class to draw (a conditional model, e.g. 7)")
    seed_option(p)
    p.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")
    sampler_options(p, "--steps")


def build_parser() -> argparse.ArgumentParser:
    """The ``demo``, ``train``, ``sample``, ``edit``, ``inpaint`` and ``vary`` commands, each
    with the function that runs it in ``args.run``."""
    parser = OneLineParser(
        prog="python -m diffusion_helpers",
        description="DDPM on your own picture: noise it, train a U-Net, sample it back.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    def command(
        name: str, text: str, run: Callable[[argparse.Namespace], None]
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=text, description=text)
        p.set_defaults(run=run)
        return p

    d = command("demo", "the whole tutorial, headless, writing pictures to a folder", demo)
    d.add_argument("--image", type=Path, help="your picture (default: the bundled sample)")
    d.add_argument("--out", type=Path, default=Path("demo_output"),
                   help="output folder (default: demo_output)")  # fmt: skip
    d.add_argument("--resume", action="store_true",
                   help="continue from the checkpoint in --out (default: start afresh, keeping "
                        "it as unet.previous.pt)")  # fmt: skip
    training_options(d)
    sampler_options(d, "--sampler-steps")

    t = command(
        "train", "train a U-Net on a picture, a folder of pictures or a named dataset", train
    )
    t.add_argument("--data", "--image", dest="data",
                   help="a picture, a folder of pictures (subfolders = classes), or digits, mnist, "
                        "fashion_mnist, cifar10 (default: the bundled sample picture)")  # fmt: skip
    t.add_argument("--no-labels", action="store_true",
                   help="train an unconditional model even when the data has classes")  # fmt: skip
    t.add_argument("--out", type=Path, default=Path("outputs/unet.pt"),
                   help="checkpoint to write (default: outputs/unet.pt); resumed if it exists")  # fmt: skip
    t.add_argument("--export", type=Path,
                   help="also write a small float16 copy of the EMA weights for sampling")  # fmt: skip
    t.add_argument("--preset", help="U-Net preset: tiny, small or base (default: for the machine)")
    training_options(t)

    s = command("sample", "sample pictures from a trained checkpoint", sample)
    s.add_argument("--checkpoint", type=Path,
                   help="checkpoint from `train` (default: the shipped pretrained one)")  # fmt: skip
    s.add_argument(
        "--out", type=Path, default=Path("samples"), help="output folder (default: samples)"
    )
    s.add_argument("-n", type=positive_int, default=8, help="number of pictures (default: 8)")
    s.add_argument("--label", type=int, help="the class to draw, for a class-conditional model")
    seed_option(s)
    s.add_argument("--device", help="cpu, cuda or mps (default: the fastest available)")
    sampler_options(s, "--steps", "--ddim-steps")

    e = command("edit", "SDEdit: noise a picture part of the way, then denoise it", edit)
    from_a_model(e, "edit")
    e.add_argument("--strength", type=float, default=0.5,
                   help="how much noise, 0 (keep the picture) to 1 (draw anew) (default: 0.5)")  # fmt: skip
    e.add_argument("--out", type=Path, default=Path("edits"), help="output folder")

    i = command("inpaint", "RePaint: fill part of a picture with the model", inpaint)
    from_a_model(i, "fill in")
    i.add_argument("--mask", choices=PRESETS, default="centre_box", help="what to fill")
    i.add_argument("--resample", type=positive_int, default=1, help="RePaint's resampling")
    i.add_argument("--jump", type=positive_int, default=10, help="RePaint's jump length")
    i.add_argument("--out", type=Path, default=Path("inpainted"), help="output folder")

    v = command("vary", "new pictures in the style of yours (a patch model)", vary)
    v.add_argument("--image", type=Path, help="your picture (default: the bundled sample)")
    v.add_argument("--crop", type=positive_int, help="crop side (default: half the picture)")
    v.add_argument("-n", type=positive_int, default=4, help="how many variations (default: 4)")
    v.add_argument("--out", type=Path, default=Path("variations"), help="output folder")
    training_options(v)
    sampler_options(v, "--sampler-steps")
    return parser


def demo(args: argparse.Namespace) -> None:
    """``demo``: :func:`.demo.run_demo`."""
    run_demo(args.image, args.out, resume=args.resume, size=args.size, minutes=args.minutes,
             steps=args.steps, seed=args.seed, device=args.device, precision=args.precision,
             cuda_graphs=args.cuda_graphs, sampler=sampler_from(args))  # fmt: skip


def train(args: argparse.Namespace) -> None:
    """``train``: :func:`.demo.run_train`."""
    run_train(args.data, args.out, preset=args.preset, export=args.export,
              use_labels=not args.no_labels, size=args.size, minutes=args.minutes,
              steps=args.steps, seed=args.seed, device=args.device, precision=args.precision,
              cuda_graphs=args.cuda_graphs)  # fmt: skip


def sample(args: argparse.Namespace) -> None:
    """``sample``: :func:`.demo.run_sample`."""
    run_sample(args.checkpoint, args.out, n=args.n, sampler=sampler_from(args), seed=args.seed,
               device=args.device, label=args.label)  # fmt: skip


def edit(args: argparse.Namespace) -> None:
    """``edit``: :func:`.edit.run_edit`."""
    run_edit(args.image, args.out, checkpoint=args.checkpoint, strength=args.strength, n=args.n,
             sampler=sampler_from(args), seed=args.seed, device=args.device,
             label=args.label)  # fmt: skip


def inpaint(args: argparse.Namespace) -> None:
    """``inpaint``: :func:`.edit.run_inpaint`."""
    run_inpaint(args.image, args.out, checkpoint=args.checkpoint, mask=args.mask, n=args.n,
                resample=args.resample, jump=args.jump, sampler=sampler_from(args),
                seed=args.seed, device=args.device, label=args.label)  # fmt: skip


def vary(args: argparse.Namespace) -> None:
    """``vary``: :func:`.edit.run_vary`."""
    run_vary(args.image, args.out, size=args.size, crop=args.crop, minutes=args.minutes,
             steps=args.steps, n=args.n, sampler=sampler_from(args), seed=args.seed,
             device=args.device)  # fmt: skip


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line; return the exit status."""
    printable_output()
    args = build_parser().parse_args(argv)
    out = getattr(args, "out", None)
    existed = out is not None and os.path.lexists(out)

    def remove_if_unused() -> None:
        if out is not None and not existed and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # made for this run, and nothing came of it

    try:
        with stop_signals():  # SIGTERM, like Ctrl-C, ends in a message and an exit status
            args.run(args)
    except (ValueError, FileNotFoundError, TrainingError, WriteError) as err:
        # ImageLoadError, CheckpointError, TrainingError, WriteError (a full disk) and argument
        # checks carry a full message. It starts a line of its own: a progress bar ends its line
        # as the error leaves its loop (tqdm's iterator, or the training run's exit, closes it).
        if not isinstance(err, WriteError):  # bad input: no empty folder left behind
            remove_if_unused()
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        name = err.signal_name if isinstance(err, Interrupted) else "SIGINT"
        remove_if_unused()
        if is_main_process():  # under torchrun, one message for all the processes
            print(f"\nstopped by {name}: {after_stop(args)}", file=sys.stderr)
        return EXIT_STATUS[name]
    return 0


def printable_output() -> None:
    """Make stdout and stderr write what they cannot encode as escapes (``\\udcff``) instead
    of failing: a file name that is not UTF-8 must not turn a message into a traceback."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):  # a TextIOWrapper; a replaced stream may not be
            stream.reconfigure(errors="backslashreplace")


def after_stop(args: argparse.Namespace) -> str:
    """What is on disk after an interrupt, truthfully, for each command."""
    if args.command in ("sample", "edit", "inpaint"):
        return "cut short; no new pictures were written."
    path = {"demo": args.out / "unet.pt", "vary": args.out / "vary.pt"}.get(args.command, args.out)
    again = (
        "add --resume to continue" if args.command == "demo" else "run the same command to continue"
    )
    skipped = " --export was skipped." if getattr(args, "export", None) else ""
    return f"{checkpoint_summary(path)}; {again}.{skipped}"


if __name__ == "__main__":
    sys.exit(main())

"""The whole tutorial, headless: what ``python -m diffusion_helpers demo|train|sample`` runs.

Each function checks every output place before any work starts, writes its pictures to a
folder and prints one line per file, so a person can open them; the notebooks show the same
pictures inline. Pictures are written by :func:`.storage.outputs.write_output`: a file there
that we did not write is kept, and the picture goes to a fresh name beside it (the line names
it). An interrupted run raises :class:`.runtime.interrupts.Interrupted` after saying what
was kept, so the command line can exit with 130 (Ctrl-C) or 143 (SIGTERM).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import torch
from matplotlib.figure import Figure

from ..figures.animation import save_gif
from ..figures.plots import plot_losses, plot_noising_grid, plot_schedules, show_images
from ..metrics.psnr import psnr
from ..pictures.data import DATASET_NAMES, load_dataset
from ..pictures.imagefile import IMAGE_SUFFIXES
from ..pictures.images import load_image_info, sample_image_path
from ..reverse import FAST_SAMPLER, Sampler
from ..runtime.device import Precision
from ..runtime.distributed import is_main_process
from ..runtime.graphs import CudaGraphs
from ..runtime.interrupts import Interrupted
from ..runtime.memory import check_training_memory
from ..sampling import load_for_sampling, sample
from ..schedule import NoiseSchedule
from ..storage.checkpoint import export_weights, read_checkpoint
from ..storage.outputs import (
    check_checkpoint_target,
    check_export_target,
    check_output_folder,
    keep_previous_checkpoint,
    write_output,
)
from ..training import TrainResult, default_batch_size, train
from ..tutorial.settings import TutorialSettings, dataset_settings, settings
from ..tutorial.work_folder import PRETRAINED
from ..unet import UNet

FORWARD_STEPS = [0, 50, 100, 200, 300, 500, 700, 999]  # where the forward grid looks (T = 1000)


def run_demo(
    image: Optional[Path],
    out: Path,
    *,
    size: Optional[int] = None,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    seed: int = 0,
    device: Optional[str] = None,
    resume: bool = False,
    precision: Precision = "auto",
    cuda_graphs: CudaGraphs = "off",
    sampler: Sampler = FAST_SAMPLER,
) -> dict:
    """Forward grid, schedule plot, training, reverse GIF and final samples with PSNR, in ``out``.

    A checkpoint already in ``out`` is moved aside to ``unet.previous.pt`` and training starts
    afresh, unless ``resume`` (then the run continues from it, and says so). ``cuda_graphs``:
    for training on a GPU (:mod:`.runtime.graphs`); ``sampler`` draws the pictures
    (SDE-DPM-Solver++ in 20 steps by default).
    Returns a summary dict (paths, PSNR, times) that the tests read.
    """
    cfg = settings(device, size, say=minutes is None and steps is None)
    size = cfg.image_size
    check_output_folder(out, "demo's pictures")
    checkpoint = out / "unet.pt"
    check_checkpoint_target(checkpoint)
    x0, info = load_image_info(image if image is not None else sample_image_path(), size=size)
    model = cfg.model(x0.shape[1], seed=seed)
    check_training_memory(model, default_batch_size(size, cfg.device), cfg.device)  # first
    if checkpoint.exists() and not resume:
        previous = keep_previous_checkpoint(checkpoint)
        print(
            f"Starting afresh; the earlier checkpoint is kept as {previous} (--resume continues)."
        )
    print(f"Picture: {info.describe()}")
    schedule = cfg.schedule()
    g = torch.Generator().manual_seed(seed)

    written = {
        "forward_grid": save_figure(
            plot_noising_grid(x0, schedule, _forward_steps(schedule), generator=g),
            out / "forward_grid.png",
        ),
        "schedules": save_figure(
            plot_schedules({"linear (DDPM)": schedule, "cosine": cfg.schedule("cosine")}),
            out / "schedules.png",
        ),
    }

    print(
        f"Training a {cfg.preset} U-Net ({model.num_parameters() / 1e6:.2f} M parameters) "
        f"on {cfg.device.type}..."
    )
    result = _train(
        model, x0, schedule, cfg, minutes, steps, seed, checkpoint, precision, cuda_graphs
    )
    written["loss"] = save_figure(plot_losses(result.losses), out / "loss.png")
    written["checkpoint"] = result.checkpoint or checkpoint  # where the last save went

    start = time.perf_counter()
    run = sample(result.model, schedule, cfg.num_samples, sampler, seed=seed,
                 every=frame_every(schedule, sampler), cuda_graphs=cuda_graphs)  # fmt: skip
    sample_seconds = time.perf_counter() - start
    scores = psnr(run.images, x0, mirror=True)
    written["reverse_gif"] = save_gif(run.frames, out / "reverse.gif")
    titles = ["your picture"] + [f"{s:.1f} dB" for s in scores.tolist()]
    written["samples"] = save_figure(
        # your picture and the samples in two even rows (5 + 4 for the usual 8 samples)
        show_images(torch.cat([x0, run.images]), titles=titles, ncols=(len(titles) + 1) // 2),
        out / "samples.png",
    )

    for name, path in written.items():
        print(f"  {name:<13} {path}")
    print(
        f"{_trained(result)}; sampled {cfg.num_samples} pictures with {sampler} in "
        f"{sample_seconds:.0f} s; mean PSNR {scores.mean():.1f} dB against your picture (worst "
        f"{scores.min():.1f}; 30 dB is hard to tell apart by eye)."
    )
    print(f"Everything is in {out.resolve()}")
    return {
        "files": written,
        "psnr": scores,
        "train_seconds": result.elapsed,
        "sample_seconds": sample_seconds,
        "steps": result.steps,
    }


def run_train(
    data: Optional[str],
    out: Path,
    *,
    size: Optional[int] = None,
    minutes: Optional[float] = None,
    steps: Optional[int] = None,
    seed: int = 0,
    device: Optional[str] = None,
    preset: Optional[str] = None,
    export: Optional[Path] = None,
    use_labels: bool = True,
    precision: Precision = "auto",
    cuda_graphs: CudaGraphs = "off",
) -> Path:
    """Train on a picture (default: the bundled sample), a folder of pictures, or a named
    dataset ("digits", "mnist", ...), into the checkpoint ``out`` (resumed if it is ours).

    A labelled dataset trains a class-conditional net unless ``use_labels`` is False. With
    ``export``, also write a small float16 copy of the EMA weights for sampling, unless the run
    was interrupted (then nothing is exported and :class:`.runtime.interrupts.Interrupted` is raised).
    Under ``torchrun`` every process trains; only the first prints and exports. Returns where
    the checkpoint is: ``out``, or the rescue path a save went to when ``out`` refused it.
    """
    main = is_main_process()
    source = data if data is not None else str(sample_image_path())
    if not source.strip():
        raise ValueError(
            "--data is empty: give a picture, a folder of pictures, or one of "
            f"{', '.join(DATASET_NAMES)}."
        )
    picture = Path(source).suffix.lower() in IMAGE_SUFFIXES or Path(source).is_file()
    cfg = (
        settings(device, size, say=minutes is None and steps is None)
        if picture
        else dataset_settings(device)
    )
    size = size or cfg.image_size
    check_checkpoint_target(out)
    if export is not None:
        check_export_target(export, out)
    if not picture:  # a named dataset, a folder, or neither: load_dataset says which it found
        data = load_dataset(source, size)  # the dataset itself: train() flips folders of photos
        if main:
            print(data.describe())
        channels = data.images.shape[1]
        classes = len(data.classes) if use_labels and data.labels is not None else None
    else:
        data = load_image_info(source, size=size)[0]
        channels, classes = data.shape[1], None
    model = UNet.preset(preset or cfg.preset, image_channels=channels, image_size=size,
                        patch_size=cfg.patch_size, num_classes=classes, seed=seed,
                        position_octaves=cfg.position_octaves)  # fmt: skip
    result = _train(
        model, data, cfg.schedule(), cfg, minutes, steps, seed, out, precision, cuda_graphs
    )
    saved = result.checkpoint or out  # a save that --out refused went to a rescue path
    if main:
        print(f"{_trained(result)}; checkpoint: {saved}")
    if export is not None and main:
        small = export_weights(saved, export)
        print(f"Sampling-only copy: {small} ({small.stat().st_size / 1e6:.1f} MB)")
    return saved


def run_sample(
    checkpoint: Optional[Path],
    out: Path,
    *,
    n: int = 8,
    sampler: Sampler = FAST_SAMPLER,
    seed: int = 0,
    device: Optional[str] = None,
    label: Optional[int] = None,
) -> dict:
    """Sample ``n`` pictures from a checkpoint (default: the shipped one) into ``out`` with
    ``sampler``. A class-conditional model draws the class ``label``, or one of each class in
    turn."""
    check_output_folder(out, "samples")
    path = checkpoint if checkpoint is not None else PRETRAINED
    model, schedule, state = load_for_sampling(path, settings(device).device)
    classes = model.config.num_classes
    labels = label if label is not None or classes is None else torch.arange(n) % classes
    every = frame_every(schedule, sampler)
    run = sample(model, schedule, n, sampler, seed=seed, every=every, labels=labels)
    titles = None
    if classes is not None:
        names = torch.as_tensor(labels).expand(n).tolist() if label is not None else labels.tolist()
        titles = [f"class {c}" for c in names]
    written = {
        "samples": save_figure(show_images(run.images, titles=titles), out / "samples.png"),
        "reverse_gif": save_gif(run.frames, out / "reverse.gif"),
    }
    for name, p in written.items():
        print(f"  {name:<13} {p}")
    said = f"Sampled {n} pictures from {path} with {sampler} in {run.seconds:.1f} s"
    picture = state.get("picture")  # the picture a model of one picture learned
    if picture is not None and picture.shape[1:] == run.images.shape[1:]:
        scores = psnr(run.images, picture.float().to(run.images.device))
        said += f"; mean PSNR {scores.mean():.1f} dB against the picture it learned (worst {scores.min():.1f})"
    print(said + ".")
    return written


def trained_model(checkpoint: Optional[Path], device: Optional[str]) -> tuple[UNet, NoiseSchedule]:
    """The model of ``checkpoint`` (default: the shipped pretrained one) and its schedule."""
    path = checkpoint if checkpoint is not None else PRETRAINED
    model, schedule, _ = load_for_sampling(path, settings(device).device)
    return model, schedule


def frame_every(schedule: NoiseSchedule, sampler: Sampler) -> int:
    """Capture a frame every 1/100 of the reverse steps a whole run of ``sampler`` takes: about
    100 frames for the GIF whatever T is, and every step of a 20-step DPM-Solver run."""
    return max(1, (len(sampler.timesteps(schedule)) - 1) // 100)


def stop_if_interrupted(result: TrainResult) -> None:
    """A stopped run makes nothing more: train() said what it kept; the CLI exits 130/143."""
    if result.interrupted:
        raise Interrupted(result.interrupted)


def checkpoint_summary(path: Path) -> str:
    """One line on what a checkpoint on disk holds now (for messages after an interrupt)."""
    if not path.exists():
        return f"no checkpoint was written at {path}"
    try:
        return f"{path} holds {read_checkpoint(path)['step']} training steps"
    except ValueError:
        return f"{path} could not be read back"


def _train(
    model: UNet,
    data: object,
    schedule: NoiseSchedule,
    cfg: TutorialSettings,
    minutes: Optional[float],
    steps: Optional[int],
    seed: int,
    checkpoint: Path,
    precision: Precision = "auto",
    cuda_graphs: CudaGraphs = "off",
) -> TrainResult:
    """train() with the command line's budget: given steps/minutes, else the settings' own."""
    if minutes is None and steps is None:
        minutes, steps = cfg.train_minutes, cfg.train_steps
    result = train(
        model,
        data,
        schedule,
        minutes=minutes,
        steps=steps,
        device=cfg.device,
        seed=seed,
        checkpoint=checkpoint,
        precision=precision,
        cuda_graphs=cuda_graphs,
    )
    stop_if_interrupted(result)
    return result


def _trained(result: TrainResult) -> str:
    """'Trained N steps in S s' for this run, where a resumed run started, and on a GPU whether
    CUDA graphs ran (and their compile time)."""
    this_run = result.steps - result.resumed_from
    resumed = (
        f" (resumed at step {result.resumed_from}, now {result.steps})"
        if result.resumed_from
        else ""
    )
    on_gpu = result.config.device.startswith("cuda")
    graphs = f", CUDA graphs {result.cuda_graphs}" if on_gpu else ""
    return f"Trained {this_run} steps in {result.elapsed:.0f} s{resumed}{graphs}"


def save_figure(fig: Figure, path: Path) -> Path:
    """Write a figure as a PNG at 100 dpi, trimmed, at ``path`` or a fresh name beside it
    (:func:`.storage.outputs.write_output`); return the path written."""
    return write_output(path, lambda f: fig.savefig(f, format="png", dpi=100, bbox_inches="tight"))


def _forward_steps(schedule: NoiseSchedule) -> list[int]:
    T = schedule.num_steps
    return sorted({min(T - 1, round(t * T / 1000)) for t in FORWARD_STEPS})

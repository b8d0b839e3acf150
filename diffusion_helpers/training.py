"""``dh.train``: Algorithm 1 (:mod:`.train`) with what a run needs around it, decided once
before the loop: the device and its precision, the batch and the learning rate, one process or
torchrun's, the checkpoint (resumed when it exists), CPU threads, CUDA graphs. Between steps:
the learning-rate warm-up and decay, the EMA of the weights, the budget, the progress bar, a
checkpoint every minute, Ctrl-C and SIGTERM (obeyed at the next step boundary, so a checkpoint
always holds whole steps).

An exception that cuts a step (a second Ctrl-C) is settled here: before the optimiser moved the
weights, the step's random draws are rewound and it is undone; after, it counts as done. Either
way the run stops and saves, and resuming it equals a run that was never cut, bit for bit.
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Optional, Union, get_args

import torch
from tqdm.auto import tqdm

from .checks.values import choice, number, seed, whole_number
from .pictures.data import TrainingData, as_training_data
from .prediction import PREDICTIONS, noise_predictor, prediction
from .runtime import graphs
from .runtime.device import Autocast, Precision, make_grad_scaler, pick_device, pick_precision
from .runtime.distributed import Team, join
from .runtime.environment import quick_mode
from .runtime.graphs import CudaGraphs, check_request, mark_step
from .runtime.interrupts import Interrupted, StopRequests
from .runtime.memory import check_training_memory
from .runtime.threads import cpu_threads, pick_threads
from .schedule import NoiseSchedule
from .storage.checkpoint import (
    RECORD_STEPS,
    CheckpointError,
    read_checkpoint,
    resume_training,
    save_or_rescue,
    stored_prediction,
    training_state,
)
from .storage.outputs import claim_checkpoint
from .train import LrSchedule, algorithm_1, ema_decay, ema_update, lr_factor
from .unet import UNet

DEFAULT_MINUTES = 4.0  # the tutorial's budget: a learner waits about as long as for a video
QUICK_STEPS = 20  # quick mode (tests, CI): enough to run every line, not to learn
WARMUP_STEPS = 50  # a fifth of a short run; beat 20 steps on one picture
GRAD_CLIP = 1.0  # DDPM clipped the gradient norm at 1
COND_DROP = 0.1  # Ho & Salimans (2022) found p_uncond 0.1-0.2 best; 0.1 keeps the class strong


@dataclass
class TrainConfig:
    """The knobs of :func:`train` (``None``: chosen for the model, data and machine; the
    :class:`TrainResult` holds the config as it ran, every choice resolved).

    Attributes:
        steps, minutes: stop after this many steps in total (resumed ones included) or this
            many minutes of this call, whichever comes first; neither: :func:`default_budget`.
        batch_size, lr: see :func:`default_batch_size` and :func:`default_lr`; under torchrun
            the batch is global (split over the processes) and lr unchanged.
        warmup_steps: steps of the linear learning-rate warm-up (1 = none).
        lr_schedule: ``"cosine"`` (decay to 5% over the budget) or ``"constant"``.
        grad_clip: the gradient-norm cap, or None for no clipping.
        ema_decay: the cap of the EMA decay (:func:`.train.ema_decay`); 0 keeps no EMA.
        adam_beta2: how far back AdamW's average of squared gradients reaches; None:
            :func:`default_beta2`.
        flip: mirror each drawn image left-right with probability 1/2; None: as the data says
            (photos yes; one picture, tensors and the digits no).
        cond_drop: for a conditional net, the fraction of labels replaced by "no class".
        prediction: what the net learns to output (:mod:`.prediction`): ``"eps"`` (DDPM's
            noise), ``"x0"`` (the picture) or ``"velocity"`` (flow matching); None:
            :func:`default_prediction`.
        precision: ``"auto"`` (:func:`.runtime.device.pick_precision`), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        cuda_graphs: ``"on"`` runs the net through CUDA graphs on a GPU (:mod:`.runtime.graphs`).
        device: where to train (None: the fastest available). threads: CPU threads.
        seed: seeds every random draw of training (None: a fresh random seed, reported).
        checkpoint: a file; if it exists the run resumes from it exactly (same data and seed).
            It is written every ``checkpoint_every`` steps, every ``checkpoint_minutes``, at the
            end, and on Ctrl-C or SIGTERM.
        progress: show a progress bar with the loss and images per second.
    """

    steps: Optional[int] = None
    minutes: Optional[float] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    warmup_steps: int = WARMUP_STEPS
    lr_schedule: LrSchedule = "cosine"
    grad_clip: Optional[float] = GRAD_CLIP
    ema_decay: float = 0.9999
    adam_beta2: Optional[float] = None
    flip: Optional[bool] = None
    cond_drop: float = COND_DROP
    prediction: Optional[str] = None
    precision: Precision = "auto"
    cuda_graphs: CudaGraphs = "off"
    device: Optional[Union[str, torch.device]] = None
    threads: Optional[int] = None
    seed: Optional[int] = None
    checkpoint: Optional[Union[str, Path]] = None
    checkpoint_every: int = 500
    checkpoint_minutes: float = 1.0
    progress: bool = True

    def check(self) -> None:
        """Raise ``ValueError`` naming the first field with an impossible value."""
        for name in ("steps", "batch_size", "threads"):
            if getattr(self, name) is not None:
                whole_number(getattr(self, name), name)
        whole_number(self.checkpoint_every, "checkpoint_every")
        whole_number(self.warmup_steps, "warmup_steps")
        for name in ("minutes", "lr", "grad_clip"):
            if getattr(self, name) is not None:
                number(getattr(self, name), name, 0.0, above=True)
        number(self.checkpoint_minutes, "checkpoint_minutes", 0.0, above=True)
        choice(self.lr_schedule, "lr_schedule", get_args(LrSchedule))
        if self.prediction is not None:
            choice(self.prediction, "prediction", tuple(PREDICTIONS))
        choice(self.cuda_graphs, "cuda_graphs", ("off", "on"))
        if self.adam_beta2 is not None and not 0.0 < number(self.adam_beta2, "adam_beta2") < 1.0:
            raise ValueError(
                f"adam_beta2 must lie strictly between 0 and 1, got {self.adam_beta2}."
            )
        if not 0.0 <= number(self.ema_decay, "ema_decay") < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if not 0.0 <= number(self.cond_drop, "cond_drop") < 1.0:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}.")
        if self.seed is not None:
            seed(self.seed)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the noise predictor to sample with: the EMA weights (the raw ones if
            ``ema_decay=0``), read as eps whatever the net predicts (:mod:`.prediction`);
            :attr:`net` is the net itself.
        raw_model: the net whose weights the optimiser moved.
        config: the :class:`TrainConfig` as it ran, every choice resolved.
        losses: the mean loss of every step since the run began (resumed steps included).
        timesteps, sample_losses: t and per-image loss of every image of the last
            ``RECORD_STEPS`` steps (1-D tensors of equal length), for a loss-by-t plot.
        steps: steps done in total; elapsed: seconds of this call; images_per_second: in it.
        resumed_from: the step this call started at (0 unless it resumed a checkpoint).
        interrupted: ``"SIGINT"`` when Ctrl-C stopped the run early, else None.
        checkpoint: where the checkpoint was last written (None if nowhere, or not process 0).
        processes: how many processes trained (torchrun's, or 1).
        cuda_graphs: whether CUDA graphs ran, and why not (``"off: asked"``).
    """

    model: torch.nn.Module
    raw_model: UNet
    config: TrainConfig
    losses: list[float]
    timesteps: torch.Tensor
    sample_losses: torch.Tensor
    steps: int
    elapsed: float
    images_per_second: float
    resumed_from: int = 0
    interrupted: Optional[str] = None
    checkpoint: Optional[Path] = None
    processes: int = 1
    cuda_graphs: str = "off: asked"

    @property
    def net(self) -> torch.nn.Module:
        """The trained net itself (the EMA weights), which outputs what it learned to predict
        (``config.prediction``); :attr:`model` reads it as the noise."""
        return getattr(self.model, "net", self.model)


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last checkpoint on disk is intact."""


def default_budget() -> tuple[Optional[int], Optional[float]]:
    """``(steps, minutes)`` when none is given: QUICK_STEPS in quick mode, else DEFAULT_MINUTES."""
    return (QUICK_STEPS, None) if quick_mode() else (None, DEFAULT_MINUTES)


def default_batch_size(image_size: int, device: torch.device) -> int:
    """16 images of 32 px on a CPU (128 on a GPU), scaled by (32 / side)^2, at least 4; the side
    is the one the U-Net works at (after a patch stem). On a CPU the steps count most."""
    per_32px = 128 if device.type == "cuda" else 16
    return max(4, int(per_32px * (32 / image_size) ** 2))


def default_lr(model: torch.nn.Module, batch_size: int, prediction: str = "eps") -> float:
    """2e-3 under 5 M parameters, else DDPM's 2e-4; for the noise target times
    sqrt(min(batch_size, 64) / 64), whose small batches are noisy (README: at batch 4 on one
    photo the noise gave 2 dB more at 5e-4 than at 2e-3, the picture 3 dB more at 2e-3)."""
    base = 2e-3 if model.num_parameters() < 5_000_000 else 2e-4
    return base * (math.sqrt(min(batch_size, 64) / 64) if prediction == "eps" else 1.0)


def default_prediction(source: TrainingData) -> str:
    """What the net learns when not told: the picture x_0 for one picture (its ideal denoiser
    is that picture at every t, and the x_0 loss weighs the noisy steps that place it), the
    noise for a dataset (README, ``bench/picture_recipe.py``)."""
    return "x0" if source.picture is not None else "eps"


def default_beta2(source: TrainingData) -> float:
    """AdamW's beta2 when not told: 0.95 for one picture, whose gradients shrink by orders of
    magnitude within a short run (a shorter memory keeps the steps up: 7 to 9 dB more at the
    same steps, README); Adam's 0.999 for a dataset (0.95 measured no better on the digits)."""
    return 0.95 if source.picture is not None else 0.999


def make_config(config: Optional[TrainConfig], overrides: dict) -> TrainConfig:
    """``config`` (default :class:`TrainConfig`) with ``overrides`` applied, checked."""
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TypeError(f"train() got unknown settings {unknown}; known: {sorted(names)}.")
    cfg = replace(config or TrainConfig(), **overrides)
    if cfg.steps is None and cfg.minutes is None:
        cfg.steps, cfg.minutes = default_budget()
    cfg.check()
    return cfg


@dataclass
class Progress:
    """How far a run has come (saved in checkpoints): steps, every step's loss, and the
    (t, per-image loss) pairs of the last RECORD_STEPS steps."""

    step: int = 0
    losses: list[float] = field(default_factory=list)
    record_t: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    record_loss: torch.Tensor = field(default_factory=lambda: torch.zeros(0))

    def add(self, t: torch.Tensor, per_image: torch.Tensor) -> None:
        """Count one step with its timesteps [B] and per-image losses [B]."""
        self.step += 1
        self.losses.append(float(per_image.mean()))
        keep = RECORD_STEPS * t.shape[0]
        self.record_t = torch.cat([self.record_t, t.cpu()])[-keep:]
        self.record_loss = torch.cat([self.record_loss, per_image.float().cpu()])[-keep:]

    def state(self) -> dict:
        """What a checkpoint stores of it."""
        return {"step": self.step, "losses": self.losses, "record_t": self.record_t,
                "record_loss": self.record_loss}  # fmt: skip


def train(
    model: UNet,
    data: object,
    schedule: NoiseSchedule,
    config: Optional[TrainConfig] = None,
    *,
    labels: Optional[object] = None,
    callback: Optional[Callable[[int, float], None]] = None,
    **overrides: object,
) -> TrainResult:
    """Train ``model`` by Algorithm 1 (:func:`.train.algorithm_1`); return a :class:`TrainResult`.

    Args:
        data: a tensor [N, C, H, W] in [-1, 1] (N = 1 for one picture), an ``ImageDataset``,
            a torch Dataset or DataLoader, or a path to a picture or a folder
            (:func:`.pictures.data.as_training_data`).
        config, overrides: a :class:`TrainConfig`, and/or its fields as keywords
            (``train(model, x0, schedule, minutes=2, seed=0)``).
        labels: class labels [N] for a conditional model, when ``data`` carries none.
        callback: called as ``callback(step, loss)`` after every step (on every process).
    Ctrl-C stops at the end of the step it lands in, saves, and returns what was learned
    (``result.interrupted == "SIGINT"``); SIGTERM does the same, then raises
    :class:`.runtime.interrupts.Interrupted`. Under torchrun every process runs this; they stop together.
    Raises:
        TrainingError: on a non-finite loss (names the step; the checkpoint is left intact).
        ValueError: on bad settings or data, before any work is done.
    """
    cfg = make_config(config, overrides)
    with ExitStack() as stack:
        team: Team = stack.enter_context(join(pick_device(cfg.device)))
        device = team.device
        why_not = check_request(cfg.cuda_graphs, device, team.world_size)  # "on" refused now
        precision = pick_precision(cfg.precision, device)
        source = as_training_data(data, model.config, device, labels)
        inner = getattr(model.config, "inner_size", model.config.image_size)  # after a patch stem
        batch = team.batch_size(cfg.batch_size, default_batch_size(inner, device))
        check_training_memory(model, batch // team.world_size, device)  # before any file
        path, resuming = None, False
        if cfg.checkpoint is not None:  # process 0 checks and locks it; all get its verdict
            path, resuming = team.on_main(lambda: claim_checkpoint(cfg.checkpoint, stack))
        stored = read_checkpoint(path) if resuming else {}
        stack.enter_context(cpu_threads(pick_threads(cfg.threads, device)))  # chosen once
        fresh = random.SystemRandom().randrange(2**31)
        cfg = replace(
            cfg, batch_size=batch, precision=precision,
            flip=source.flip if cfg.flip is None else cfg.flip,
            prediction=cfg.prediction or (stored_prediction(stored) if stored else
                                          default_prediction(source)),
            seed=team.on_main(lambda: cfg.seed if cfg.seed is not None else
                              (stored.get("settings") or {}).get("seed", fresh)),
            device=str(device), threads=torch.get_num_threads(),
        )  # fmt: skip
        cfg.lr = cfg.lr or default_lr(model, batch, cfg.prediction)
        predicts = prediction(cfg.prediction)
        model.to(device).train()
        ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        # DDPM trained without weight decay; AdamW with 0 is Adam, named so the choice is visible
        cfg.adam_beta2 = cfg.adam_beta2 or default_beta2(source)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0,
                                      betas=(0.9, cfg.adam_beta2))  # fmt: skip
        scaler = make_grad_scaler() if cfg.precision == "fp16" else None
        generator = torch.Generator().manual_seed(cfg.seed)  # every draw of training
        torch.manual_seed(cfg.seed)  # dropout draws from torch's global generator
        progress = Progress()
        if resuming:  # every process reads the checkpoint
            check_same_run(stored, cfg, source.fingerprint, path)
            progress = Progress(**resume_training(path, model, ema, optimizer, scaler, schedule,
                                                  generator, device))  # fmt: skip
        first = progress.step

        def save() -> str:
            """Save now (process 0); a note for the learner when it went astray, else ""."""
            state = {**training_state(model, ema, optimizer, scaler, schedule, generator),
                     **progress.state(), **run_record(cfg, source, team.world_size)}  # fmt: skip
            with stops.held():  # no signal interrupts a save
                where, trouble = save_or_rescue(path, state)
            saved.append(where)
            return f" (could not write {path}: {trouble}; saved to {where})" if trouble else ""

        def batches() -> Iterator[tuple[torch.Tensor, Optional[torch.Tensor]]]:
            """Line 2 of Algorithm 1: x_0 ~ q(x_0), a batch of this process's rows."""
            while True:
                team.seed_dropout(cfg.seed, progress.step)
                idx = torch.randint(0, source.size, (cfg.batch_size,), generator=generator)
                x0, y = source.batch(team.rows(idx))
                if cfg.flip:  # a photo mirrored is as good a photo
                    mirror = team.rows(torch.rand(cfg.batch_size, generator=generator) < 0.5)
                    x0 = torch.where(mirror.to(device)[:, None, None, None], x0.flip(-1), x0)
                yield x0, y

        measured: list = []

        def measure(t: torch.Tensor, per_image: torch.Tensor) -> None:
            """Before the weights move: the whole batch's losses, checked finite."""
            t, per_image = team.gather(t, per_image)
            value = float(per_image.mean())
            if not math.isfinite(value):
                where = f"the checkpoint {path} (step {progress.step}) is intact. " if path else ""
                raise TrainingError(
                    f"the loss became {value} at step {progress.step + 1}: training diverged. "
                    f"{where}Try a lower learning rate (lr={cfg.lr:.2g} now, e.g. "
                    f"lr={cfg.lr / 4:.2g})."
                )
            measured[:] = [t, per_image]

        net = team.wrap(Autocast(model, cfg.precision))  # DDP averages the gradients
        status = f"off: {why_not or 'asked'}"
        if why_not is None and cfg.cuda_graphs == "on":  # compiled once, before the loop
            net, status = graphs.compile_net(net), "on"

        def loop(net: torch.nn.Module) -> Iterator:
            return algorithm_1(net, batches(), schedule, optimizer, generator, predicts=predicts,
                               cond_drop=cfg.cond_drop, grad_clip=cfg.grad_clip, scaler=scaler,
                               part=(team.rank, team.world_size), measured=measure)  # fmt: skip

        steps, saved = loop(net), []
        stops = stack.enter_context(StopRequests(second_raises=team.world_size == 1))
        show = cfg.progress and team.is_main  # one bar, on process 0
        bar = stack.enter_context(tqdm(total=cfg.steps, initial=first, disable=not show,
                                       desc="training", unit="step"))  # fmt: skip
        budget = cfg.minutes * 60 if cfg.minutes else math.inf
        # a run of few steps warms up over its first fifth rather than spending itself on warm-up
        warmup = min(cfg.warmup_steps, max(1, cfg.steps // 5)) if cfg.steps else cfg.warmup_steps
        started = last_save = time.perf_counter()
        stopped, elapsed = None, 0.0
        while True:  # the budget; Ctrl-C and SIGTERM stop between steps
            elapsed, stopped = team.agree(time.perf_counter() - started, stops.noted)
            if stopped or elapsed >= budget or (cfg.steps and progress.step >= cfg.steps):
                break
            spent = max(progress.step / cfg.steps if cfg.steps else 0.0, elapsed / budget)
            for group in optimizer.param_groups:  # warm-up, then a cosine decay over the budget
                group["lr"] = cfg.lr * lr_factor(spent, progress.step, cfg.lr_schedule, warmup)
            rewind, updates, measured[:] = generator.get_state(), optimizer_updates(optimizer), []
            try:
                mark_step(status)
                tic = time.perf_counter()
                next(steps)  # one step of Algorithm 1
                if status == "on":  # the first compiled step compiles
                    status = f"on: compiled in {time.perf_counter() - tic:.0f} s"
                    bar.write(f"CUDA graphs {status}.")
            except KeyboardInterrupt as err:  # cut inside the step: undone, or counted as done
                stops.note(getattr(err, "signal_name", "SIGINT"))
                if optimizer_updates(optimizer) == updates or not measured:
                    generator.set_state(rewind)
                    optimizer.zero_grad(set_to_none=True)
                    break
            except (TrainingError, CheckpointError):
                raise
            except Exception as err:  # noqa: BLE001 - the compiled net failed: go on eagerly
                if not status.startswith("on"):
                    raise
                what = "compiling" if progress.step == first else "the compiled net"
                line = (str(err).strip().splitlines() or [""])[0][:200]
                status = f"off: {what} failed ({type(err).__name__}: {line})"
                bar.write(f"CUDA graphs {status}; training goes on without them.")
                generator.set_state(rewind)
                steps = loop(team.wrap(Autocast(model, cfg.precision)))
                continue
            if ema is not None:
                ema_update(ema, model, ema_decay(progress.step, cfg.ema_decay))
            progress.add(*measured)
            bar.update(1)
            rate = (
                (progress.step - first) * cfg.batch_size / max(time.perf_counter() - started, 1e-9)
            )
            bar.set_postfix(loss=f"{sum(progress.losses[-20:]) / len(progress.losses[-20:]):.4f}",
                            img_s=f"{rate:.0f}")  # fmt: skip
            late = time.perf_counter() - last_save > 60 * cfg.checkpoint_minutes
            if path and team.is_main and (progress.step % cfg.checkpoint_every == 0 or late):
                if note := save():
                    bar.write(f"Checkpoint at step {progress.step}{note}")
                last_save = time.perf_counter()
            if callback is not None:
                try:
                    callback(progress.step, progress.losses[-1])
                except KeyboardInterrupt:
                    stops.note("SIGINT")
        bar.close()
        elapsed = time.perf_counter() - started
        stopped = stopped or stops.first  # asked for within the last step
        note = save() if path and team.is_main and progress.step > first else ""
        team.barrier()  # the checkpoint is complete before any process goes on
        if stopped and team.is_main:
            print(stop_report(stopped, progress, first, path, saved) + note)
        elif note:
            print(f"Checkpoint at step {progress.step}{note}")
    if stopped == "SIGTERM":
        raise Interrupted("SIGTERM")
    model.eval()
    return TrainResult(
        model=noise_predictor(ema if ema is not None else model, predicts, schedule),
        raw_model=model, config=cfg, losses=progress.losses, timesteps=progress.record_t,
        sample_losses=progress.record_loss, steps=progress.step, elapsed=elapsed,
        images_per_second=(progress.step - first) * cfg.batch_size / max(elapsed, 1e-9),
        resumed_from=first, interrupted=stopped, checkpoint=saved[-1] if saved else None,
        processes=team.world_size, cuda_graphs=status,
    )  # fmt: skip


def run_record(cfg: TrainConfig, source: TrainingData, processes: int) -> dict:
    """What a checkpoint says about the run, to resume and sample it as what it is: the
    prediction, the data's fingerprint, the resolved settings, and the picture it learned."""
    settings = {k: getattr(cfg, k) for k in ("batch_size", "lr", "precision", "flip", "seed",
                                              "device", "threads", "prediction", "adam_beta2")}  # fmt: skip
    record = {"prediction": cfg.prediction, "data": source.fingerprint, "settings": settings,
              "processes": processes}  # fmt: skip
    return {**record, "picture": source.picture} if source.picture is not None else record


def optimizer_updates(optimizer: torch.optim.Optimizer) -> int:
    """How many updates the optimiser has made: Adam's step count of its first parameter."""
    first = next(iter(optimizer.param_groups[0]["params"]), None)
    state = optimizer.state.get(first, {})
    return int(state["step"]) if "step" in state else 0


def check_same_run(stored: dict, config: TrainConfig, fingerprint: str, path: Path) -> None:
    """Refuse to resume a checkpoint trained on other data, with another seed, or to predict
    something else: the two runs would mix without a word."""
    if stored.get("data") not in (None, fingerprint):
        raise CheckpointError(
            f"{path} was trained on other pictures than these: resuming would mix the two. "
            "Train into another checkpoint path to start afresh."
        )
    seed = (stored.get("settings") or {}).get("seed")
    if seed is not None and seed != config.seed:
        raise CheckpointError(
            f"{path} was trained with seed {seed}, not {config.seed}: a resume continues its "
            f"random draws. Use seed={seed} to continue, or another checkpoint path."
        )
    was = stored_prediction(stored)
    if was != config.prediction:
        raise CheckpointError(
            f"{path} holds a net trained to predict {was!r}, not {config.prediction!r}: "
            f"resuming would relabel it. Use prediction={was!r} to continue, or another "
            "checkpoint path."
        )


def stop_report(
    signal_name: str, progress: Progress, first: int, path: Optional[Path], saved: list
) -> str:
    """One true line on what an interrupted run kept, and where."""
    if path is None:
        kept = "kept in memory (no checkpoint path was given)"
    elif progress.step == first:
        kept = f"unchanged in {path}" if path.exists() else "not saved (no step done)"
    else:
        kept = f"saved in {saved[-1]}"
    return f"Stopped by {signal_name} at step {progress.step}; the model so far is {kept}."

"""Training eps_theta by DDPM's Algorithm 1, with the defaults a Colab learner needs.

Algorithm 1 (Ho et al. 2020), repeated until the budget is spent:
    x_0 ~ data;  t ~ Uniform{0..T-1};  eps ~ N(0, I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                      (eq. 4, ``add_noise``)
    gradient step on || eps - eps_theta(x_t, t) ||^2                   (eq. 14, the simple loss)

Around it, each extra with its reason: AdamW with a linear warm-up (large early steps of a
fresh net overshoot) and a cosine decay (small final steps settle the weights), gradient
clipping (one bad batch cannot wreck the net), an exponential moving average (EMA) of the
weights (smoother samples than the last step's weights), mixed precision where it measured
faster, a wall-clock or step budget, and a clear error on a non-finite loss. A
class-conditional net (``num_classes``) also sees its labels, replaced by the "no class" label
for a fraction ``cond_drop`` of images (classifier-free guidance, Ho & Salimans 2022). How the
run runs (device, processes, checkpoints that resume exactly, threads, CUDA graphs, Ctrl-C) is
:class:`.runtime.training_run.TrainingRun`'s job.

Defaults (``None`` in :class:`TrainConfig`) were measured on one 32 px picture with the tiny
preset (PSNR of DDPM samples): the budget is :func:`default_budget`; batch size and rate are
:func:`default_batch_size` and :func:`default_lr`; a 50-step warm-up (a fifth of a short run)
beat 20 steps, and a cosine decay to 5% beat a constant rate by 13 dB at 560 steps; the EMA
decay min(0.9999, (1 + k) / (10 + k)) averages the last ~1/9 of the steps so far, which suits a
4-minute run and a day-long one alike. Images are drawn uniformly with replacement, so one call
trains one picture or thousands; only the budget grows with the data.

Random draws: every draw of training comes from one CPU generator seeded with ``seed``, in
this order per step: the image indices, the flips (if any), t, eps, the dropped labels (if
conditional). The initial weights are the model's: build it with ``UNet.preset(..., seed=)``
for a run that is reproducible end to end.

Several processes (``torchrun --nproc_per_node=N``): the same function; each process draws
the whole batch and trains on its rows, DDP averages the gradients (:mod:`.runtime.distributed`).
"""

from __future__ import annotations

import copy
import math
from contextlib import nullcontext
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Callable, Literal, Optional, Union, get_args

import torch

from .checks.values import choice, number, seed, whole_number
from .flow import to_flow, velocity
from .forward import add_noise
from .pictures.training_data import as_training_data
from .runtime.device import Precision, make_grad_scaler
from .runtime.environment import quick_mode
from .runtime.graphs import MODES as GRAPH_MODES
from .runtime.graphs import CudaGraphs
from .runtime.interrupts import Interrupted
from .runtime.memory import check_training_memory
from .runtime.training_run import Step, TrainingError, TrainingRun, TrainingState
from .schedule import NoiseSchedule
from .unet import UNet

DEFAULT_MINUTES = 4.0  # < 5 min; one 32 px image passed 25 dB at 280 steps of batch 16
QUICK_STEPS = 20  # quick mode (tests, CI): enough to run every line, not to learn
WARMUP_STEPS = 50  # linear lr warm-up (at most a fifth of a run given in steps); beat 20 steps
GRAD_CLIP = 1.0  # DDPM clipped the gradient norm at 1
COND_DROP = 0.1  # Ho & Salimans (2022) found p_uncond 0.1-0.2 best; 0.1 keeps the class strong
FINAL_LR_FRACTION = 0.05  # the cosine decay ends at 5% of the peak rate
LrSchedule = Literal["cosine", "constant"]
Prediction = Literal["eps", "x0", "velocity"]


@dataclass
class TrainConfig:
    """The knobs of :func:`train` (``None``: chosen for the model, data and machine; the
    :class:`TrainResult` holds the config as it ran, every choice resolved).

    Attributes:
        steps, minutes: stop after this many steps in total (resumed ones included) or this
            many minutes of this call, whichever comes first; neither: :func:`default_budget`.
        batch_size, lr: see :func:`default_batch_size` and :func:`default_lr`;
            under torchrun the batch is global (split over the processes) and lr unchanged.
        warmup_steps: steps of the linear learning-rate warm-up (1 = none).
        lr_schedule: ``"cosine"`` (decay to 5% over the budget) or ``"constant"``.
        grad_clip: the gradient-norm cap, or None for no clipping.
        ema_decay: the cap of the EMA decay; 0 keeps no EMA.
        flip: mirror each drawn image left-right with probability 1/2; None: as the data says
            (photos yes; one picture, tensors and datasets such as the digits no).
        cond_drop: for a conditional net, the fraction of labels replaced by "no class".
        prediction: what the net learns to output: ``"eps"`` (the noise, DDPM's choice),
            ``"x0"`` (the clean picture; sample through :class:`.reverse.NoiseFromX0`) or
            ``"velocity"`` (flow matching: the net sees x_t as the point x_s of the straight
            path and learns eps - x_0; sample through :class:`.flow.NoiseFromVelocity`; with
            ``NoiseSchedule(kind="flow")`` this is rectified flow, :mod:`.flow`).
        precision: ``"auto"`` (:func:`.runtime.device.pick_precision`), ``"fp32"``, ``"bf16"``,
            ``"fp16"``.
        cuda_graphs: on a GPU, run the net through CUDA graphs when the run is long enough to
            pay back compiling (``"auto"``), always (``"on"``) or never; see :mod:`.runtime.graphs`.
        device: where to train (None: the fastest available). threads: CPU threads.
        seed: seeds every random draw of training (None: a fresh random seed, reported).
        checkpoint: a file; if it exists the run resumes from it exactly (same data and seed).
            It is written every ``checkpoint_every`` steps, every ``checkpoint_minutes``, at the
            end, and on Ctrl-C or SIGTERM.
        progress: show a tqdm bar with the loss and images per second.
    """

    steps: Optional[int] = None
    minutes: Optional[float] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    warmup_steps: int = WARMUP_STEPS
    lr_schedule: LrSchedule = "cosine"
    grad_clip: Optional[float] = GRAD_CLIP
    ema_decay: float = 0.9999
    flip: Optional[bool] = None
    cond_drop: float = COND_DROP
    prediction: Prediction = "eps"
    precision: Precision = "auto"
    cuda_graphs: CudaGraphs = "auto"
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
        choice(self.prediction, "prediction", get_args(Prediction))
        choice(self.cuda_graphs, "cuda_graphs", GRAPH_MODES)
        if not 0.0 <= number(self.ema_decay, "ema_decay") < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if not 0.0 <= number(self.cond_drop, "cond_drop") < 1.0:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}.")
        if self.seed is not None:
            seed(self.seed)


def default_budget() -> tuple[Optional[int], Optional[float]]:
    """``(steps, minutes)`` when none is given: QUICK_STEPS in quick mode, else DEFAULT_MINUTES."""
    return (QUICK_STEPS, None) if quick_mode() else (None, DEFAULT_MINUTES)


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


def default_batch_size(image_size: int, device: torch.device) -> int:
    """16 images of 32 px on a CPU (128 on a GPU), scaled by (32 / side)^2, at least 4; the side
    is the one the U-Net works at (after a patch stem).

    What counts on a CPU is the number of steps: at 4,500 images (3 minutes on a busy 2-core
    CPU) batch 16 reached 32 dB on one picture, batch 32 27 dB, batch 64 11 dB."""
    per_32px = 128 if device.type == "cuda" else 16
    return max(4, int(per_32px * (32 / image_size) ** 2))


def default_lr(model: torch.nn.Module, batch_size: int) -> float:
    """2e-3 under 5 M parameters, else DDPM's 2e-4; times sqrt(min(batch_size, 64) / 64).
    3e-3 and 4e-3 diverged at batch 16-32 on the tiny net; 1e-3 and 2e-3 were within 1 dB."""
    base = 2e-3 if model.num_parameters() < 5_000_000 else 2e-4
    return base * math.sqrt(min(batch_size, 64) / 64)


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the weights to sample with (the EMA copy, or the raw model if ``ema_decay=0``).
        raw_model: the weights the optimiser moved.
        config: the :class:`TrainConfig` as it ran: batch size, learning rate, precision,
            flips, seed, device and threads resolved.
        losses: the mean loss of every step since the run began (resumed steps included).
        timesteps, sample_losses: t and per-image loss for every image of the last
            ``RECORD_STEPS`` steps (1-D tensors of equal length), for a loss-vs-t plot.
        steps: steps done in total; elapsed: seconds of this call; images_per_second: in this call.
        resumed_from: the step this call started at (0 unless it resumed a checkpoint).
        interrupted: ``"SIGINT"`` when Ctrl-C stopped the run early, else None.
        checkpoint: where the checkpoint was last written (None if nowhere, or not process 0).
        processes: how many processes trained (torchrun's, or 1).
        cuda_graphs: whether CUDA graphs ran, and why (``"off: ..."``, ``"on: compiled in ..."``);
            compile_seconds: how long compiling took (None when nothing was compiled).
    """

    model: UNet
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
    cuda_graphs: str = "off"
    compile_seconds: Optional[float] = None


def lr_factor(progress: float, step: int, lr_schedule: LrSchedule, warmup_steps: int) -> float:
    """Multiplier of the peak lr: linear warm-up over ``warmup_steps``, then constant or a cosine
    decay from 1 to FINAL_LR_FRACTION as ``progress`` (fraction of the budget spent) goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_steps)
    if lr_schedule == "constant":
        return warm
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cos)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights; buffers are copied, not averaged."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def training_loss(
    model: Callable[..., torch.Tensor],
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    precision: Precision,
    labels: Optional[torch.Tensor] = None,
    cond_drop: float = 0.0,
    part: tuple[int, int] = (0, 1),
    prediction: Prediction = "eps",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1, lines 3-5 for one batch. Returns (mean loss, t [B], per-image loss [B]).

    ``prediction="x0"`` compares the net's output with x_0 instead of eps: the same x_t, the
    loss ||x_0 - x0_theta||^2 (eps-loss = abar / (1 - abar) x0-loss: a different weighting of t).
    ``prediction="velocity"`` is flow matching (:mod:`.flow`): the net sees x_s = x_t / (sqrt(abar)
    + sqrt(1 - abar)), the same point on the straight path, and learns v = eps - x_0 (FM-2).

    ``part = (rank, world)``: ``x0`` [B, ...] holds rows rank::world of a batch of world * B;
    t, eps and the dropped labels are drawn for that whole batch and this process keeps its
    rows, so ``world`` processes together use exactly the draws of one.
    """
    rank, world = part
    B, mine = x0.shape[0] * world, slice(rank, None, world)
    t = torch.randint(0, schedule.num_steps, (B,), generator=generator)[mine]  # t ~ U{0..T-1}
    shape, device = (B, *x0.shape[1:]), generator.device  # eps ~ N(0, I), on the generator's
    eps = torch.randn(shape, generator=generator, device=device, dtype=x0.dtype)[mine]
    x_t, eps = add_noise(x0, t.to(x0.device), schedule, noise=eps.to(x0.device))  # eq. 4
    if prediction == "velocity":
        x_t = to_flow(x_t, t.to(x0.device), schedule)  # the point of the straight path (FM-1)
    args = (x_t, t.to(x0.device))
    if labels is not None:  # classifier-free guidance: some images learn "no class"
        drop = (torch.rand(B, generator=generator)[mine] < cond_drop).to(labels.device)
        args += (torch.where(drop, model.config.num_classes, labels),)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(x0.device.type, dtype=dtype) if dtype is not None else nullcontext()
    with autocast:
        predicted = model(*args)
    target = {"eps": eps, "x0": x0.float(), "velocity": velocity(x0.float(), eps)}[prediction]
    per_image = (predicted.float() - target).pow(2).mean(dim=(1, 2, 3))  # ||eps - eps_theta||^2
    return per_image.mean(), t, per_image.detach()


def optimizer_step(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: Optional[object],
    grad_clip: Optional[float],
) -> None:
    """Backpropagate ``loss``, clip the gradient norm, and step (through the fp16 scaler). The
    gradients are dropped before and after: under CUDA graphs their memory is reused by the
    next step's graph, and a step retried after a failed compile must start from zero."""
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if grad_clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def diverged(value: float, step: int, path: Optional[Path], lr: float) -> TrainingError:
    """The error for a non-finite loss: where it happened, what is kept, what to try."""
    where = f"the checkpoint {path} (step {step}) is intact. " if path else ""
    return TrainingError(
        f"the loss became {value} at step {step + 1}: training diverged. {where}"
        f"Try a lower learning rate (lr={lr:.2g} now, e.g. lr={lr / 4:.2g})."
    )


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
    """Train ``model`` to predict the noise (DDPM Algorithm 1) and return a :class:`TrainResult`.

    Args:
        data: a tensor [N, C, H, W] in [-1, 1] (N = 1 for one picture), an ``ImageDataset``,
            a torch Dataset or DataLoader, or a path to a picture or a folder (see
            :func:`.pictures.training_data.as_training_data`).
        config, overrides: a :class:`TrainConfig`, and/or its fields as keywords
            (``train(model, x0, schedule, minutes=2, seed=0)``).
        labels: class labels [N] for a conditional model, when ``data`` carries none.
        callback: called as ``callback(step, loss)`` after every step (on every process).
    Ctrl-C stops at the end of the step it lands in, saves, and returns what was learned
    (``result.interrupted == "SIGINT"``; a second Ctrl-C stops at once, the cut step undone or
    completed); SIGTERM does the same, then raises :class:`.runtime.interrupts.Interrupted`.
    Under torchrun every process runs this; they stop together.
    Raises:
        TrainingError: on a non-finite loss (names the step; the checkpoint is left intact).
        ValueError: on bad settings or data, before any work is done.
    """
    cfg = make_config(config, overrides)
    with TrainingRun(cfg) as run:  # device, precision, processes, the checkpoint locked, threads
        source = as_training_data(data, model.config, run.device, labels)
        inner = getattr(model.config, "inner_size", model.config.image_size)  # after a patch stem
        batch = run.team.batch_size(cfg.batch_size, default_batch_size(inner, run.device))
        cfg = replace(cfg, batch_size=batch, lr=cfg.lr or default_lr(model, batch),
                      precision=run.precision, flip=source.flip if cfg.flip is None else cfg.flip,
                      seed=run.seed(cfg.seed), device=str(run.device),
                      threads=torch.get_num_threads())  # fmt: skip
        model.to(run.device).train()
        check_training_memory(model, batch // run.team.world_size, run.device)  # before any work
        ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        # DDPM trained without weight decay; AdamW with 0 is Adam, named so the choice is visible.
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.0)
        scaler = make_grad_scaler() if cfg.precision == "fp16" else None
        generator = torch.Generator().manual_seed(cfg.seed)  # every draw of training, on the CPU
        torch.manual_seed(cfg.seed)  # dropout draws from torch's global generator
        state = TrainingState(model, ema, optimizer, scaler, generator, schedule)
        progress = run.start(state, cfg, source.fingerprint, source.picture)  # resumes if it can
        # a run of few steps warms up over its first fifth rather than spending itself on warm-up
        warmup = min(cfg.warmup_steps, max(1, cfg.steps // 5)) if cfg.steps else cfg.warmup_steps

        def one_step(
            net: Callable, x0: torch.Tensor, y: Optional[torch.Tensor], step: Step
        ) -> None:
            """Algorithm 1, lines 3-6 with ``net`` (eager or graphed): the loss, then its step."""
            loss, t, per_image = training_loss(net, x0, schedule, generator, cfg.precision, y,
                                               cfg.cond_drop, run.team.part, cfg.prediction)  # fmt: skip
            t, per_image = run.team.gather(t, per_image)  # the whole batch's, on every process
            value = float(per_image.mean())
            if not math.isfinite(value):
                raise diverged(value, progress.step, run.path, cfg.lr)
            step.measured = (t, per_image, value)  # before the weights move: see whole_step
            optimizer_step(loss, model, optimizer, scaler, cfg.grad_clip)  # DDP: mean gradient

        while run.keep_going(progress):  # the budget; Ctrl-C and SIGTERM stop between steps
            i = progress.step
            for group in optimizer.param_groups:  # warm-up, then a cosine decay over the budget
                group["lr"] = cfg.lr * lr_factor(run.spent(i), i, cfg.lr_schedule, warmup)
            with run.whole_step() as step:  # cut by an exception: undone, or completed below
                run.team.seed_dropout(cfg.seed, i)
                idx = torch.randint(0, source.size, (cfg.batch_size,), generator=generator)
                x0, y = source.batch(run.team.rows(idx))  # line 2: x_0 ~ q(x_0), this process's
                if cfg.flip:  # a photo mirrored is as good a photo
                    mirror = run.team.rows(torch.rand(cfg.batch_size, generator=generator) < 0.5)
                    x0 = torch.where(mirror.to(x0.device)[:, None, None, None], x0.flip(-1), x0)
                run.graphs.run(run.left(i), one_step, x0, y, step)  # CUDA graphs on a GPU
            if step.undone:
                continue
            if ema is not None:
                ema_update(ema, model, min(cfg.ema_decay, (1 + i) / (10 + i)))
            progress.add(*step.measured)
            run.after_step(progress, callback)  # the progress bar, a checkpoint every minute
        stopped = run.finish(progress)
    if stopped == "SIGTERM":
        raise Interrupted("SIGTERM")
    model.eval()
    return TrainResult(
        model=ema if ema is not None else model,
        raw_model=model,
        config=cfg,
        losses=progress.losses,
        timesteps=progress.record_t,
        sample_losses=progress.record_loss,
        steps=progress.step,
        elapsed=run.elapsed,
        images_per_second=(progress.step - run.first_step)
        * cfg.batch_size
        / max(run.elapsed, 1e-9),
        resumed_from=run.first_step,
        interrupted=stopped,
        checkpoint=run.saver.saved,
        processes=run.team.world_size,
        cuda_graphs=run.graphs.status,
        compile_seconds=run.graphs.compile_seconds,
    )

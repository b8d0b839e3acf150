"""Training eps_theta by DDPM's Algorithm 1, with the defaults a Colab learner needs.

Algorithm 1 (Ho et al. 2020), repeated until the budget is spent:
    x_0 ~ data;  t ~ Uniform{0..T-1};  eps ~ N(0, I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                      (eq. 4, ``add_noise``)
    gradient step on || eps - eps_theta(x_t, t) ||^2                   (eq. 14, the simple loss)

Around it, each extra with its reason: AdamW with a linear warm-up (large early steps of a
fresh net overshoot) and a cosine decay (small final steps settle the weights), gradient
clipping (one bad batch cannot wreck the net), an exponential moving average (EMA) of the
weights (smoother samples than the last step's weights), mixed precision where it measured
faster, a wall-clock or step budget, checkpoints that resume exactly, and a clear error on a
non-finite loss. A class-conditional net (``num_classes``) also sees its labels, replaced by
the "no class" label for a fraction ``cond_drop`` of images (classifier-free guidance, Ho &
Salimans 2022).

Defaults (``None`` in :class:`TrainConfig`) were measured on one 32 px picture with the tiny
preset (PSNR of DDPM samples): the budget is :func:`default_budget`; batch size and rate are
:func:`default_batch_size` and :func:`default_lr`; a 50-step warm-up (a fifth of a
short run) beat 20 steps, and a cosine decay to 5% beat a constant rate by 13 dB at 560 steps;
the EMA decay min(0.9999, (1 + k) / (10 + k)) averages the last ~1/9 of the steps so far, which
suits a 4-minute run and a day-long one alike. Images are drawn uniformly with replacement, so
one call trains one picture or thousands; only the budget grows with the data.

Random draws: every draw of training comes from one CPU generator seeded with ``seed``, in
this order per step: the image indices, the flips (if any), t, eps, the dropped labels (if
conditional). The initial weights are the model's: build it with ``UNet.preset(..., seed=)``
for a run that is reproducible end to end.

Several processes (``torchrun --nproc_per_node=N``): the same function; each process draws
the whole batch and trains on its rows, DDP averages the gradients. See :mod:`.runtime.distributed`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from contextlib import ExitStack, nullcontext
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Literal, Optional, Union

import torch

from .forward import add_noise
from .pictures.training_data import as_training_data
from .runtime.device import make_grad_scaler, pick_device, pick_precision
from .runtime.distributed import join
from .runtime.environment import quick_mode
from .runtime.graphs import MODES, CudaGraphs, TrainGraphs, check_request
from .runtime.interrupts import Interrupted
from .runtime.threads import ThreadGuard
from .schedule import NoiseSchedule
from .storage.checkpoint import (
    Checkpointer,
    Progress,
    resume_training,
    stop_report,
    training_state,
)
from .storage.outputs import claim_checkpoint
from .unet import UNet

DEFAULT_MINUTES = 4.0  # < 5 min; one 32 px image passed 25 dB at 280 steps of batch 16


QUICK_STEPS = 20  # quick mode (tests, CI): enough to run every line, not to learn


WARMUP_STEPS = 50  # linear lr warm-up (at most a fifth of a run given in steps); beat 20 steps


GRAD_CLIP = 1.0  # DDPM clipped the gradient norm at 1


COND_DROP = 0.1  # Ho & Salimans (2022) found p_uncond 0.1-0.2 best; 0.1 keeps the class strong


@dataclass
class TrainConfig:
    """The knobs of :func:`.train.train` (``None``: chosen for the model, data and machine).

    Attributes:
        steps, minutes: stop after this many steps in total (resumed ones included) or this
            many minutes of this call, whichever comes first; neither: :func:`default_budget`.
        batch_size, lr: see :func:`default_batch_size` and :func:`default_lr`;
            under torchrun the batch is global (split over the processes) and lr unchanged.
        warmup_steps: steps of the linear learning-rate warm-up (1 = none).
        lr_schedule: ``"cosine"`` (decay to 5% over the budget) or ``"constant"``.
        grad_clip: the gradient-norm cap, or None for no clipping.
        ema_decay: the cap of the EMA decay; 0 keeps no EMA.
        flip: mirror each drawn image left-right with probability 1/2; None: on for folders
            of photos, off for one picture, tensors and datasets such as digits.
        cond_drop: for a conditional net, the fraction of labels replaced by "no class".
        prediction: what the net learns to output: ``"eps"`` (the noise, DDPM's choice) or
            ``"x0"`` (the clean picture; sample through :class:`.reverse.NoiseFromX0`).
        precision: ``"auto"`` (:func:`.runtime.device.pick_precision`), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        cuda_graphs: on a GPU, run the net through CUDA graphs when the run is long enough to
            pay back compiling (``"auto"``), always (``"on"``) or never; see :mod:`.runtime.graphs`.
        device: where to train (None: the fastest available). threads: CPU threads.
        seed: seeds every random draw of training (None: a fresh random seed, reported).
        checkpoint: a file; if it exists the run resumes from it exactly. It is written every
            ``checkpoint_every`` steps, every ``checkpoint_minutes``, at the end, and on
            Ctrl-C or SIGTERM.
        progress: show a tqdm bar with the loss and images per second.
    """

    steps: Optional[int] = None
    minutes: Optional[float] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    warmup_steps: int = WARMUP_STEPS
    lr_schedule: Literal["cosine", "constant"] = "cosine"
    grad_clip: Optional[float] = GRAD_CLIP
    ema_decay: float = 0.9999
    flip: Optional[bool] = None
    cond_drop: float = COND_DROP
    prediction: Literal["eps", "x0"] = "eps"
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
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
        for name in ("steps", "batch_size", "checkpoint_every", "warmup_steps", "threads"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise ValueError(f"{name} must be a positive integer, got {value!r}.")
        for name in ("minutes", "lr", "grad_clip", "checkpoint_minutes"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        for name, choices in (("lr_schedule", ("cosine", "constant")), ("prediction", ("eps", "x0")),
                              ("cuda_graphs", MODES)):  # fmt: skip
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {choices}, got {getattr(self, name)!r}.")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}.")
        if not 0.0 <= self.cond_drop < 1.0:
            raise ValueError(f"cond_drop must be in [0, 1), got {self.cond_drop}.")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            raise ValueError(f"seed must be an integer, got {self.seed!r}.")


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
    """16 images of 32 px on a CPU (128 on a GPU), scaled by (32 / side)^2, at least 4.

    What counts on a CPU is the number of steps: at 4,500 images (3 minutes on a busy 2-core
    CPU) batch 16 reached 32 dB on one picture, batch 32 27 dB, batch 64 11 dB."""
    per_32px = 128 if device.type == "cuda" else 16
    return max(4, int(per_32px * (32 / image_size) ** 2))


def default_lr(model: UNet, batch_size: int) -> float:
    """2e-3 under 5 M parameters, else DDPM's 2e-4; times sqrt(min(batch_size, 64) / 64).
    3e-3 and 4e-3 diverged at batch 16-32 on the tiny net; 1e-3 and 2e-3 were within 1 dB."""
    base = 2e-3 if model.num_parameters() < 5_000_000 else 2e-4
    return base * math.sqrt(min(batch_size, 64) / 64)


FINAL_LR_FRACTION = 0.05  # the cosine decay ends at 5% of the peak rate


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss); the last checkpoint on disk is intact."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the weights to sample with (the EMA copy, or the raw model if ``ema_decay=0``).
        raw_model: the weights the optimiser moved.
        losses: the mean loss of every step since the run began (resumed steps included).
        timesteps, sample_losses: t and per-image loss for every image of the last
            ``RECORD_STEPS`` steps (1-D tensors of equal length), for a loss-vs-t plot.
        steps: steps done in total; elapsed: seconds of this call; images_per_second: in this call.
        settings: the batch size, learning rate, precision, ... actually used.
        resumed_from: the step this call started at (0 unless it resumed a checkpoint).
        interrupted: ``"SIGINT"`` when Ctrl-C stopped the run early, else None.
        checkpoint: where the checkpoint was last written (None if nowhere, or not process 0).
    """

    model: UNet
    raw_model: UNet
    losses: list[float]
    timesteps: torch.Tensor
    sample_losses: torch.Tensor
    steps: int
    elapsed: float
    images_per_second: float
    settings: dict = field(default_factory=dict)
    resumed_from: int = 0
    interrupted: Optional[str] = None
    checkpoint: Optional[Path] = None


def lr_factor(progress: float, step: int, lr_schedule: str, warmup_steps: int) -> float:
    """Multiplier of the peak lr: linear warm-up over ``warmup_steps``, then constant or a cosine
    decay from 1 to FINAL_LR_FRACTION as ``progress`` (fraction of the budget spent) goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_steps)
    if lr_schedule == "constant":
        return warm
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cos)


def ema_update(ema: UNet, model: UNet, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights; buffers are copied, not averaged."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def training_loss(
    model: UNet,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    precision: str,
    labels: Optional[torch.Tensor] = None,
    cond_drop: float = 0.0,
    part: tuple[int, int] = (0, 1),
    prediction: str = "eps",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1, lines 2-5 for one batch. Returns (mean loss, t [B], per-image loss [B]).

    ``prediction="x0"`` compares the net's output with x_0 instead of eps: the same x_t, the
    loss ||x_0 - x0_theta||^2 (eps-loss = abar / (1 - abar) x0-loss: a different weighting of t).

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
    args = (x_t, t.to(x0.device))
    if labels is not None:  # classifier-free guidance: some images learn "no class"
        drop = (torch.rand(B, generator=generator)[mine] < cond_drop).to(labels.device)
        args += (torch.where(drop, model.config.num_classes, labels),)
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(x0.device.type, dtype=dtype) if dtype is not None else nullcontext()
    with autocast:
        predicted = model(*args)
    target = eps if prediction == "eps" else x0.float()
    per_image = (predicted.float() - target).pow(2).mean(dim=(1, 2, 3))  # ||eps - eps_theta||^2
    return per_image.mean(), t, per_image.detach()


def optimizer_step(
    loss: torch.Tensor,
    model: UNet,
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
            a torch Dataset or DataLoader, or a path to a picture or a folder (:mod:`.data`).
        config, overrides: a :class:`TrainConfig`, and/or its fields as keywords
            (``train(model, x0, schedule, minutes=2, seed=0)``).
        labels: class labels [N] for a conditional model, when ``data`` carries none.
        callback: called as ``callback(step, loss)`` after every step (on every process).
    Ctrl-C stops early and returns what was learned (``result.interrupted == "SIGINT"``);
    SIGTERM saves the checkpoint, then raises :class:`.runtime.interrupts.Interrupted`. Under torchrun
    every process runs this; they stop together (see :mod:`.runtime.distributed`).
    Raises:
        TrainingError: on a non-finite loss (names the step; the checkpoint is left intact).
        ValueError: on bad settings or data, before any work is done.
    """
    cfg = make_config(config, overrides)
    with ExitStack() as stack:
        team = stack.enter_context(join(pick_device(cfg.device)))  # one process, or torchrun's
        dev = team.device
        check_request(cfg.cuda_graphs, dev, team.world_size)  # "on" where it cannot be: say so now
        precision = pick_precision(cfg.precision, dev)
        path, resume = None, False
        if cfg.checkpoint is not None:  # process 0 checks and locks it; its verdict holds for all
            path, resume = team.on_main(lambda: claim_checkpoint(cfg.checkpoint, stack))
        threads = stack.enter_context(ThreadGuard(cfg.threads, dev))
        source = as_training_data(data, model.config, dev, labels)
        default = default_batch_size(model.config.image_size, dev)
        batch_size = team.batch_size(cfg.batch_size, default)  # global: split over processes
        lr = cfg.lr or default_lr(model, batch_size)
        flip = source.flip if cfg.flip is None else cfg.flip
        seed = cfg.seed if cfg.seed is not None else random.SystemRandom().randrange(2**31)
        seed = team.on_main(lambda: seed)  # a fresh random seed is process 0's
        settings = dict(batch_size=batch_size, lr=lr, precision=precision, flip=flip, seed=seed)
        settings.update(device=str(dev), threads=torch.get_num_threads(),
                        ema_decay=cfg.ema_decay, lr_schedule=cfg.lr_schedule,
                        processes=team.world_size)  # fmt: skip

        model.to(dev).train()
        net = team.wrap(model)  # DDP on several processes: copies process 0's weights to all
        ema = copy.deepcopy(model).eval().requires_grad_(False) if cfg.ema_decay > 0 else None
        # DDPM trained without weight decay; AdamW with 0 is Adam, named so the choice is visible.
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        scaler = make_grad_scaler() if precision == "fp16" else None
        generator = torch.Generator().manual_seed(seed)  # every draw of training (CPU)
        torch.manual_seed(seed)  # dropout uses the global generator
        progress = Progress()
        if resume:  # every process reads the checkpoint
            resumed = resume_training(path, model, ema, optimizer, scaler, schedule, generator, dev)
            progress = Progress(**resumed)
        saver = Checkpointer(
            path if team.is_main else None,  # only process 0 writes
            cfg.checkpoint_every,
            cfg.checkpoint_minutes,
            lambda: training_state(
                model, ema, optimizer, scaler, schedule, generator, asdict(progress), settings
            ),
        )

        from tqdm.auto import tqdm

        steps, budget_s = cfg.steps, (cfg.minutes * 60 if cfg.minutes else math.inf)
        first_step, interrupted = progress.step, None
        show = cfg.progress and team.is_main  # one bar, on process 0
        bar = tqdm(total=steps, initial=first_step, disable=not show, desc="training", unit="step")
        graphs = TrainGraphs(net, cfg.cuda_graphs, dev, team.world_size, bar.write,
                             passthrough=(TrainingError,), rng=generator)  # fmt: skip

        def one_step(
            net: Callable, x0: torch.Tensor, y: Optional[torch.Tensor], step: int
        ) -> tuple:
            """Algorithm 1, lines 2-5, with ``net`` (eager or graphed): t, per-image loss, mean."""
            loss, t, per_image = training_loss(
                net, x0, schedule, generator, precision, y, cfg.cond_drop, team.part,
                cfg.prediction,
            )  # fmt: skip
            t, per_image = team.gather(t, per_image)  # the whole batch's, on every process
            value = float(per_image.mean())
            if not math.isfinite(value):
                raise diverged(value, step, path, lr)
            optimizer_step(loss, model, optimizer, scaler, cfg.grad_clip)  # DDP: mean gradient
            return t, per_image, value

        start = time.perf_counter()
        # a run of few steps warms up over its first fifth rather than spending itself on warm-up
        warmup = min(cfg.warmup_steps, max(1, steps // 5)) if steps else cfg.warmup_steps
        stack.enter_context(team.stop_signals())
        try:
            while steps is None or progress.step < steps:
                step = progress.step
                threads.update()  # other programs come and go: leave their cores to them
                # process 0's clock and any process's Ctrl-C, the same on every process
                elapsed, interrupted = team.agree(time.perf_counter() - start)
                if interrupted or elapsed >= budget_s:
                    break
                spent = max(step / steps if steps else 0.0, elapsed / budget_s)
                for group in optimizer.param_groups:
                    group["lr"] = lr * lr_factor(spent, step, cfg.lr_schedule, warmup)
                team.seed_dropout(seed, step)
                idx = torch.randint(0, source.size, (batch_size,), generator=generator)
                x0, y = source.batch(team.rows(idx))  # x_0 ~ q(x_0): this process's rows
                if flip:
                    mirror = team.rows(torch.rand(batch_size, generator=generator) < 0.5)
                    x0 = torch.where(mirror.to(dev)[:, None, None, None], x0.flip(-1), x0)
                left = (steps - step if steps else None, budget_s - elapsed)
                t, per_image, value = graphs.run(left, one_step, x0, y, step)
                if ema is not None:
                    ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
                progress.add(value, t, per_image)
                bar.update(1)
                rate = (step + 1 - first_step) * batch_size / max(time.perf_counter() - start, 1e-9)
                recent = progress.losses[-20:]
                bar.set_postfix(loss=f"{sum(recent) / len(recent):.4f}", img_s=f"{rate:.0f}")
                if saver.due(progress.step) and (note := saver.save()):
                    bar.write(f"Checkpoint at step {progress.step}{note}")
                if callback is not None:
                    callback(progress.step, value)
        except KeyboardInterrupt as err:  # Ctrl-C or SIGTERM: keep what was learned
            interrupted = err.signal_name if isinstance(err, Interrupted) else "SIGINT"
        bar.close()
        elapsed = time.perf_counter() - start
        settings.update(cuda_graphs=graphs.status, compile_seconds=graphs.compile_seconds)
        note = saver.save() if saver.path is not None and progress.step > first_step else ""
        team.barrier()  # the checkpoint is complete before any process goes on
        if interrupted:
            team.print(stop_report(interrupted, progress, first_step, saver) + note)
        elif note:
            team.print(f"Checkpoint at step {progress.step}{note}")
        if interrupted == "SIGTERM":
            raise Interrupted("SIGTERM")
        model.eval()
        return TrainResult(
            model=ema if ema is not None else model,
            raw_model=model,
            losses=progress.losses,
            timesteps=progress.record_t,
            sample_losses=progress.record_loss,
            steps=progress.step,
            elapsed=elapsed,
            images_per_second=(progress.step - first_step) * batch_size / max(elapsed, 1e-9),
            settings=settings,
            resumed_from=first_step,
            interrupted=interrupted,
            checkpoint=saver.saved,
        )

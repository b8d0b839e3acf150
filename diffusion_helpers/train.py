"""Training eps_theta by DDPM's Algorithm 1, with the defaults a Colab learner needs.

Algorithm 1 (Ho et al. 2020), repeated until the budget is spent:
    x_0 ~ data;  t ~ Uniform{0..T-1};  eps ~ N(0, I)
    x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps                      (eq. 4, ``add_noise``)
    gradient step on || eps - eps_theta(x_t, t) ||^2                   (eq. 14, the simple loss)

Around it: AdamW with a linear warm-up and a cosine decay, gradient clipping, an exponential
moving average (EMA) of the weights, mixed precision where it measured faster, a wall-clock or
step budget, atomic checkpoints that resume exactly, and a clear error on a non-finite loss.

Default settings (``None`` arguments), chosen by measurement (single 32 px image, tiny preset,
PSNR of 1000-step DDPM samples; sweeps on a GPU at the step counts a 2-core CPU reaches):
    budget:     4 minutes when neither ``steps`` nor ``minutes`` is given (20 steps in quick mode).
    batch_size: 16 images of 32 px on a CPU (128 on a GPU), scaled by (32 / side)^2, at least 4.
                What counts on a CPU is the number of steps: at 4,500 images (3 minutes on a
                busy 2-core CPU) batch 16 reached 32 dB, batch 32 27 dB, batch 64 11 dB; a CPU
                processes batch 16 only ~15% slower per image than batch 64. One image is
                repeated with different t and noise, which lowers the gradient noise cheaply.
    lr:         2e-3 for nets under 5 M parameters (the ``tiny`` preset), 2e-4 above (DDPM's
                rate for its 35 M net), times sqrt(min(batch_size, 64) / 64): 1e-3 at batch 16.
                3e-3 and 4e-3 diverged to noise at batch 16-32; 1e-3 and 2e-3 were within 1 dB.
    warm-up:    50 steps, or a fifth of a short run in steps (50 beat 20 steps at batch 16 and 32); then a cosine decay to 5% over the
                budget (a constant rate ended 13 dB lower at 560 steps).
    ema_decay:  0.9999 cap with the warm-up decay_k = min(cap, (1 + k) / (10 + k)): the EMA
                averages over about the last 1/9 of the steps so far, so it suits a 4-minute
                run and a day-long run alike.
The same call trains a dataset of a few thousand images: images are drawn uniformly with
replacement, so only the budget needs to grow with the data.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Union

import torch
from torch.utils.data import DataLoader, Dataset

from .checkpoint import CheckpointError, check_config, read_checkpoint, save_checkpoint
from .env import (
    cpu_threads,
    make_grad_scaler,
    pick_device,
    pick_memory_format,
    pick_precision,
    pick_threads,
    quick_mode,
)
from .forward import add_noise
from .schedule import NoiseSchedule
from .unet import UNet

LR_SCHEDULES = ("cosine", "constant")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

DEFAULT_MINUTES = 4.0  # < 5 min; one 32 px image passed 25 dB at 280 steps of batch 16
WARMUP_STEPS = 50  # linear lr warm-up (at most a fifth of a run given in steps); beat 20 steps
FINAL_LR_FRACTION = 0.05  # the cosine decay ends at 5% of the peak rate
GRAD_CLIP = 1.0  # DDPM clipped the gradient norm at 1
RECORD_STEPS = 200  # (t, per-sample loss) pairs are kept for the last this many steps


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


# ----------------------------------------------------------------------------- choices


def default_batch_size(image_size: int, device: torch.device) -> int:
    """16 images of 32 px on a CPU (128 on a GPU), scaled by (32 / side)^2, at least 4."""
    per_32px = 128 if device.type == "cuda" else 16
    return max(4, int(per_32px * (32 / image_size) ** 2))


def default_lr(model: UNet, batch_size: int) -> float:
    """2e-3 under 5 M parameters, else DDPM's 2e-4; times sqrt(min(batch_size, 64) / 64)."""
    base = 2e-3 if model.num_parameters() < 5_000_000 else 2e-4
    return base * math.sqrt(min(batch_size, 64) / 64)


def lr_factor(progress: float, step: int, lr_schedule: str, warmup_steps: int) -> float:
    """Multiplier of the peak lr: linear warm-up over ``warmup_steps``, then constant or a cosine
    decay from 1 to FINAL_LR_FRACTION as ``progress`` (fraction of the budget spent) goes 0 -> 1."""
    warm = min(1.0, (step + 1) / warmup_steps)
    if lr_schedule == "constant":
        return warm
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cos)


# ----------------------------------------------------------------------------- data


def load_folder(folder: Path, size: int, channels: int) -> torch.Tensor:
    """Every image file in ``folder`` (sorted by name) as one tensor [N, C, size, size]."""
    from .images import load_image  # imported here: only folder data needs the image loader

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in the folder {folder}.")
    return torch.cat([load_image(p, size=size, channels=channels) for p in files])


def as_batch_source(
    data: object, model: UNet, device: torch.device
) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
    """Turn ``data`` into ``(fetch, N)``: ``fetch(indices)`` returns those images [B, C, H, W]
    on ``device``. Accepts a tensor [N, C, H, W] in [-1, 1], a Dataset (items are images or
    (image, label)), a DataLoader (read through its dataset), or a folder / file of images."""
    cfg = model.config
    if isinstance(data, (str, os.PathLike)):
        path = Path(data)
        if path.is_dir():
            data = load_folder(path, cfg.image_size, cfg.image_channels)
        elif path.is_file():
            from .images import load_image

            data = load_image(path, size=cfg.image_size, channels=cfg.image_channels)
        else:
            raise ValueError(f"data path {path} is neither a folder of images nor an image file.")
    if isinstance(data, DataLoader):
        data = data.dataset  # batches are drawn by train's own generator, so resume is exact
    if isinstance(data, torch.Tensor):
        images = data.unsqueeze(0) if data.dim() == 3 else data
        check_images(images, model)
        images = images.to(device=device, dtype=torch.float32)
        return (lambda idx: images[idx.to(device)]), images.shape[0]
    if isinstance(data, Dataset) or hasattr(data, "__getitem__"):
        dataset = data
        check_images(first_image(dataset, 0).unsqueeze(0), model)

        def fetch(idx: torch.Tensor) -> torch.Tensor:
            batch = torch.stack([first_image(dataset, int(i)) for i in idx])
            return batch.to(device=device, dtype=torch.float32)

        return fetch, len(dataset)
    raise ValueError(
        f"data must be a tensor [N, C, H, W], a Dataset, a DataLoader or a folder of images; "
        f"got {type(data).__name__}."
    )


def first_image(dataset: Dataset, i: int) -> torch.Tensor:
    """Item ``i`` of a dataset as an image tensor [C, H, W] (the label of a pair is dropped)."""
    item = dataset[i]
    image = item[0] if isinstance(item, (tuple, list)) else item
    if not isinstance(image, torch.Tensor) or image.dim() != 3:
        raise ValueError(
            f"dataset item {i} should be an image tensor [C, H, W] or (image, label); got "
            f"{getattr(image, 'shape', type(image).__name__)}. Add a ToTensor-style transform."
        )
    return image


def check_images(images: torch.Tensor, model: UNet) -> None:
    """Raise ``ValueError`` unless ``images`` fit the model and lie in [-1, 1]."""
    if images.dim() != 4 or images.shape[0] == 0 or not images.dtype.is_floating_point:
        raise ValueError(
            f"training images must be a float tensor [N, C, H, W] with N >= 1, "
            f"got {images.dtype} {list(images.shape)}."
        )
    model.check_input(images[:1])
    lo, hi = float(images.min()), float(images.max())
    if lo < -1.001 or hi > 1.001:  # allow rounding error of a [0, 1] -> [-1, 1] conversion
        raise ValueError(
            f"training images must lie in [-1, 1] but span [{lo:.3g}, {hi:.3g}]; "
            "map [0, 1] images with x * 2 - 1."
        )


# ----------------------------------------------------------------------------- training


def ema_update(ema: UNet, model: UNet, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * weights; buffers are copied, not averaged."""
    with torch.no_grad():
        ema_params = list(ema.parameters())
        torch._foreach_lerp_(ema_params, list(model.parameters()), 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def training_loss(
    model: UNet,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    precision: str,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1, lines 2-5 for one batch. Returns (mean loss, t [B], per-image loss [B])."""
    B = x0.shape[0]
    t = torch.randint(0, schedule.num_steps, (B,), generator=generator)  # t ~ U{0..T-1}
    x_t, eps = add_noise(x0, t.to(x0.device), schedule, generator=generator)  # eq. 4
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    autocast = torch.autocast(x0.device.type, dtype=dtype) if dtype is not None else nullcontext()
    with autocast:
        predicted = model(x_t, t.to(x0.device))
    per_image = (predicted.float() - eps).pow(2).mean(dim=(1, 2, 3))  # ||eps - eps_theta||^2
    return per_image.mean(), t, per_image.detach()


def train(
    model: UNet,
    data: object,
    schedule: NoiseSchedule,
    *,
    steps: Optional[int] = None,
    minutes: Optional[float] = None,
    batch_size: Optional[int] = None,
    lr: Optional[float] = None,
    device: Optional[Union[str, torch.device]] = None,
    seed: Optional[int] = None,
    checkpoint: Optional[Union[str, os.PathLike]] = None,
    checkpoint_every: int = 500,
    progress: bool = True,
    flip: bool = False,
    ema_decay: float = 0.9999,
    precision: str = "auto",
    memory_format: str = "auto",
    lr_schedule: str = "cosine",
    callback: Optional[Callable[[int, float], None]] = None,
    threads: Optional[int] = None,
) -> TrainResult:
    """Train ``model`` to predict the noise (DDPM Algorithm 1) and return a :class:`TrainResult`.

    Args:
        data: a tensor [N, C, H, W] in [-1, 1] (N = 1 for one image), a Dataset, a DataLoader
            (its dataset is sampled with train's own generator) or a folder of images.
        steps, minutes: stop after this many steps in total (resumed ones included) or after
            this many minutes of this call, whichever comes first. Neither: DEFAULT_MINUTES.
        batch_size, lr: ``None`` picks them from the image size, device and net size (see the
            module docstring). ema_decay: the cap of the EMA decay; 0 keeps no EMA.
        checkpoint: a file path; when it exists the run resumes from it exactly, and it is
            rewritten every ``checkpoint_every`` steps and at the end.
        flip: mirror each drawn image left-right with probability 1/2 (light augmentation).
        precision: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"`` (autocast; weights stay fp32).
        memory_format: ``"auto"``, ``"contiguous"`` or ``"channels_last"``.
        lr_schedule: ``"cosine"`` (decay to 5% over the budget) or ``"constant"`` after warm-up.
        callback: called as ``callback(step, loss)`` after every step.
        threads: CPU threads while training (see :func:`pick_threads`); restored afterwards.
    Raises:
        TrainingError: on a non-finite loss (names the step; the checkpoint is left intact).
    """
    if steps is None and minutes is None:
        steps, minutes = (20, None) if quick_mode() else (None, DEFAULT_MINUTES)
    if steps is not None and (not isinstance(steps, int) or steps < 1):
        raise ValueError(f"steps must be a positive integer, got {steps!r}.")
    if minutes is not None and (not isinstance(minutes, (int, float)) or not minutes > 0):
        raise ValueError(f"minutes must be a positive number, got {minutes!r}.")
    for name, value in (("batch_size", batch_size), ("checkpoint_every", checkpoint_every)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}.")
    if not 0.0 <= ema_decay < 1.0:
        raise ValueError(f"ema_decay must be in [0, 1), got {ema_decay}.")
    dev = pick_device(device)
    precision = pick_precision(precision, dev)
    fmt = pick_memory_format(memory_format, dev)
    with cpu_threads(pick_threads(threads, dev)):
        fetch, n_images = as_batch_source(data, model, dev)
        batch_size = batch_size or default_batch_size(model.config.image_size, dev)
        lr = lr or default_lr(model, batch_size)

        model.to(dev, memory_format=fmt).train()
        ema = copy.deepcopy(model).eval().requires_grad_(False) if ema_decay > 0 else None
        # DDPM trained without weight decay; AdamW with 0 is Adam, named so the choice is visible.
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        scaler = make_grad_scaler() if precision == "fp16" else None
        generator = torch.Generator()  # every random draw of training comes from here (CPU)
        seed = seed if seed is not None else random.SystemRandom().randrange(2**31)
        generator.manual_seed(seed)
        torch.manual_seed(seed)  # dropout uses the global generator
        losses: list[float] = []
        record_t, record_loss = torch.zeros(0, dtype=torch.long), torch.zeros(0)
        step = 0

        path = Path(checkpoint) if checkpoint is not None else None
        if path is not None and path.exists():
            state = read_checkpoint(path, map_location=dev)
            check_config(state["model_config"], model.config.to_dict(), "model", path)
            check_config(state.get("schedule_config", {}), schedule.config(), "schedule", path)
            try:
                model.load_state_dict(state["model"])
                if ema is not None and state.get("ema") is not None:
                    ema.load_state_dict(state["ema"])
                optimizer.load_state_dict(state["optimizer"])
            except (RuntimeError, ValueError, KeyError) as err:
                raise CheckpointError(f"cannot resume from {path}: {err}") from err
            generator.set_state(state["generator"].cpu())
            torch.set_rng_state(state["torch_rng"].cpu())
            if state.get("cuda_rng") is not None and dev.type == "cuda":
                torch.cuda.set_rng_state(state["cuda_rng"].cpu())
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            step, losses = int(state["step"]), list(state["losses"])
            record_t, record_loss = state["record_t"].cpu(), state["record_loss"].cpu()

        def save() -> None:
            save_checkpoint(
                path,
                {
                    "model_config": model.config.to_dict(),
                    "schedule_config": schedule.config(),
                    "model": model.state_dict(),
                    "ema": ema.state_dict() if ema is not None else None,
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "step": step,
                    "losses": losses,
                    "generator": generator.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state() if dev.type == "cuda" else None,
                    "record_t": record_t,
                    "record_loss": record_loss,
                    "settings": {"batch_size": batch_size, "lr": lr, "seed": seed},
                },
            )

        from tqdm.auto import tqdm

        bar = tqdm(total=steps, initial=step, disable=not progress, desc="training", unit="step")
        start, first_step = time.perf_counter(), step
        budget_s = minutes * 60 if minutes is not None else math.inf
        # a run of few steps warms up over its first fifth rather than spending itself on warm-up
        warmup_steps = min(WARMUP_STEPS, max(1, steps // 5)) if steps else WARMUP_STEPS
        try:
            while (steps is None or step < steps) and time.perf_counter() - start < budget_s:
                elapsed = time.perf_counter() - start
                progress_frac = max(step / steps if steps else 0.0, elapsed / budget_s)
                for group in optimizer.param_groups:
                    group["lr"] = lr * lr_factor(progress_frac, step, lr_schedule, warmup_steps)

                idx = torch.randint(0, n_images, (batch_size,), generator=generator)  # x_0 ~ q(x_0)
                x0 = fetch(idx)
                if flip:
                    mirror = torch.rand(batch_size, generator=generator) < 0.5
                    x0 = torch.where(mirror.to(dev)[:, None, None, None], x0.flip(-1), x0)
                x0 = x0.contiguous(memory_format=fmt)
                loss, t, per_image = training_loss(model, x0, schedule, generator, precision)
                value = float(loss.detach())
                if not math.isfinite(value):
                    where = f"the checkpoint {path} (step {step}) is intact. " if path else ""
                    raise TrainingError(
                        f"the loss became {value} at step {step + 1}: training diverged. {where}"
                        f"Try a lower learning rate (lr={lr:.2g} now, e.g. lr={lr / 4:.2g})."
                    )
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                else:
                    loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                if ema is not None:
                    ema_update(ema, model, min(ema_decay, (1 + step) / (10 + step)))  # EMA warm-up
                step += 1
                losses.append(value)
                keep = RECORD_STEPS * batch_size
                record_t = torch.cat([record_t, t])[-keep:]
                record_loss = torch.cat([record_loss, per_image.float().cpu()])[-keep:]
                rate = (step - first_step) * batch_size / max(time.perf_counter() - start, 1e-9)
                bar.update(1)
                bar.set_postfix(
                    loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}", img_s=f"{rate:.0f}"
                )
                if path is not None and step % checkpoint_every == 0:
                    save()
                if callback is not None:
                    callback(step, value)
        except KeyboardInterrupt:  # stopped by the learner: keep what was learned
            bar.write(
                f"Stopped at step {step}; the model so far is kept"
                + (f" in {path}." if path else ".")
            )
        bar.close()
        elapsed = time.perf_counter() - start
        if path is not None and step > first_step:
            save()
        model.eval()
        return TrainResult(
            model=ema if ema is not None else model,
            raw_model=model,
            losses=losses,
            timesteps=record_t,
            sample_losses=record_loss,
            steps=step,
            elapsed=elapsed,
            images_per_second=(step - first_step) * batch_size / max(elapsed, 1e-9),
            settings={
                "batch_size": batch_size,
                "lr": lr,
                "precision": precision,
                "memory_format": str(fmt),
                "device": str(dev),
                "threads": torch.get_num_threads(),
                "seed": seed,
                "ema_decay": ema_decay,
                "lr_schedule": lr_schedule,
            },
        )

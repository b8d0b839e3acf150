"""What :func:`.train.train` takes: its knobs as one dataclass (:class:`TrainConfig`), their
defaults and the default budget."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Literal, Optional, Union

import torch

from .env import quick_mode
from .graphs import MODES as GRAPH_MODES
from .graphs import CudaGraphs

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
        batch_size, lr: see :func:`.data.default_batch_size` and :func:`.data.default_lr`;
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
        precision: ``"auto"`` (:func:`.env.pick_precision`), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        memory_format: ``"auto"``, ``"contiguous"`` or ``"channels_last"``.
        cuda_graphs: on a GPU, run the net through CUDA graphs when the run is long enough to
            pay back compiling (``"auto"``), always (``"on"``) or never; see :mod:`.graphs`.
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
    memory_format: Literal["auto", "contiguous", "channels_last"] = "auto"
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
                              ("cuda_graphs", GRAPH_MODES)):  # fmt: skip
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

"""Algorithm 1 of DDPM (Ho et al. 2020): training eps_theta, as the loop of the paper.

    repeat
        x_0 ~ q(x_0)                                                        line 2
        t ~ Uniform({0, ..., T-1})          (0-based here; the paper's 1..T)  line 3
        eps ~ N(0, I)                                                       line 4
        gradient step on || eps - eps_theta(sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t) ||^2
    until converged                                                         line 5

:func:`training_loss` is lines 3-5 for one batch, :func:`algorithm_1` the loop: a generator
that takes one gradient step each time it is asked, so what runs around it (the learning rate,
the EMA, the budget, checkpoints, Ctrl-C, several processes) is the caller's:
:func:`.training.train`. Another :mod:`.prediction` changes only the target of line 5.
A class-conditional net also sees its labels, a fraction ``cond_drop`` of them replaced by "no
class" (classifier-free guidance, Ho & Salimans 2022).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import Any, Callable, Literal, Optional

import torch

from .forward import add_noise
from .prediction import NOISE, Prediction
from .schedule import NoiseSchedule

Batch = tuple[torch.Tensor, Optional[torch.Tensor]]  # (x_0 [B, C, H, W], labels [B] or None)


def training_loss(
    model: Callable[..., torch.Tensor],
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    generator: Optional[torch.Generator] = None,
    labels: Optional[torch.Tensor] = None,
    *,
    predicts: Prediction = NOISE,
    cond_drop: float = 0.0,
    part: tuple[int, int] = (0, 1),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Algorithm 1, lines 3-5, for a batch x0 [B, C, H, W]: (mean loss, t [B], per-image loss [B]).

    ``part = (rank, world)``: x0 holds rows rank::world of a batch of world * B, and t, eps and
    the dropped labels are drawn for that whole batch (this process keeps its rows), so
    ``world`` processes together make exactly the draws of one.
    """
    rank, world = part
    B, mine, device = x0.shape[0] * world, slice(rank, None, world), x0.device
    t = torch.randint(0, schedule.num_steps, (B,), generator=generator)[mine].to(device)  # line 3
    where = generator.device if generator is not None else device
    eps = torch.randn((B, *x0.shape[1:]), generator=generator, device=where)[mine]  # line 4
    x_t, eps = add_noise(x0, t, schedule, noise=eps.to(device, x0.dtype))  # eq. 4
    args = (predicts.net_input(x_t, t, schedule), t)
    if labels is not None:  # classifier-free guidance: some images learn "no class"
        drop = (torch.rand(B, generator=generator)[mine] < cond_drop).to(labels.device)
        args += (torch.where(drop, model.config.num_classes, labels),)
    target = predicts.target(x0.float(), eps.float(), t, schedule)  # eps, for DDPM
    per_image = (model(*args).float() - target).pow(2).mean(dim=(1, 2, 3))  # ||eps - eps_theta||^2
    return per_image.mean(), t, per_image.detach()


def gradient_step(
    loss: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    grad_clip: Optional[float] = None,
    scaler: Optional[Any] = None,
) -> None:
    """Line 5: backpropagate ``loss``, clip the norm of the optimiser's gradients (DDPM clipped
    at 1), step; through the fp16 gradient scaler when there is one."""
    optimizer.zero_grad(set_to_none=True)
    (scaler.scale(loss) if scaler is not None else loss).backward()
    if scaler is not None:
        scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
    if grad_clip is not None:
        weights = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(weights, grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def algorithm_1(
    model: torch.nn.Module,
    batches: Iterable[Batch],
    schedule: NoiseSchedule,
    optimizer: torch.optim.Optimizer,
    generator: Optional[torch.Generator] = None,
    *,
    predicts: Prediction = NOISE,
    cond_drop: float = 0.0,
    grad_clip: Optional[float] = None,
    scaler: Optional[Any] = None,
    part: tuple[int, int] = (0, 1),
    measured: Optional[Callable[[torch.Tensor, torch.Tensor], None]] = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """DDPM's training loop: every ``next()`` takes one gradient step on the next batch and
    yields what it measured, (t [B], per-image loss [B]). ``measured(t, per_image)`` is called
    with the same before the weights move (for a caller that must account for a step cut in
    its update)."""
    for x0, labels in batches:  # line 2: x_0 ~ q(x_0)
        loss, t, per_image = training_loss(model, x0, schedule, generator, labels,
                                           predicts=predicts, cond_drop=cond_drop, part=part)  # fmt: skip
        if measured is not None:
            measured(t, per_image)
        gradient_step(loss, optimizer, grad_clip, scaler)  # line 5
        yield t, per_image


LrSchedule = Literal["cosine", "constant"]
FINAL_LR_FRACTION = 0.05  # the cosine decay ends at 5% of the peak rate


def lr_factor(progress: float, step: int, lr_schedule: LrSchedule, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate: a linear warm-up over ``warmup_steps`` (large early
    steps of a fresh net overshoot), then constant, or a cosine decay from 1 to
    FINAL_LR_FRACTION as ``progress`` (the fraction of the budget spent) goes from 0 to 1
    (small final steps settle the weights)."""
    warm = min(1.0, (step + 1) / warmup_steps)
    if lr_schedule == "constant":
        return warm
    cos = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return warm * (FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * cos)


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """The exponential moving average of the weights: ema <- decay ema + (1 - decay) weights;
    buffers are copied."""
    with torch.no_grad():
        torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1.0 - decay)
        for b_ema, b in zip(ema.buffers(), model.buffers()):
            b_ema.copy_(b)


def ema_decay(step: int, cap: float) -> float:
    """min(cap, (1 + k) / (10 + k)) at step k: the average spans about the last ninth of the
    steps so far, which suits a 4-minute run and a day-long one alike."""
    return min(cap, (1 + step) / (10 + step))

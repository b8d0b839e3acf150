"""The forward (noising) process q of DDPM: one step, the closed form, and the iterated chain.

Timesteps are 0-based: ``add_noise(x0, t)`` returns the paper's x_{t+1}. ``x0`` is always the
clean image; "x_{-1}" below means the clean image as the input of the first step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch

from .checks.tensors import check_image
from .schedule import NoiseSchedule, Timesteps


def draw_noise(
    like: torch.Tensor,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    name: str = "noise",
) -> torch.Tensor:
    """Return standard Gaussian noise shaped like ``like``: the given ``noise`` after checking it,
    or a fresh draw from ``generator`` (drawn on the generator's device, so a CPU generator gives
    the same numbers whatever device the images are on)."""
    if noise is not None:
        if not isinstance(noise, torch.Tensor):
            raise ValueError(f"{name} must be a tensor, got {type(noise).__name__}.")
        if noise.shape != like.shape:
            raise ValueError(
                f"{name} has shape {list(noise.shape)} but the images have {list(like.shape)}."
            )
        if noise.dtype != like.dtype:
            raise ValueError(f"{name} has dtype {noise.dtype} but the images have {like.dtype}.")
        return noise.to(like.device)
    device = generator.device if generator is not None else like.device
    z = torch.randn(like.shape, generator=generator, device=device, dtype=like.dtype)
    return z.to(like.device)


def add_noise(
    x0: torch.Tensor,
    t: Timesteps,
    schedule: NoiseSchedule,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample q(x_t | x_0) in closed form (DDPM eq. 4): x_t = sqrt(abar_t) x_0 + sqrt(1-abar_t) eps.

    Args:
        x0: clean images [B, C, H, W] in [-1, 1].
        t: an int, or a LongTensor [B] of 0-based timesteps in [0, T-1].
        schedule: the noise schedule.
        noise: optional eps [B, C, H, W]; drawn from ``generator`` when not given.
    Returns:
        ``(x_t, noise)``, both [B, C, H, W] in the dtype of ``x0``.
    """
    check_image(x0, "x0")
    eps = draw_noise(x0, noise, generator)
    sqrt_ab = schedule.gather(schedule.sqrt_alpha_bars, t, x0)
    sqrt_1m_ab = schedule.gather(schedule.sqrt_one_minus_alpha_bars, t, x0)
    return sqrt_ab * x0 + sqrt_1m_ab * eps, eps


def add_noise_step(
    x_prev: torch.Tensor,
    t: Timesteps,
    schedule: NoiseSchedule,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Take one forward step q(x_t | x_{t-1}) (DDPM eq. 2): x_t = sqrt(1-beta_t) x_{t-1} + sqrt(beta_t) eps.

    Args:
        x_prev: x_{t-1} [B, C, H, W]; for t = 0 this is the clean image.
        t: an int, or a LongTensor [B] of 0-based timesteps in [0, T-1].
    Returns:
        x_t [B, C, H, W].
    """
    check_image(x_prev, "x_prev")
    eps = draw_noise(x_prev, noise, generator)
    sqrt_alpha = schedule.gather(schedule.alphas.sqrt(), t, x_prev)
    sqrt_beta = schedule.gather(schedule.betas.sqrt(), t, x_prev)
    return sqrt_alpha * x_prev + sqrt_beta * eps


def add_noise_chain(
    x0: torch.Tensor,
    timesteps: Sequence[int],
    schedule: NoiseSchedule,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Run the Markov chain q(x_t | x_{t-1}) step by step from x_0 and keep x_t at ``timesteps``.

    This is the forward process as eq. 2 defines it; :func:`add_noise` reaches the same
    distribution in one jump (eq. 4).

    Args:
        x0: clean images [B, C, H, W].
        timesteps: 0-based timesteps to keep, each in [0, T-1], any order.
    Returns:
        A tensor [len(timesteps), B, C, H, W]: entry k is x_{timesteps[k]}.
    """
    check_image(x0, "x0")
    wanted = [int(t) for t in timesteps]
    if not wanted:
        raise ValueError("timesteps is empty: name at least one timestep to keep.")
    schedule.check_t(torch.tensor(wanted))
    kept: dict[int, torch.Tensor] = {}
    x = x0
    for t in range(max(wanted) + 1):
        x = add_noise_step(x, t, schedule, generator=generator)
        if t in wanted:
            kept[t] = x
    return torch.stack([kept[t] for t in wanted])

"""The score, and the two equations every sampler of the package solves (Song et al. 2021,
"Score-based generative modeling through stochastic differential equations").

Tweedie's formula: for q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (eq. 4), the best
noise prediction in the squared loss is E[eps | x_t] = -sqrt(1 - abar_t) grad log p_t(x_t), so
the net trained by Algorithm 1 knows the score of the noised data:
    score_theta(x_t, t) = -eps_theta(x_t, t) / sqrt(1 - abar_t).                        (S-1)

In DDIM's variables, xbar = x / sqrt(abar) and sigma = sqrt((1 - abar) / abar), so that
xbar = x_0 + sigma eps, the reverse-time SDE and the probability-flow ODE read, with sigma
going down from sigma_T to 0 (Song et al. 2021, eqs. 6 and 13; Karras et al. 2022, eq. 6):
    SDE:  dxbar = 2 eps_theta dsigma + sqrt(2 sigma) dw                                  (S-2)
    ODE:  dxbar =   eps_theta dsigma                                                    (S-3)
Both carry x_T ~ N(0, I) to the data distribution. DDPM (Algorithm 2) and DDIM with eta = 1
are discretisations of the SDE; DDIM with eta = 0 is Euler's method on the ODE and DPM-Solver++
a second-order solver of it. The SDE's fresh noise keeps pulling the samples back towards the
noised data at every step, so a net's errors are corrected along the way; the ODE has no such
pull and carries every early error to the end: that is 04's gap between the samplers.

Langevin dynamics samples p_t at a fixed t: x <- x + delta score(x) + sqrt(2 delta) z (S-4).
One such step after each ODE step is the "corrector" of a predictor-corrector sampler (Song et
al. 2021, sec. 4.2 and Algorithm 5, whose step size delta = 2 (r ||z|| / ||score||)^2 sets
the ratio r of the drift to the noise; they multiply it by alpha_t, which is about 1 here).
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .checks.values import number, whole_number
from .reverse import ddim_step, model_device
from .schedule import NoiseSchedule, Timesteps
from .timesteps import ddim_timesteps

# Song et al. 2021 used r = 0.16 for CIFAR-10 with the VE SDE. On the shipped 64 px model (8
# samples after DDIM-20, bench/corrector.py) r = 0.3, 0.4, 0.5, 0.6 gave 22.3, 23.9, 24.5, 24.0 dB
# (DDIM alone 20.7 dB, with eta = 1 27.3 dB); r = 1 overshoots (20.3 dB on 4 samples).
CORRECTOR_SNR = 0.5


def score_from_noise(
    predicted_noise: torch.Tensor, t: Timesteps, schedule: NoiseSchedule
) -> torch.Tensor:
    """score_theta(x_t, t) = -eps_theta(x_t, t) / sqrt(1 - abar_t), Tweedie's formula (S-1)."""
    return -predicted_noise / schedule.gather(
        schedule.sqrt_one_minus_alpha_bars, t, predicted_noise
    )


def langevin_step(
    x: torch.Tensor, score: torch.Tensor, step_size: float | torch.Tensor, noise: torch.Tensor
) -> torch.Tensor:
    """One step of Langevin dynamics (S-4): x + delta score + sqrt(2 delta) z, for a step size
    delta (a float, a 0-dim tensor, or one per image [B, 1, ...])."""
    return x + step_size * score + (2 * step_size) ** 0.5 * noise


def corrector_step_size(score: torch.Tensor, noise: torch.Tensor, snr: float) -> torch.Tensor:
    """delta = 2 (r mean||z|| / mean||score||)^2, one number for the batch (Song et al. 2021,
    Algorithm 5, and their code's LangevinCorrector, which averages the norms over the batch):
    the step's drift delta ||score|| is then about r times its noise sqrt(2 delta) ||z||. One
    step size for all: per image, a point where the score happens to vanish would jump far."""
    z_norm = noise.flatten(1).norm(dim=1).mean()
    return 2 * (snr * z_norm / score.flatten(1).norm(dim=1).mean().clamp(min=1e-12)) ** 2


@torch.no_grad()
def sample_with_corrector(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    n: int,
    *,
    steps: int = 20,
    corrector_steps: int = 1,
    snr: float = CORRECTOR_SNR,
    seed: int = 0,
    image_size: Optional[int] = None,
    channels: Optional[int] = None,
) -> tuple[torch.Tensor, int]:
    """A predictor-corrector sampler: DDIM with eta = 0 in ``steps`` steps (Euler on the ODE,
    S-3), each followed (but the last, to x_0) by ``corrector_steps`` Langevin steps (S-4) at
    the new t with ratio ``snr``. x_T comes from ``seed`` as in ``dh.sample`` with the same seed.
    Returns (images [n, C, H, W] clamped to [-1, 1], the number of model calls)."""
    whole_number(steps, "steps")
    whole_number(corrector_steps, "corrector_steps", 0)
    number(snr, "snr", 0.0, above=True)
    cfg = getattr(model, "config", None)
    size = image_size or cfg.image_size
    shape = (n, channels or cfg.image_channels, size, size)
    device = model_device(model)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=generator).to(device)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    calls = 0

    def eps_at(x: torch.Tensor, t: int) -> torch.Tensor:
        nonlocal calls
        calls += 1
        return model(x, torch.full((n,), t, dtype=torch.long, device=device)).float()

    timesteps = ddim_timesteps(schedule.num_steps, steps)  # ends with -1: the step to x_0
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        x = ddim_step(x, t, t_prev, eps_at(x, t), schedule)
        for _ in range(corrector_steps if t_prev >= 0 else 0):
            score = score_from_noise(eps_at(x, t_prev), t_prev, schedule)
            z = torch.randn(shape, generator=generator).to(device)
            x = langevin_step(x, score, corrector_step_size(score, z, snr), z)
    if was_training:
        model.train()
    return x.clamp(-1, 1), calls

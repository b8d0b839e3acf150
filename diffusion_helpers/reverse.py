"""The reverse (denoising) process: predicted x_0, the posterior q(x_{t-1} | x_t, x_0), the DDPM
step of Algorithm 2 and the DDIM step. Timesteps are 0-based, as in :mod:`.schedule`.
"""

from __future__ import annotations

from typing import Optional

import torch

from .forward import check_image, draw_noise
from .schedule import NoiseSchedule, Timesteps

VARIANCES = ("posterior", "beta")


def predict_x0(
    x_t: torch.Tensor, t: Timesteps, predicted_noise: torch.Tensor, schedule: NoiseSchedule
) -> torch.Tensor:
    """Invert eq. 4 for x_0: x0_hat = (x_t - sqrt(1-abar_t) eps) / sqrt(abar_t) (DDPM eq. 15)."""
    _check_pair(x_t, predicted_noise)
    return (
        schedule.gather(schedule.sqrt_recip_alpha_bars, t, x_t) * x_t
        - schedule.gather(schedule.sqrt_recipm1_alpha_bars, t, x_t) * predicted_noise
    )


def q_posterior(
    x0: torch.Tensor, x_t: torch.Tensor, t: Timesteps, schedule: NoiseSchedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and variance of q(x_{t-1} | x_t, x_0) (DDPM eq. 6-7).

    mu_tilde = sqrt(abar_{t-1}) beta_t / (1-abar_t) x_0 + sqrt(alpha_t)(1-abar_{t-1})/(1-abar_t) x_t,
    beta_tilde = beta_t (1-abar_{t-1}) / (1-abar_t).

    Returns:
        ``(mean [B, C, H, W], variance [B, 1, 1, 1])``.
    """
    check_image(x0, "x0")
    check_image(x_t, "x_t")
    mean = (
        schedule.gather(schedule.posterior_mean_coef1, t, x_t) * x0
        + schedule.gather(schedule.posterior_mean_coef2, t, x_t) * x_t
    )
    return mean, schedule.gather(schedule.posterior_variance, t, x_t)


def reverse_step(
    x_t: torch.Tensor,
    t: Timesteps,
    predicted_noise: torch.Tensor,
    schedule: NoiseSchedule,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    variance: str = "posterior",
    clip: bool = False,
) -> torch.Tensor:
    """One step of DDPM sampling, Algorithm 2 line 4:

        x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1-abar_t) eps_theta(x_t, t)) + sigma_t z

    with z ~ N(0, I), and no noise at t = 0 (the last step returns the mean: adding noise there
    would only blur the final image).

    Args:
        x_t: images at step t [B, C, H, W].
        t: an int, or a LongTensor [B] of 0-based timesteps.
        predicted_noise: eps_theta(x_t, t) [B, C, H, W].
        variance: sigma_t^2 = beta_tilde_t (``"posterior"``, the lower bound of sec. 3.2) or
            beta_t (``"beta"``, the upper bound). Both gave similar samples in the paper.
        clip: if True, take the route through x0_hat = predict_x0(...), clip it to [-1, 1] and
            use the posterior mean mu_tilde(x_t, x0_hat) of eq. 7. Without clipping the two
            routes are algebraically equal; with it, stray pixels cannot leave the data range.
    Returns:
        x_{t-1} [B, C, H, W].
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {', '.join(VARIANCES)}; got {variance!r}.")
    _check_pair(x_t, predicted_noise)
    if clip:
        x0_hat = predict_x0(x_t, t, predicted_noise, schedule).clamp(-1.0, 1.0)
        mean, _ = q_posterior(x0_hat, x_t, t, schedule)
    else:
        coef = schedule.betas / schedule.sqrt_one_minus_alpha_bars  # beta_t / sqrt(1 - abar_t)
        mean = schedule.gather(schedule.sqrt_recip_alphas, t, x_t) * (
            x_t - schedule.gather(coef, t, x_t) * predicted_noise
        )
    sigma_sq = schedule.posterior_variance if variance == "posterior" else schedule.betas
    sigma = schedule.gather(sigma_sq.sqrt(), t, x_t)
    t_tensor = schedule.check_t(t, x_t.shape[0]).to(x_t.device)
    not_last = (t_tensor != 0).to(x_t.dtype).reshape(-1, 1, 1, 1)  # sigma_t z vanishes at t = 0
    z = draw_noise(x_t, noise, generator)
    return mean + not_last * sigma * z


def ddim_step(
    x_t: torch.Tensor,
    t: Timesteps,
    t_prev: Timesteps,
    predicted_noise: torch.Tensor,
    schedule: NoiseSchedule,
    eta: float = 0.0,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
    clip: bool = False,
) -> torch.Tensor:
    """One DDIM step from t to an earlier t_prev (Song et al. 2021, eq. 12 with sigma from eq. 16):

        x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
        sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).

    Args:
        t, t_prev: 0-based timesteps with -1 <= t_prev < t; ``t_prev = -1`` is the final
            step to x_0 (abar_{-1} = 1). Any decreasing sub-sequence of timesteps works.
        eta: 0 gives the deterministic DDIM sampler; 1 on consecutive steps gives DDPM's
            posterior variance beta_tilde_t.
        clip: if True, clip x0_hat to [-1, 1] and re-derive eps from it.
    Returns:
        x_{t_prev} [B, C, H, W].
    """
    if not 0.0 <= float(eta):
        raise ValueError(f"eta must be >= 0 (0 is deterministic DDIM, 1 is DDPM-like), got {eta}.")
    _check_pair(x_t, predicted_noise)
    t_tensor = schedule.check_t(t, x_t.shape[0])
    t_prev_tensor = _check_t_prev(t_prev, t_tensor)
    abar_t = schedule.gather(schedule.alpha_bars, t_tensor, x_t)
    # abar_{-1} = 1: index the padded array alpha_bars_prev at t_prev + 1.
    abar_prev = schedule.gather(schedule.alpha_bars_prev, t_prev_tensor + 1, x_t)
    x0_hat = predict_x0(x_t, t_tensor, predicted_noise, schedule)
    eps = predicted_noise
    if clip:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
        eps = (x_t - abar_t.sqrt() * x0_hat) / (1 - abar_t).sqrt()
    sigma = eta * ((1 - abar_prev) / (1 - abar_t) * (1 - abar_t / abar_prev)).sqrt()
    direction = (1 - abar_prev - sigma**2).clamp(min=0).sqrt() * eps
    x_prev = abar_prev.sqrt() * x0_hat + direction
    if eta > 0:
        x_prev = x_prev + sigma * draw_noise(x_t, noise, generator)
    return x_prev


def _check_pair(x_t: torch.Tensor, predicted_noise: torch.Tensor) -> None:
    check_image(x_t, "x_t")
    if not isinstance(predicted_noise, torch.Tensor) or predicted_noise.shape != x_t.shape:
        shape = list(getattr(predicted_noise, "shape", []))
        raise ValueError(f"predicted_noise has shape {shape} but x_t has {list(x_t.shape)}.")
    if predicted_noise.dtype != x_t.dtype:
        raise ValueError(
            f"predicted_noise has dtype {predicted_noise.dtype} but x_t has {x_t.dtype}."
        )


def _check_t_prev(t_prev: Timesteps, t: torch.Tensor) -> torch.Tensor:
    if isinstance(t_prev, bool) or not isinstance(t_prev, (int, torch.Tensor)):
        raise ValueError(f"t_prev must be an int or a LongTensor, got {t_prev!r}.")
    prev = torch.as_tensor(t_prev).reshape(-1).long()
    if prev.numel() not in (1, t.numel()) and t.numel() != 1:
        raise ValueError(f"t_prev has {prev.numel()} timesteps but t has {t.numel()}.")
    if bool((prev < -1).any()) or bool((prev >= t).any()):
        raise ValueError(
            f"t_prev must satisfy -1 <= t_prev < t (got t_prev={prev.tolist()}, t={t.tolist()}): "
            "DDIM steps go backwards in time, and t_prev = -1 is the final step to x_0."
        )
    return prev

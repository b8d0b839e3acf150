"""The reverse (denoising) process: predicted x_0, the posterior q(x_{t-1} | x_t, x_0), the DDPM
step of Algorithm 2, the DDIM step and the DPM-Solver++(2M) step. Timesteps are 0-based, as in
:mod:`.schedule`.
"""

from __future__ import annotations

from typing import Optional

import torch

from .checks.tensors import check_image
from .forward import draw_noise
from .schedule import NoiseSchedule, Timesteps

VARIANCES = ("posterior", "beta")

# The default of every step here and of `sampling.sample`: clip the predicted x0_hat to the data
# range [-1, 1] before stepping. The reference implementation (Ho et al. 2020, diffusion_utils.py,
# p_sample with clip_denoised=True) samples this way, and stray pixels cannot leave [-1, 1].
# Without clipping, Algorithm 2's formula and the route through mu_tilde(x_t, x0_hat) (eq. 7) are
# algebraically equal; clip=False gives the plain formulas of the papers. It matters most for
# few-step samplers: on the shipped model DPM-Solver++ (10 steps) scored 25 dB PSNR with it and
# 12 dB without (bench/sample_speed.py, 8 images).
CLIP_X0 = True


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
    clip: bool = CLIP_X0,
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
        clip: if True (default :data:`CLIP_X0`), take the route through x0_hat =
            predict_x0(...), clip it to [-1, 1] and use the posterior mean mu_tilde(x_t, x0_hat)
            of eq. 7; if False, Algorithm 2's formula as written.
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
    clip: bool = CLIP_X0,
) -> torch.Tensor:
    """One DDIM step from t to an earlier t_prev (Song et al. 2021, eq. 12 with sigma from eq. 16):

        x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z,
        sigma  = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev).

    Args:
        t, t_prev: 0-based timesteps with -1 <= t_prev < t; ``t_prev = -1`` is the final
            step to x_0 (abar_{-1} = 1). Any decreasing sub-sequence of timesteps works.
        eta: 0 gives the deterministic DDIM sampler; 1 on consecutive steps gives DDPM's
            posterior variance beta_tilde_t.
        clip: if True (default :data:`CLIP_X0`), clip x0_hat to [-1, 1] and re-derive eps
            from it.
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


def dpm_solver_2m_step(
    x_t: torch.Tensor,
    t: Timesteps,
    t_prev: Timesteps,
    predicted_noise: torch.Tensor,
    schedule: NoiseSchedule,
    previous: Optional[tuple[Timesteps, torch.Tensor]] = None,
    clip: bool = CLIP_X0,
    eta: float = 0.0,
    noise: Optional[torch.Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One DPM-Solver++(2M) step from t to an earlier t_prev (Lu et al. 2022, Algorithm 2):

        alpha = sqrt(abar), sigma = sqrt(1 - abar), lambda = log(alpha / sigma),
        h = lambda_prev - lambda_t,
        x_prev = (sigma_prev / sigma_t) x_t - alpha_prev (exp(-h) - 1) D,

    where D is the data prediction. First order, D = x0_hat: this is exactly DDIM with eta = 0.
    Second order, with the x0_hat of the step before (taken at t_last > t),

        D = (1 + 1/(2r)) x0_hat - 1/(2r) x0_hat_last,   r = (lambda_t - lambda_last) / h.

    The step to t_prev = -1 (abar = 1, sigma = 0, h infinite) is always first order and returns
    x0_hat (diffusers' ``lower_order_final``). lambda is computed in float64 from the schedule.

    With ``eta > 0`` the step solves the reverse SDE instead of the ODE and adds noise, as DDIM
    does with the same eta: part of sigma_prev is fresh noise, s = eta sigma_prev sqrt(1 - e^{-2h}),
    and the rest follows x_t,

        x_prev = (sigma_prev / sigma_t) sqrt(1 - eta^2 (1 - e^{-2h})) x_t + c D + s z,
        c = alpha_prev - (sigma_prev / sigma_t) sqrt(1 - eta^2 (1 - e^{-2h})) alpha_t.

    eta = 0 is the ODE step above (c = -alpha_prev (e^{-h} - 1)); eta = 1 is SDE-DPM-Solver++(2M)
    (Lu et al.'s SDE variant, diffusers' ``algorithm_type="sde-dpmsolver++"``):
    x_prev = (sigma_prev / sigma_t) e^{-h} x_t + alpha_prev (1 - e^{-2h}) D + s z. First order,
    any eta, it is exactly :func:`ddim_step` with that eta (s is DDIM's sigma, eq. 16).

    Args:
        x_t: images at step t [B, C, H, W].
        t, t_prev: 0-based timesteps (ints or LongTensors [B]) with -1 <= t_prev < t.
        predicted_noise: eps_theta(x_t, t) [B, C, H, W].
        previous: ``(t_last, x0_hat_last)`` as returned by the step before (from t_last to t),
            or None for a first-order step (the first step of a run).
        clip: clip the data prediction x0_hat to [-1, 1]; default :data:`CLIP_X0`.
        eta: 0 (default) the deterministic ODE solver, 1 the SDE solver; between, a mix.
        noise: z for ``eta > 0`` (default: drawn from ``generator``).
    Returns:
        ``(x_prev [B, C, H, W], x0_hat [B, C, H, W])``: give ``(t, x0_hat)`` as ``previous``
        to the next step.
    """
    if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
        raise ValueError(
            f"eta must be a number in [0, 1] for DPM-Solver++ (0 solves the ODE, 1 the SDE), "
            f"got {eta!r}."
        )
    _check_pair(x_t, predicted_noise)
    t_tensor = schedule.check_t(t, x_t.shape[0]).cpu()
    t_prev_tensor = _check_t_prev(t_prev, t_tensor).cpu()
    x0_hat = predict_x0(x_t, t_tensor, predicted_noise, schedule)  # eq. 15
    if clip:
        x0_hat = x0_hat.clamp(-1.0, 1.0)
    # float64 on the CPU; abar_{-1} = 1 through the padded array alpha_bars_prev.
    abar_t = schedule.alpha_bars[t_tensor]
    abar_prev = schedule.alpha_bars_prev[t_prev_tensor + 1]
    lam_t, lam_prev = _half_log_snr(abar_t), _half_log_snr(abar_prev)  # lam_prev = inf at -1
    h = lam_prev - lam_t
    one_minus_e2h = -torch.expm1(-2 * h)  # 1 - e^{-2h}: 1 on the final step (h infinite)
    kept = (1 - eta**2 * one_minus_e2h).clamp(min=0).sqrt()  # 1 for the ODE, e^{-h} for the SDE
    x_coef = ((1 - abar_prev) / (1 - abar_t)).sqrt() * kept  # sigma_prev / sigma_t, times kept
    d_coef = abar_prev.sqrt() - x_coef * abar_t.sqrt()  # eta = 0: -alpha_prev (exp(-h) - 1)
    noise_std = eta * (1 - abar_prev).sqrt() * one_minus_e2h.sqrt()  # 0 on the final step
    data = x0_hat
    if previous is not None:
        t_last, x0_last = previous
        t_last_tensor = schedule.check_t(t_last, x_t.shape[0]).cpu()
        if bool((t_last_tensor <= t_tensor).any()):
            raise ValueError(
                f"previous holds t_last={t_last_tensor.tolist()}, which must be later than "
                f"t={t_tensor.tolist()}: pass the (t, x0_hat) of the step that led to x_t."
            )
        if not isinstance(x0_last, torch.Tensor) or x0_last.shape != x_t.shape:
            shape = list(getattr(x0_last, "shape", []))
            raise ValueError(
                f"previous[1] (x0_hat of the step before) has shape {shape} but x_t has "
                f"{list(x_t.shape)}."
            )
        h_last = lam_t - _half_log_snr(schedule.alpha_bars[t_last_tensor])
        # 1/(2r) = h / (2 h_last); zero (first order) on the final step, where h is infinite.
        half_inv_r = torch.where(t_prev_tensor == -1, 0.0, h / (2 * h_last))
        data = x0_hat + _per_image(half_inv_r, x_t) * (x0_hat - x0_last)
    x_prev = _per_image(x_coef, x_t) * x_t + _per_image(d_coef, x_t) * data
    if eta > 0:
        x_prev = x_prev + _per_image(noise_std, x_t) * draw_noise(x_t, noise, generator)
    return x_prev, x0_hat


def _half_log_snr(abar: torch.Tensor) -> torch.Tensor:
    """lambda = log(sqrt(abar) / sqrt(1 - abar)), half the log-SNR (float64; +inf at abar = 1)."""
    return 0.5 * torch.log(abar / (1 - abar))


def _per_image(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """float64 values [1] or [B] as [B, 1, 1, 1] in the dtype and device of ``like``."""
    return values.to(device=like.device, dtype=like.dtype).reshape(-1, 1, 1, 1)


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


class NoiseFromX0(torch.nn.Module):
    """A net trained to predict x_0 (``train(..., prediction="x0")``), seen as a noise
    predictor so every sampler can use it: eps = (x_t - sqrt(abar_t) x0_theta) / sqrt(1 - abar_t),
    eq. 4 solved for the noise. ``config`` and the parameters are the wrapped net's."""

    records_as_cuda_graph = False  # schedule.gather indexes on the CPU: sampled eagerly

    def __init__(self, net: torch.nn.Module, schedule: NoiseSchedule) -> None:
        super().__init__()
        self.net, self.schedule = net, schedule
        self.config = getattr(net, "config", None)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        """eps implied by the wrapped net's x_0 at (x_t, t)."""
        x0 = self.net(x_t, t, *labels)
        abar = self.schedule.gather(self.schedule.alpha_bars, t, x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

"""The reverse (denoising) process: one step back, and the loop that takes the steps.

One step: the predicted x_0 (eq. 15), the posterior q(x_{t-1} | x_t, x_0) (eq. 6-7), DDPM's
step (Algorithm 2), DDIM's (Song et al. 2021, eq. 12) and DPM-Solver++(2M)'s (Lu et al. 2022).
The loop (:func:`reverse_process`, Algorithm 2 itself): from x at a timestep, ask the model for
eps_theta(x_t, t) and take one step back, down to the clean picture. How is one small
description, :class:`Sampler`, passed whole to every function that samples (as in k-diffusion:
one calling convention for every sampler). Timesteps are 0-based, as in :mod:`.schedule`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Literal, Optional, get_args

import torch
from tqdm.auto import tqdm

from .checks.tensors import check_image
from .checks.values import choice, number, whole_number
from .checks.values import seed as check_seed
from .forward import draw_noise
from .guidance import Labels, guided_noise, resolve_labels
from .schedule import NoiseSchedule, Timesteps
from .timesteps import DEFAULT_STEPS, METHODS, Method, method_timesteps

VARIANCES = ("posterior", "beta")

# The default of every step here: clip the predicted x0_hat to the data range [-1, 1] before
# stepping, as the reference implementation does (Ho et al. 2020, p_sample with
# clip_denoised=True). Without clipping, Algorithm 2's formula and the route through
# mu_tilde(x_t, x0_hat) (eq. 7) are equal; clip=False gives the plain formulas of the papers.
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


Variance = Literal["posterior", "beta"]


@dataclass(frozen=True)
class Sampler:
    """How to run the reverse process, checked once when made; ``Sampler(method="dpm_solver",
    eta=1)`` is SDE-DPM-Solver++ in 20 steps.

    Attributes:
        method: ``"ddpm"`` (Algorithm 2, all T steps), ``"ddim"`` (Song et al. 2021, eq. 12)
            or ``"dpm_solver"`` (DPM-Solver++(2M), Lu et al. 2022).
        steps: DDIM / DPM-Solver steps; None: 50 and 20 for a whole run, as many per timestep
            for an edit that starts part of the way (:meth:`timesteps`). DDPM takes every step.
        eta: fresh noise at each step: for DDIM 0 (deterministic) or more (1 is DDPM's
            posterior variance), for DPM-Solver in [0, 1] (0 solves the ODE, 1 the SDE). The
            noise lets later steps correct earlier errors (README).
        variance: sigma_t^2 of Algorithm 2 (DDPM only): ``"posterior"`` (beta_tilde_t, the
            lower bound of sec. 3.2) or ``"beta"`` (beta_t, the upper bound).
        clip: clip the predicted x_0 to [-1, 1] at every step (:data:`.reverse.CLIP_X0`, why:
            see there); False gives the plain formulas of the papers.
        guidance_scale: classifier-free guidance weight w for a conditional model given
            labels (:func:`.guidance.guided_noise`): 1 plain conditional, 0 unconditional, > 1
            stronger class features; None: :data:`.guidance.DEFAULT_GUIDANCE`.
    """

    method: Method = "ddpm"
    steps: Optional[int] = None
    eta: float = 0.0
    variance: Variance = "posterior"
    clip: bool = CLIP_X0
    guidance_scale: Optional[float] = None

    def __post_init__(self) -> None:
        choice(self.method, "method", METHODS)
        if self.steps is not None:
            whole_number(self.steps, "steps")
        if self.method == "ddpm" and self.steps is not None:
            raise ValueError(
                f"steps={self.steps} with method='ddpm': DDPM takes all T steps. Use "
                "method='ddim' or 'dpm_solver' to sample with fewer steps."
            )
        top = 1.0 if self.method == "dpm_solver" else None
        number(self.eta, "eta", 0.0, top, hint=" 0 is deterministic; 1 adds DDPM's noise.")
        if self.method == "ddpm" and self.eta != 0:
            raise ValueError(
                f"eta={self.eta} only applies to method='ddim' or 'dpm_solver'; DDPM's noise is "
                "`variance`."
            )
        choice(self.variance, "variance", get_args(Variance))
        if self.method != "ddpm" and self.variance != "posterior":
            raise ValueError(f"variance only applies to method='ddpm', not {self.method!r}.")
        if not isinstance(self.clip, bool):
            raise ValueError(f"clip must be True or False, got {self.clip!r}.")
        if self.guidance_scale is not None:
            number(self.guidance_scale, "guidance_scale", 0.0,
                   hint=" 1 is plain conditional sampling, 0 unconditional.")  # fmt: skip

    def __str__(self) -> str:
        """A short name for figure titles: "DDPM (1000 steps)", "SDE-DPM-Solver++ (20 steps)"."""
        name = {"ddpm": "DDPM", "ddim": "DDIM", "dpm_solver": "DPM-Solver++"}[self.method]
        if self.method == "dpm_solver" and self.eta == 1:
            name = "SDE-" + name
        elif self.method != "ddpm" and self.eta:
            name += f", eta {self.eta:g}"
        steps = self.steps or DEFAULT_STEPS.get(self.method)
        return f"{name} ({steps} steps)" if steps else name

    def timesteps(self, schedule: NoiseSchedule, start: Optional[int] = None) -> list[int]:
        """The timesteps this sampler visits from ``start`` (default T-1: a whole run), ending
        with -1 (the clean image). Without ``steps``, DDIM and DPM-Solver take their default
        for a whole run scaled by (start + 1) / T, so an edit's steps are as long as a whole
        run's."""
        T = schedule.num_steps
        start = T - 1 if start is None else start
        steps = self.steps
        if self.method != "ddpm" and steps is None:
            steps = min(start + 1, max(1, round(DEFAULT_STEPS[self.method] * (start + 1) / T)))
        if steps is not None and steps > start + 1:
            where = f"from t = {start}" if start < T - 1 else f"in a schedule of T = {T}"
            raise ValueError(
                f"steps={steps} is more than the {start + 1} timesteps there are {where}: "
                f"give steps from 1 to {start + 1}."
            )
        return method_timesteps(self.method, schedule, steps, start=start)

    def step(
        self, schedule: NoiseSchedule, generator: Optional[torch.Generator]
    ) -> Callable[[torch.Tensor, int, int, torch.Tensor], torch.Tensor]:
        """One reverse step with this sampler's options: ``step(x_t, t, t_prev, eps)`` returns
        x_{t_prev}; fresh noise comes from ``generator``."""
        if self.method == "ddpm":  # Algorithm 2, line 4 (t_prev is t - 1)
            return lambda x, t, t_prev, eps: reverse_step(
                x, t, eps, schedule, generator=generator, variance=self.variance, clip=self.clip
            )
        if self.method == "ddim":  # Song et al. eq. 12; z drawn only when eta > 0
            return lambda x, t, t_prev, eps: ddim_step(
                x, t, t_prev, eps, schedule, eta=self.eta, generator=generator, clip=self.clip
            )
        # DPM-Solver++(2M) needs the data prediction of the step that led to x_t. It is kept by
        # the timestep that step landed on, so after a RePaint jump (a new start) the step is
        # first order again.
        landed: dict[int, tuple[int, torch.Tensor]] = {}

        def dpm_step(x: torch.Tensor, t: int, t_prev: int, eps: torch.Tensor) -> torch.Tensor:
            previous = landed.pop(t, None)
            landed.clear()
            x_prev, x0_hat = dpm_solver_2m_step(
                x, t, t_prev, eps, schedule, previous, clip=self.clip, eta=self.eta,
                generator=generator,
            )  # fmt: skip
            landed[t_prev] = (t, x0_hat)
            return x_prev

        return dpm_step


# The sampler of the command line, the demo and the notebooks wherever DDPM's 1000 steps are
# not the lesson: SDE-DPM-Solver++(2M) in 20 steps, as good as DDPM at a fiftieth of the calls
# (README).
FAST_SAMPLER = Sampler("dpm_solver", eta=1.0)


def make_sampler(sampler: Optional[Sampler], options: dict) -> Sampler:
    """``sampler`` (default :class:`Sampler`) with ``options`` (its fields as keywords) applied:
    ``sample(model, schedule, method="ddim", steps=50)`` and ``sample(model, schedule,
    Sampler("ddim", 50))`` are the same call."""
    names = {f.name for f in fields(Sampler)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise TypeError(f"unknown sampler options {unknown}; a Sampler has {sorted(names)}.")
    if sampler is not None and not isinstance(sampler, Sampler):
        raise ValueError(f"sampler must be a Sampler, got {type(sampler).__name__}.")
    return replace(sampler or Sampler(), **options) if options else sampler or Sampler()


@dataclass
class Frame:
    """One captured moment of the reverse process (on the CPU).

    ``x_t`` is the input to step ``t``; ``x0_pred`` is the model's estimate of x_0 at that step
    (eq. 15, clipped to [-1, 1] when the sampler clips). The final frame of a run holds the
    finished images: its ``t`` is the step that produced them (t = 0 for DDPM, the last visited
    timestep for DDIM and DPM-Solver) and both ``x_t`` and ``x0_pred`` are the final images.
    """

    t: int
    x_t: torch.Tensor  # [n, C, H, W]
    x0_pred: torch.Tensor  # [n, C, H, W]


@dataclass
class SampleResult:
    """What :func:`sample` returns.

    Attributes:
        images: the final images [n, C, H, W] on the CPU, clamped to the data range [-1, 1].
        frames: the captured :class:`Frame` list (empty unless ``every`` was given).
        sampler: the :class:`Sampler` that drew them.
        timesteps: the timesteps visited, in order (starting at T-1 for :func:`sample`).
        seconds: how long the reverse process took (wall clock, the images on the CPU).
    """

    images: torch.Tensor
    frames: list[Frame] = field(default_factory=list)
    sampler: Sampler = field(default_factory=Sampler)
    timesteps: list[int] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def method(self) -> str:
        """The sampler's method: ``"ddpm"``, ``"ddim"`` or ``"dpm_solver"``."""
        return self.sampler.method


def seeded(
    seed: Optional[int], generator: Optional[torch.Generator] = None
) -> Optional[torch.Generator]:
    """The generator of a run: a CPU generator seeded with ``seed``, the given ``generator``,
    or None (torch's global one). Giving both is an error: the seed would replace it."""
    if seed is not None and generator is not None:
        raise ValueError("give seed or generator, not both: the seed would replace the generator.")
    return torch.Generator().manual_seed(check_seed(seed)) if seed is not None else generator


Callback = Callable[[int, int, torch.Tensor, torch.Tensor], None]  # (i, t, x_t, eps)


def reverse_process(
    model: Callable[..., torch.Tensor],
    schedule: NoiseSchedule,
    x: torch.Tensor,
    timesteps: list[int],
    sampler: Sampler,
    *,
    generator: Optional[torch.Generator] = None,
    labels: Optional[Labels] = None,
    callback: Optional[Callback] = None,
    after_step: Optional[Callable[[torch.Tensor, int], torch.Tensor]] = None,
    progress: bool = True,
) -> SampleResult:
    """Algorithm 2: run the reverse process on ``x`` = x_{timesteps[0]} along ``timesteps``
    (ending at -1, the clean images) and return a :class:`SampleResult` (no frames).

    A falling pair (t, t_prev) is one reverse step of ``sampler``, the model called at t. A
    rising pair (t, t_next), which only RePaint's schedule has, goes forward in time by
    q(x_{t_next} | x_t) (:func:`forward_jump`).

    Args:
        model: eps_theta(x_t, t[, labels]) (:mod:`.prediction` reads any net as one).
        x: the images at timesteps[0] [n, C, H, W], on the model's device.
        labels: for a conditional model (:func:`.guidance.resolve_labels`), steered by the
            sampler's ``guidance_scale``.
        callback: called as ``callback(i, t, x_t, eps)`` before every step (frames, plots).
        after_step: called as ``after_step(x, t_prev)`` after every step; what it returns
            replaces x (RePaint pastes the known region of the picture there).
    Raises:
        ValueError: when the model produced NaN or infinite values.
    """
    check_image(x, "x")
    cond, null, w = resolve_labels(model, labels, sampler.guidance_scale, x.shape[0], x.device)
    step = sampler.step(schedule, generator)
    pairs = list(zip(timesteps[:-1], timesteps[1:]))
    was_training = getattr(model, "training", None)
    if was_training is not None:
        model.eval()
    start = time.perf_counter()
    try:
        with torch.no_grad():
            for i, (t, t_next) in enumerate(tqdm(pairs, desc="sampling", disable=not progress)):
                if t_next > t:  # RePaint: back up in time by the forward process
                    x = forward_jump(x, t, t_next, schedule, generator)
                    continue
                t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
                eps = guided_noise(model, x, t_batch, cond, null, w)  # eps_theta(x_t, t)
                if callback is not None:
                    callback(i, t, x, eps)
                x = step(x, t, t_next, eps)  # x_{t_prev}: Algorithm 2, line 4
                if after_step is not None:
                    x = after_step(x, t_next)
    finally:
        if was_training:
            model.train()
    if not bool(torch.isfinite(x).all()):  # clamping would hide it: NaN stays NaN
        raise ValueError(
            "the model produced NaN or infinite values: its weights may be damaged (load the "
            "checkpoint again, or train afresh) or the schedule is not the one it was trained "
            "with."
        )
    images = x.clamp(-1.0, 1.0).float().cpu()
    return SampleResult(images, [], sampler, timesteps[:-1], time.perf_counter() - start)


def capture_frames(
    every: Optional[int], schedule: NoiseSchedule, clip: bool = CLIP_X0
) -> tuple[Optional[Callback], list[Frame]]:
    """A callback for :func:`reverse_process` that keeps a :class:`Frame` every ``every`` steps
    (the first included), and the list it fills; ``(None, [])`` when ``every`` is None. Add the
    final frame with :func:`with_final_frame`."""
    frames: list[Frame] = []
    if every is None:
        return None, frames
    whole_number(every, "every (steps between frames)")

    def keep(i: int, t: int, x: torch.Tensor, eps: torch.Tensor) -> None:
        if i % every == 0:
            x0_pred = predict_x0(x, t, eps, schedule)  # eq. 15
            x0_pred = x0_pred.clamp(-1.0, 1.0) if clip else x0_pred
            frames.append(Frame(t, x.float().cpu(), x0_pred.float().cpu()))

    return keep, frames


def with_final_frame(
    result: SampleResult, frames: list[Frame], every: Optional[int]
) -> SampleResult:
    """``result`` with ``frames`` and, after them, the finished images as the last frame (at
    the last visited timestep), when frames were asked for (``every``)."""
    if every is not None:
        result.frames = [*frames, Frame(result.timesteps[-1], result.images, result.images)]
    return result


def forward_jump(
    x: torch.Tensor,
    t: int,
    t_next: int,
    schedule: NoiseSchedule,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Sample q(x_{t_next} | x_t) for t_next > t (eq. 4 between two noisy steps): the chain of
    eq. 2 from t to t_next in one draw,

        x_{t_next} = sqrt(abar_{t_next} / abar_t) x_t + sqrt(1 - abar_{t_next} / abar_t) eps,

    with abar_{-1} = 1 (from the clean image it is eq. 4 itself). x: [n, C, H, W].
    """
    ratio = float(schedule.alpha_bars[t_next] / schedule.alpha_bars_prev[t + 1])
    return math.sqrt(ratio) * x + math.sqrt(1 - ratio) * draw_noise(x, generator=generator)


def model_device(model: Any) -> torch.device:
    """The device of the model's first parameter or buffer; the CPU for a plain function."""
    for tensors in (getattr(model, "parameters", None), getattr(model, "buffers", None)):
        if tensors is not None:
            first = next(iter(tensors()), None)
            if first is not None:
                return first.device
    return torch.device("cpu")

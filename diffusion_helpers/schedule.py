"""The noise schedule: every fixed number of the DDPM forward process, in one object.

Indexing is 0-based, as in diffusers: ``t = 0`` is the paper's t = 1 (the first noising
step) and ``t = T - 1`` is the paper's t = T (the last). Every array is a 1-D float64 tensor
of length T, computed once; values are cast to the dtype and device of the images only when
they are gathered for a batch of timesteps (:meth:`NoiseSchedule.gather`).

beta_t is a *fixed* schedule chosen before training; nothing in it is learned.
"""

from __future__ import annotations

import math
import warnings
from typing import Union

import torch

from .checks.values import number

Timesteps = Union[int, torch.Tensor]

KINDS = ("linear", "cosine", "scaled_linear", "sigmoid", "flow")

# Nichol & Dhariwal (2021), eq. 17: the small offset s keeps beta_0 from being vanishingly
# small, and betas are clipped at 0.999 to avoid the singularity at t = T.
COSINE_S = 0.008
COSINE_MAX_BETA = 0.999
# DDPM's linear betas (1e-4 to 0.02) are for T = 1000 steps. For another T both ends are scaled
# by 1000 / T, as improved-diffusion's get_named_beta_schedule("linear", T) does, so that every T
# destroys the picture about equally (sum of the betas ~ 10, abar_T ~ 4e-5). Below T = 21 the
# scaled betas would pass 1; they are capped at MAX_BETA, the cosine schedule's cap.
LINEAR_REFERENCE_STEPS = 1000
MAX_BETA = COSINE_MAX_BETA
# Sampling starts from x_T ~ N(0, I), which is only right when q(x_T | x_0) is close to it: with
# abar_T = 0.05, x_T still holds sqrt(0.05) = 22% of the picture. Above this, NoiseSchedule warns.
MAX_FINAL_ALPHA_BAR = 0.05
# T beyond any paper's (DDPM 1000, VDM's continuous time is sampled, not stored): a stored
# config cannot ask for gigabytes of schedule arrays.
MAX_STEPS = 100_000


def make_betas(
    num_steps: int, kind: str = "linear", beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """Return beta_t for t = 0..T-1 as a float64 tensor (DDPM sec. 4, Nichol & Dhariwal eq. 17).

    - ``linear``: beta rises linearly from ``beta_start`` to ``beta_end`` (DDPM: 1e-4 to 0.02
      for T = 1000), both scaled by 1000 / T for other T as in improved-diffusion (T = 100:
      1e-3 to 0.2), and capped at MAX_BETA (reached for T < 21, with a warning).
    - ``scaled_linear``: sqrt(beta) rises linearly (Stable Diffusion's schedule).
    - ``cosine``: abar(t) = cos^2(((t/T + s) / (1 + s)) pi/2), beta_t = 1 - abar(t+1)/abar(t),
      clipped at 0.999 (``beta_start``/``beta_end`` are not used).
    - ``sigmoid``: beta follows a sigmoid over [-6, 6] between ``beta_start`` and ``beta_end``.
    - ``flow``: the straight path of flow matching, x = (1 - s) x_0 + s eps with s = (t + 1) / T
      (:mod:`.flow`), as a DDPM schedule of the same signal-to-noise ratios:
      abar_t = (1 - s)^2 / ((1 - s)^2 + s^2); the last beta, 1, is capped at 0.999 like the
      cosine's (``beta_start``/``beta_end`` are not used).
    """
    if (
        isinstance(num_steps, bool)
        or not isinstance(num_steps, int)
        or not 1 <= num_steps <= MAX_STEPS
    ):
        raise ValueError(
            f"num_steps must be a whole number from 1 to {MAX_STEPS:,}, got {num_steps!r}."
        )
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}.")
    for name, value in (("beta_start", beta_start), ("beta_end", beta_end)):
        if not 0.0 < number(value, name) < 1.0:
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}.")
    if beta_start > beta_end:
        raise ValueError(
            f"beta_start ({beta_start}) must not exceed beta_end ({beta_end}): "
            "noise is added more strongly as t grows."
        )
    T = num_steps
    f64 = torch.float64
    if kind == "linear":
        scale = LINEAR_REFERENCE_STEPS / T  # improved-diffusion: the same total noise for any T
        betas = torch.linspace(beta_start * scale, beta_end * scale, T, dtype=f64)
        if bool((betas > MAX_BETA).any()):  # T = 1 takes beta_start alone: nothing to cap
            warnings.warn(
                f"linear schedule with T = {T}: beta_end {beta_end} scaled by 1000 / T is "
                f"{beta_end * scale:.3g}, so betas are capped at {MAX_BETA}. With so few steps "
                "each one adds almost pure noise; use T >= 21 or the cosine schedule.",
                stacklevel=3,
            )
        return betas.clamp(max=MAX_BETA)
    if kind == "scaled_linear":
        return torch.linspace(math.sqrt(beta_start), math.sqrt(beta_end), T, dtype=f64) ** 2
    if kind == "sigmoid":
        return torch.sigmoid(torch.linspace(-6, 6, T, dtype=f64)) * (beta_end - beta_start) + (
            beta_start
        )
    if kind == "flow":
        s = torch.arange(1, T + 1, dtype=f64) / T
        abar = (1 - s) ** 2 / ((1 - s) ** 2 + s**2)
        abar_prev = torch.cat([torch.ones(1, dtype=f64), abar[:-1]])
        return torch.clamp(1 - abar / abar_prev, max=COSINE_MAX_BETA)
    # cosine
    steps = torch.arange(T + 1, dtype=f64) / T
    abar = torch.cos((steps + COSINE_S) / (1 + COSINE_S) * math.pi / 2) ** 2
    return torch.clamp(1 - abar[1:] / abar[:-1], max=COSINE_MAX_BETA)


class NoiseSchedule:
    """The fixed variance schedule beta_1..beta_T of DDPM and every quantity derived from it.

    Args:
        num_steps: T, the number of diffusion steps.
        kind: ``"linear"``, ``"cosine"``, ``"scaled_linear"``, ``"sigmoid"`` or ``"flow"``.
        beta_start, beta_end: first and last beta (not used by ``"cosine"`` and ``"flow"``); for ``"linear"``
            the values for T = 1000, scaled by 1000 / T (see :func:`make_betas`).
        shift: the resolution shift (Hoogeboom et al. 2023, "simple diffusion", sec. 3.1;
            Esser et al. 2024 for flows): every log-SNR lowered by 2 log(shift), i.e. the
            signal-to-noise ratio divided by shift^2 at every t. A picture of side d has
            (d / d_ref)^2 times the pixels of one of side d_ref, and neighbouring pixels
            average the noise away, so the same noise destroys less of it: shift = d / d_ref
            gives the larger picture the noise levels the schedule was tuned for at d_ref. 1:
            the schedule as given. The betas are recomputed from the shifted alpha-bars.

    Warns (``UserWarning``) when abar at the last step is above MAX_FINAL_ALPHA_BAR: then x_T
    is not close to N(0, I), where sampling starts.

    Attributes (all 1-D float64 tensors of length T, index t = 0..T-1):
        betas: beta_t.
        alphas: alpha_t = 1 - beta_t.
        alpha_bars: abar_t = prod_{i<=t} alpha_i.
        alpha_bars_prev: abar_{t-1}, with abar_{-1} = 1 (no noise before the first step).
        sqrt_alpha_bars, sqrt_one_minus_alpha_bars: the two coefficients of q(x_t | x_0) (eq. 4).
        sqrt_recip_alphas: 1 / sqrt(alpha_t), the factor in front of Algorithm 2.
        sqrt_recip_alpha_bars, sqrt_recipm1_alpha_bars: 1/sqrt(abar_t) and sqrt(1/abar_t - 1),
            used to predict x_0 from x_t and the noise (eq. 15 solved for x_0).
        posterior_variance: beta_tilde_t = beta_t (1 - abar_{t-1}) / (1 - abar_t) (eq. 7).
        posterior_mean_coef1, posterior_mean_coef2: the weights of x_0 and x_t in mu_tilde (eq. 7).
        log_snr: log(abar_t / (1 - abar_t)), the signal-to-noise ratio on a log scale.
    """

    def __init__(
        self,
        num_steps: int = 1000,
        kind: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        shift: float = 1.0,
    ) -> None:
        self.num_steps = num_steps
        self.kind = kind
        self.beta_start = beta_start
        self.beta_end = beta_end
        if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not shift > 0:
            raise ValueError(f"shift must be a number > 0 (1: no shift), got {shift!r}.")
        self.shift = float(shift)

        betas = make_betas(num_steps, kind, beta_start, beta_end)
        if self.shift != 1.0:  # log SNR - 2 log(shift), then beta_t = 1 - abar_t / abar_{t-1}
            abar = torch.cumprod(1.0 - betas, dim=0)
            shifted = torch.sigmoid(torch.log(abar / (1.0 - abar)) - 2.0 * math.log(self.shift))
            betas = 1.0 - shifted / torch.cat([torch.ones(1, dtype=torch.float64), shifted[:-1]])
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = torch.cumprod(self.alphas, dim=0)
        self.alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])

        self.sqrt_alpha_bars = self.alpha_bars.sqrt()
        self.sqrt_one_minus_alpha_bars = (1.0 - self.alpha_bars).sqrt()
        self.sqrt_recip_alphas = self.alphas.rsqrt()
        self.sqrt_recip_alpha_bars = self.alpha_bars.rsqrt()
        self.sqrt_recipm1_alpha_bars = (1.0 / self.alpha_bars - 1.0).sqrt()

        # q(x_{t-1} | x_t, x_0) = N(mu_tilde, beta_tilde I), DDPM eq. 6-7.
        self.posterior_variance = betas * (1.0 - self.alpha_bars_prev) / (1.0 - self.alpha_bars)
        self.posterior_mean_coef1 = betas * self.alpha_bars_prev.sqrt() / (1.0 - self.alpha_bars)
        self.posterior_mean_coef2 = (
            (1.0 - self.alpha_bars_prev) * self.alphas.sqrt() / (1.0 - self.alpha_bars)
        )
        self.log_snr = torch.log(self.alpha_bars / (1.0 - self.alpha_bars))
        final = float(self.alpha_bars[-1])
        if final > MAX_FINAL_ALPHA_BAR:
            warnings.warn(
                f"{self!r} (betas used: {float(betas[0]):.3g} to {float(betas[-1]):.3g}): "
                f"alpha-bar at the last step is {final:.3g}, so x_T still holds "
                f"sqrt({final:.3g}) = {math.sqrt(final):.0%} of the picture and is not close to "
                "N(0, I), where sampling starts: samples will come out wrong. Use more steps, "
                "larger betas, or the cosine schedule.",
                stacklevel=2,
            )

    def __len__(self) -> int:
        return self.num_steps

    def __repr__(self) -> str:
        extra = "" if self.kind in ("cosine", "flow") else f", beta_start={self.beta_start}, "
        extra += "" if self.kind in ("cosine", "flow") else f"beta_end={self.beta_end}"
        extra += f", shift={self.shift:g}" if self.shift != 1.0 else ""
        return f"NoiseSchedule(num_steps={self.num_steps}, kind={self.kind!r}{extra})"

    def config(self) -> dict:
        """The arguments that rebuild this schedule (stored in checkpoints; ``shift`` only when
        there is one, so checkpoints written before it existed still match)."""
        config = {
            "num_steps": self.num_steps,
            "kind": self.kind,
            "beta_start": self.beta_start,
            "beta_end": self.beta_end,
        }
        return {**config, "shift": self.shift} if self.shift != 1.0 else config

    def check_t(self, t: Timesteps, batch_size: int | None = None) -> torch.Tensor:
        """Validate timesteps and return them as a LongTensor of shape [B] (or [1] for an int).

        Raises ``ValueError`` naming ``t`` when a value lies outside [0, T-1], when ``t`` is not
        an integer, or when its length does not match ``batch_size``.
        """
        if isinstance(t, bool):
            raise ValueError(f"t must be an int or a LongTensor of timesteps, got {t!r}.")
        if isinstance(t, int):
            t_tensor = torch.tensor([t], dtype=torch.long)
        elif isinstance(t, torch.Tensor):
            if t.dtype.is_floating_point or t.dtype == torch.bool or t.is_complex():
                raise ValueError(f"t must hold integer timesteps, got dtype {t.dtype}.")
            if t.dim() > 1:
                raise ValueError(
                    f"t must be an int or a 1-D tensor [B], got shape {list(t.shape)}."
                )
            t_tensor = t.reshape(-1).long()
        else:
            raise ValueError(
                f"t must be an int or a LongTensor of timesteps, got {type(t).__name__}."
            )
        if t_tensor.numel() == 0:
            raise ValueError("t is empty: give one timestep, or one per image in the batch.")
        lo, hi = int(t_tensor.min()), int(t_tensor.max())
        if lo < 0 or hi > self.num_steps - 1:
            bad = lo if lo < 0 else hi
            raise ValueError(
                f"t = {bad} is outside [0, {self.num_steps - 1}]: timesteps are 0-based, "
                f"t = 0 is the first noising step and t = T-1 = {self.num_steps - 1} the last."
            )
        if batch_size is not None and t_tensor.numel() not in (1, batch_size):
            raise ValueError(
                f"t has {t_tensor.numel()} timesteps but the batch has {batch_size} images: "
                "give one timestep, or one per image."
            )
        return t_tensor

    def gather(self, values: torch.Tensor, t: Timesteps, like: torch.Tensor) -> torch.Tensor:
        """Pick ``values[t]`` and shape it [B, 1, 1, 1] in the dtype and device of ``like``.

        This is the only place where float64 schedule values become the images' precision.
        """
        t_tensor = self.check_t(t, like.shape[0] if like.dim() > 0 else None)
        picked = values[t_tensor.cpu()]
        return picked.to(device=like.device, dtype=like.dtype).reshape(
            -1, *([1] * (like.dim() - 1))
        )

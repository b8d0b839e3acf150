"""The exercise of notebook 04: one step of Algorithm 2."""

from __future__ import annotations

from typing import Callable

import torch

from ...reverse import reverse_step
from ...schedule import NoiseSchedule
from .runner import (
    Case,
    Exercise,
    Mistake,
    Scalar,
    Step,
    T,
    image_shape_hint,
    run,
    schedule,
    schedule_dtype_hint,
)


def check_reverse_step(
    fn: Callable[[torch.Tensor, int, torch.Tensor, NoiseSchedule, torch.Tensor], torch.Tensor],
) -> bool:
    """Check ``fn(x_t, t, predicted_noise, schedule, z) -> x_{t-1}``, DDPM Algorithm 2 line 4
    with sigma_t^2 = beta_t, no clipping, and no noise at t = 0:

        x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) predicted_noise) + sqrt(beta_t) z.

    The reference is ``dh.reverse_step(x_t, t, predicted_noise, schedule, noise=z,
    variance="beta", clip=False)``; the answer must be float32 like ``x_t`` (the schedule's
    float64 values cast where they are picked, as :meth:`NoiseSchedule.gather` does). Cases:
    t = T-1, 500, 1 and 0 (the last step, which must add no noise), and t = 999 with the cosine
    schedule (beta_t = 0.999 there).
    """

    def args(t: int, kind: str = "linear", seed: int = 0) -> Callable[[], tuple]:
        def make() -> tuple:
            g = torch.Generator().manual_seed(seed)
            x_t = torch.randn(2, 3, 4, 4, generator=g)
            predicted = torch.randn(2, 3, 4, 4, generator=g)
            z = torch.randn(2, 3, 4, 4, generator=g)
            return x_t, t, predicted, schedule(kind), z

        return make

    cases = [
        Case(f"t = {T - 1} (the first reverse step, from x_T)", args(T - 1)),
        Case("t = 500", args(500, seed=1)),
        Case("t = 1", args(1, seed=2)),
        Case("t = 0 (the paper's t = 1: the last step, which gives x_0)", args(0, seed=3)),
        Case(f"t = {T - 1} with the cosine schedule", args(T - 1, "cosine", seed=4)),
    ]

    def at(s: NoiseSchedule, values: torch.Tensor, t: int) -> float:
        return float(values[t])

    def right_coef(s: NoiseSchedule, t: int) -> float:
        return at(s, s.betas, t) / at(s, s.sqrt_one_minus_alpha_bars, t)

    def right_front(s: NoiseSchedule, t: int) -> float:
        return at(s, s.sqrt_recip_alphas, t)

    def right_sigma(s: NoiseSchedule, t: int) -> float:
        return at(s, s.betas, t) ** 0.5

    def step(coef: Scalar, front: Scalar, sigma: Scalar, noise_at_0: bool = False) -> Step:
        """Algorithm 2 or a variant: front(s, t) (x_t - coef(s, t) eps) + sigma(s, t) z."""

        def compute(
            x: torch.Tensor, t: int, eps: torch.Tensor, s: NoiseSchedule, z: torch.Tensor
        ) -> torch.Tensor:
            noise = sigma(s, t) if (t != 0 or noise_at_0) else 0.0
            return front(s, t) * (x - coef(s, t) * eps) + noise * z

        return compute

    def package(variance: str, clip: bool) -> Step:
        return lambda x, t, eps, s, z: reverse_step(
            x, t, eps, s, noise=z, variance=variance, clip=clip
        )

    mistakes = [
        Mistake(
            "at t = 0 (the paper's t = 1, the very last step) add no noise: return the mean. "
            "Fresh noise there would stay in the final picture as grain.",
            step(right_coef, right_front, right_sigma, noise_at_0=True),
        ),
        Mistake(
            "you used sigma_t^2 = beta-tilde_t (schedule.posterior_variance); this exercise uses "
            "sigma_t^2 = beta_t, so add sqrt(beta_t) z.",
            step(right_coef, right_front, lambda s, t: at(s, s.posterior_variance, t) ** 0.5),
        ),
        Mistake(
            "missing square root on the noise: sigma_t = sqrt(beta_t); you added beta_t z.",
            step(right_coef, right_front, lambda s, t: at(s, s.betas, t)),
        ),
        Mistake(
            "no fresh noise: for t > 0 add sigma_t z = sqrt(beta_t) z, using the z you are given. "
            "Without it every step only removes noise, and samples come out too smooth.",
            step(right_coef, right_front, lambda s, t: 0.0),
        ),
        Mistake(
            "the predicted noise is scaled by beta_t / sqrt(1 - abar_t) (the paper's "
            "(1 - alpha_t) / sqrt(1 - alpha-bar_t)); you used beta_t alone, without dividing by "
            "sqrt(1 - abar_t).",
            step(lambda s, t: at(s, s.betas, t), right_front, right_sigma),
        ),
        Mistake(
            "missing square root in the noise coefficient: beta_t / sqrt(1 - abar_t), not "
            "beta_t / (1 - abar_t).",
            step(
                lambda s, t: at(s, s.betas, t) / (1 - at(s, s.alpha_bars, t)),
                right_front,
                right_sigma,
            ),
        ),
        Mistake(
            "the noise coefficient is beta_t / sqrt(1 - abar_t): you used sqrt(1 - abar_t), the "
            "noise share of x_t in eq. 4. One step removes only a sliver of the predicted noise.",
            step(lambda s, t: at(s, s.sqrt_one_minus_alpha_bars, t), right_front, right_sigma),
        ),
        Mistake(
            "alpha instead of alpha-bar: the noise coefficient is beta_t / sqrt(1 - "
            "alpha-bar_t), the product over all steps so far, not beta_t / sqrt(1 - alpha_t).",
            step(lambda s, t: at(s, s.betas, t) ** 0.5, right_front, right_sigma),
        ),
        Mistake(
            "the factor in front is 1 / sqrt(alpha_t) of this one step, not 1 / sqrt(alpha-bar_t).",
            step(right_coef, lambda s, t: at(s, s.sqrt_recip_alpha_bars, t), right_sigma),
        ),
        Mistake(
            "missing the factor 1 / sqrt(alpha_t) in front of the bracket.",
            step(right_coef, lambda s, t: 1.0, right_sigma),
        ),
        Mistake(
            "sign: subtract the scaled predicted noise from x_t, don't add it.",
            step(lambda s, t: -right_coef(s, t), right_front, right_sigma),
        ),
        Mistake(
            "you used the schedule's values of step t - 1. t is 0-based and the step from x_t "
            "uses beta_t, alpha_t and abar_t at index t.",
            step(
                lambda s, t: right_coef(s, t - 1),
                lambda s, t: right_front(s, t - 1),
                lambda s, t: right_sigma(s, t - 1),
            ),
        ),
        Mistake(
            "you clipped x0_hat to [-1, 1] (dh.reverse_step's default, clip=True). This "
            "exercise is Algorithm 2 as written: no clipping (clip=False).",
            package("beta", True),
        ),
        Mistake(
            "that is dh.reverse_step with its defaults (sigma^2 = beta-tilde and clipping). "
            "This exercise is Algorithm 2 as written, with sigma_t^2 = beta_t and no clipping.",
            package("posterior", True),
        ),
    ]

    return run(
        Exercise(
            name="reverse_step",
            signature="reverse_step(x_t, t, predicted_noise, schedule, z)",
            cases=cases,
            reference=package("beta", False),
            mistakes=mistakes,
            success="your reverse_step is Algorithm 2 (sigma_t^2 = beta_t, no noise at t = 0)",
            like="x_t",
            shape_hint=image_shape_hint,
            dtype_hint=schedule_dtype_hint("x_t"),
        ),
        fn,
    )

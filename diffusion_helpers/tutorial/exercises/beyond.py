"""The exercises of notebook 07: the score from the noise prediction, one Langevin step, the
flow-matching loss and one Euler step of a flow."""

from __future__ import annotations

from typing import Callable

import torch

from ...schedule import NoiseSchedule
from .runner import Case, Exercise, Mistake, T, image_shape_hint, run, schedule, schedule_dtype_hint


def _images(seed: int, count: int, shape: tuple = (2, 3, 4, 4)) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(count)]


def check_score(fn: Callable[[torch.Tensor, int, NoiseSchedule], torch.Tensor]) -> bool:
    """Check ``fn(predicted_noise, t, schedule) -> score``, Tweedie's formula (S-1 of
    :mod:`...score`): score = -predicted_noise / sqrt(1 - abar_t), float32 like the noise, for
    an int t. Cases: t = T-1, 500 and 0 (where sqrt(1 - abar_0) = 0.01 makes the score 100
    times the noise), and the cosine schedule."""

    def args(t: int, kind: str = "linear", seed: int = 0) -> Callable[[], tuple]:
        return lambda: (*_images(seed, 1), t, schedule(kind))

    def scaled(factor: Callable[[NoiseSchedule, int], float]) -> Callable[..., torch.Tensor]:
        return lambda eps, t, s: eps * factor(s, t)

    cases = [
        Case(f"t = {T - 1}", args(T - 1)),
        Case("t = 500", args(500, seed=1)),
        Case("t = 0, almost no noise: a steep score", args(0, seed=2)),
        Case("t = 700 with the cosine schedule", args(700, "cosine", seed=3)),
    ]
    root = lambda s, t: float(s.sqrt_one_minus_alpha_bars[t])  # noqa: E731
    mistakes = [
        Mistake(
            "sign: the score points towards the data, against the noise: -predicted_noise / "
            "sqrt(1 - abar_t).",
            scaled(lambda s, t: 1 / root(s, t)),
        ),
        Mistake(
            "missing square root: divide by sqrt(1 - abar_t), the noise's standard deviation in "
            "eq. 4, not by its variance 1 - abar_t.",
            scaled(lambda s, t: -1 / float(1 - s.alpha_bars[t])),
        ),
        Mistake(
            "you multiplied by sqrt(1 - abar_t): divide by it (the score of N(mu, sigma^2) is "
            "-(x - mu) / sigma^2 = -eps / sigma).",
            scaled(lambda s, t: -root(s, t)),
        ),
        Mistake(
            "alpha-bar, not beta: the noise in x_t has standard deviation sqrt(1 - abar_t); you "
            "divided by sqrt(beta_t), one step's noise.",
            scaled(lambda s, t: -1 / float(s.betas[t]) ** 0.5),
        ),
        Mistake(
            "that is -eps / sqrt(abar_t): the noise's share is sqrt(1 - abar_t), the picture's "
            "sqrt(abar_t).",
            scaled(lambda s, t: -1 / float(s.sqrt_alpha_bars[t])),
        ),
    ]
    return run(
        Exercise(
            name="score",
            signature="score(predicted_noise, t, schedule)",
            cases=cases,
            reference=lambda eps, t, s: -eps / s.sqrt_one_minus_alpha_bars[t].float(),
            mistakes=mistakes,
            success="your score is Tweedie's -eps_theta / sqrt(1 - abar_t)",
            like="predicted_noise",
            shape_hint=image_shape_hint,
            dtype_hint=schedule_dtype_hint("predicted_noise"),
        ),
        fn,
    )


def check_langevin_step(
    fn: Callable[[torch.Tensor, torch.Tensor, float, torch.Tensor], torch.Tensor],
) -> bool:
    """Check ``fn(x, score, step_size, z) -> x'``, one step of Langevin dynamics (S-4):
    x + step_size * score + sqrt(2 step_size) z, with the z given; step_size is a float."""

    def args(step: float, seed: int) -> Callable[[], tuple]:
        def make() -> tuple:
            x, score, z = _images(seed, 3)
            return x, score * 3, step, z

        return make

    cases = [
        Case("step size 0.01", args(0.01, 0)),
        Case("step size 0.5", args(0.5, 1)),
        Case("step size 2e-4", args(2e-4, 2)),
    ]
    mistakes = [
        Mistake(
            "the noise is sqrt(2 step_size) z: you left out the 2 (that is the convention with "
            "step_size / 2 in front of the score, which this one is not).",
            lambda x, s, d, z: x + d * s + d**0.5 * z,
        ),
        Mistake(
            "missing square root on the noise: sqrt(2 step_size) z, not 2 step_size z.",
            lambda x, s, d, z: x + d * s + 2 * d * z,
        ),
        Mistake(
            "that is step_size / 2 on the score: here the drift is step_size * score.",
            lambda x, s, d, z: x + d / 2 * s + (2 * d) ** 0.5 * z,
        ),
        Mistake(
            "sign: go up the score (towards higher density), x + step_size * score.",
            lambda x, s, d, z: x - d * s + (2 * d) ** 0.5 * z,
        ),
        Mistake(
            "no noise: without sqrt(2 step_size) z the step only climbs the density, and every "
            "point ends on a peak instead of being a sample.",
            lambda x, s, d, z: x + d * s,
        ),
    ]
    return run(
        Exercise(
            name="langevin_step",
            signature="langevin_step(x, score, step_size, z)",
            cases=cases,
            reference=lambda x, s, d, z: x + d * s + (2 * d) ** 0.5 * z,
            mistakes=mistakes,
            success="your step is x + delta score + sqrt(2 delta) z",
            like="x",
            shape_hint=image_shape_hint,
        ),
        fn,
    )


def check_flow_loss(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(predicted_velocity, x0, noise) -> loss``, the flow-matching loss (FM-2 of
    :mod:`...flow`): the mean over everything of (predicted_velocity - (noise - x0))^2, a
    float32 0-dim tensor passing the reference's gradient back to ``predicted_velocity``."""

    def args(shape: tuple, seed: int) -> Callable[[], tuple]:
        def make() -> tuple:
            x0, noise, error = _images(seed, 3, shape)
            return ((noise - x0) + 0.5 * error).requires_grad_(True), x0, noise

        return make

    cases = [
        Case("a batch of 2 images 3x4x4", args((2, 3, 4, 4), 0)),
        Case("a batch of 1 image 1x6x6", args((1, 1, 6, 6), 1)),
    ]
    mse = lambda a, b: ((a - b) ** 2).mean()  # noqa: E731
    mistakes = [
        Mistake(
            "the velocity points from the picture to the noise, d/ds ((1 - s) x0 + s noise) = "
            "noise - x0: you used x0 - noise.",
            lambda v, x0, n: mse(v, x0 - n),
        ),
        Mistake(
            "that is DDPM's target, the noise: flow matching's is the velocity noise - x0.",
            lambda v, x0, n: mse(v, n),
        ),
        Mistake(
            "that is the x0 target: flow matching's is the velocity noise - x0.",
            lambda v, x0, n: mse(v, x0),
        ),
        Mistake(
            "you summed the squared differences: take their mean, as in Algorithm 1's loss.",
            lambda v, x0, n: ((v - (n - x0)) ** 2).sum(),
        ),
        Mistake(
            "the differences are not squared: use ((predicted_velocity - (noise - x0)) ** 2).mean().",
            lambda v, x0, n: (v - (n - x0)).abs().mean(),
        ),
    ]
    return run(
        Exercise(
            name="flow_loss",
            signature="flow_loss(predicted_velocity, x0, noise)",
            cases=cases,
            reference=lambda v, x0, n: mse(v, n - x0),
            mistakes=mistakes,
            success="your loss is flow matching's || (noise - x0) - v_theta ||^2",
            like="predicted_velocity",
            gradient_of="predicted_velocity",
        ),
        fn,
    )


def check_euler_step(
    fn: Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor],
) -> bool:
    """Check ``fn(x, v, s, s_next) -> x_next``, one Euler step of dx/ds = v from s down to
    s_next (FM-3): x + (s_next - s) v, for floats 1 >= s > s_next >= 0."""

    def args(s: float, s_next: float, seed: int) -> Callable[[], tuple]:
        return lambda: (*_images(seed, 2), s, s_next)

    cases = [
        Case("from s = 1, pure noise, to 0.9", args(1.0, 0.9, 0)),
        Case("from s = 0.5 to 0.25", args(0.5, 0.25, 1)),
        Case("the last step, from s = 0.1 to 0, the picture", args(0.1, 0.0, 2)),
    ]
    mistakes = [
        Mistake(
            "sign: s goes down, so s_next - s < 0 and the step moves against v (from the noise "
            "towards the picture): x + (s_next - s) v.",
            lambda x, v, s, sn: x + (s - sn) * v,
        ),
        Mistake(
            "the step is (s_next - s) v, the change of s times the velocity: you used s_next * v.",
            lambda x, v, s, sn: x + sn * v,
        ),
        Mistake(
            "the step is (s_next - s) v: you used s * v, the whole way to the picture at once.",
            lambda x, v, s, sn: x - s * v,
        ),
    ]
    return run(
        Exercise(
            name="euler_step",
            signature="euler_step(x, v, s, s_next)",
            cases=cases,
            reference=lambda x, v, s, sn: x + (sn - s) * v,
            mistakes=mistakes,
            success="your step is x + (s_next - s) v",
            like="x",
            shape_hint=image_shape_hint,
        ),
        fn,
    )

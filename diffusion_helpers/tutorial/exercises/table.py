"""The table of exercises: one row per "your turn" cell of the notebooks, which is its checker
(``check_q_sample(q_sample)`` runs the one judge, :func:`.judge.check`, on that row). A row holds
the cases the learner's function is tried on, the package's reference, and the known mistakes,
each beside the hint that names it. Timesteps are 0-based: code t is the paper's t + 1.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
import torch.nn.functional as F

from ...flow import euler_step, velocity
from ...forward import add_noise
from ...reverse import reverse_step
from ...schedule import NoiseSchedule
from ...score import langevin_step, score_from_noise
from .judge import Exercise

T = 1000  # DDPM's number of steps; the cases use its linear and the cosine schedule
Factor = Callable[[NoiseSchedule, int], Any]  # a schedule value at step t
# Words that several hints share
CUMPROD = "torch.cumprod(1 - betas, dim=0)"
GATHER = "schedule.gather(schedule.alpha_bars, t, x0)"
ZERO_BASED = "t is 0-based: code t is the paper's t + 1, and schedule.alpha_bars[t] belongs to it."
NOT_SQUARED = (
    "the differences are not squared: positive and negative errors cancel. Use "
    "((predicted_noise - noise) ** 2).mean()."
)
COEF = "the noise coefficient is beta_t / sqrt(1 - abar_t)"


def randn(seed: int, count: int, shape: tuple = (2, 3, 4, 4)) -> list[torch.Tensor]:
    """``count`` float32 tensors of N(0, 1) values, drawn from ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(count)]


def images_at(t: Any, kind: str = "linear", batch: int = 2, seed: int = 0) -> tuple:
    """q_sample's arguments: x0 in [-1, 1] and noise [batch, 3, 4, 5], t (a list becomes a
    LongTensor, one step per image), a schedule."""
    g = torch.Generator().manual_seed(seed)
    x0 = torch.rand(batch, 3, 4, 5, generator=g) * 2 - 1
    noise = torch.randn(batch, 3, 4, 5, generator=g)
    return x0, torch.tensor(t) if isinstance(t, list) else t, noise, NoiseSchedule(T, kind)


def eq4(
    values: Callable = lambda s: s.alpha_bars,
    later: int = 0,
    root_x0: bool = True,
    root_noise: bool = True,
) -> Callable:
    """Eq. 4 as a learner may get it wrong: abar from ``values(schedule)`` (the alpha-bars, by
    default) at t + ``later``, with or without the square root of each coefficient."""

    def q_sample(x0: torch.Tensor, t: Any, noise: torch.Tensor, s: NoiseSchedule) -> torch.Tensor:
        abar = s.gather(values(s), t + later, x0)
        a, b = (abar.sqrt() if root_x0 else abar), ((1 - abar).sqrt() if root_noise else 1 - abar)
        return a * x0 + b * noise

    return q_sample


def prediction_and_noise(shape: tuple, seed: int, scale: float = 1.0) -> tuple:
    """The loss's arguments: a prediction scale * noise + 0.5 N(0, 1) that requires grad, the
    noise."""
    noise, error = randn(seed, 2, shape)
    return (noise * scale + 0.5 * error).requires_grad_(True), noise


def velocity_x0_and_noise(shape: tuple, seed: int) -> tuple:
    """The flow loss's arguments: a prediction noise - x0 + 0.5 N(0, 1) that requires grad, x0,
    the noise."""
    x0, noise, error = randn(seed, 3, shape)
    return (noise - x0 + 0.5 * error).requires_grad_(True), x0, noise


def algorithm_2(
    coef: Optional[Factor] = None,
    front: Optional[Factor] = None,
    sigma: Optional[Factor] = None,
    noise_at_0: bool = False,
    lag: int = 0,
) -> Callable[..., torch.Tensor]:
    """Algorithm 2, line 4, as a learner may get it wrong: front (x_t - coef eps) + sigma z,
    each factor a function of (schedule, t) taken at step t - ``lag``, no noise at t = 0 unless
    ``noise_at_0``. Without arguments: the right step, with sigma_t^2 = beta_t."""
    coef = coef or (lambda s, t: s.betas[t] / s.sqrt_one_minus_alpha_bars[t])
    front = front or (lambda s, t: s.sqrt_recip_alphas[t])
    sigma = sigma or (lambda s, t: s.betas[t].sqrt())

    def step(
        x: torch.Tensor, t: int, eps: torch.Tensor, s: NoiseSchedule, z: torch.Tensor
    ) -> torch.Tensor:
        noise = float(sigma(s, t - lag)) if t > 0 or noise_at_0 else 0.0
        return float(front(s, t - lag)) * (x - float(coef(s, t - lag)) * eps) + noise * z

    return step


def package_step(variance: str, clip: bool) -> Callable[..., torch.Tensor]:
    """``dh.reverse_step`` called as the exercise's ``reverse_step(x_t, t, eps, schedule, z)``."""
    return lambda x, t, eps, s, z: reverse_step(x, t, eps, s, noise=z, variance=variance, clip=clip)


def noisy_images_at(t: int, kind: str = "linear", seed: int = 0) -> tuple:
    """reverse_step's arguments: x_t, t, the predicted noise, a schedule, z."""
    x_t, eps, z = randn(seed, 3)
    return x_t, t, eps, NoiseSchedule(T, kind), z


def langevin_case(step_size: float, seed: int) -> tuple:
    """langevin_step's arguments: x, a score three times as large as N(0, 1), the step, z."""
    x, score, z = randn(seed, 3)
    return x, 3 * score, step_size, z


def scaled(factor: Factor) -> Callable[..., torch.Tensor]:
    """A score that multiplies the noise by ``factor(schedule, t)`` (the known mistakes)."""
    return lambda eps, t, s: eps * float(factor(s, t))


# fmt: off
# abar_t = prod_{s <= t} (1 - beta_s), for betas [T] float64
check_alpha_bar = Exercise(
    "alpha_bar(betas)",
    reference=lambda b: torch.cumprod(1 - b, 0),  # as NoiseSchedule computes alpha_bars
    cases={
        "betas = [0.1, 0.2, 0.3, 0.4]": (torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64),),
        f"DDPM's linear betas, T = {T}": (NoiseSchedule(T).betas,),
        f"the cosine schedule's betas, T = {T}": (NoiseSchedule(T, "cosine").betas,),
    },
    mistakes=[  # (a known wrong variant, its hint)
        (lambda b: torch.cumsum(1 - b, 0),
         f"you added up the alphas (cumsum): alpha-bar is their running *product*, {CUMPROD}."),
        (lambda b: 1 - torch.cumsum(b, 0),
         "1 - (sum of the betas) is only the first-order approximation of the product: "
         f"{CUMPROD}."),
        (lambda b: torch.cumprod(b, 0),
         "you multiplied the betas: alpha-bar multiplies alpha_t = 1 - beta_t."),
        (lambda b: 1 - b,
         "that is alpha_t = 1 - beta_t of a single step: alpha-bar_t is the running product "
         "alpha_0 * alpha_1 * ... * alpha_t (torch.cumprod)."),
        (lambda b: torch.cumprod(1 - b, 0).sqrt(),
         "you took a square root: alpha-bar is the product itself (its square root is the "
         "coefficient of x_0 in eq. 4, which comes later)."),
        (lambda b: torch.cat([b.new_ones(1), torch.cumprod(1 - b, 0)[:-1]]),
         "off by one step: your first value is 1. In 0-based code, abar[0] = 1 - beta[0] "
         "already includes the first step (the paper's t = 1)."),
        (lambda b: torch.prod(1 - b),
         "you returned a single number (torch.prod, .sum() or [-1] keep only one): alpha-bar "
         f"has one value per step, {CUMPROD}."),
    ],
    success="your alpha_bar is the running product of alpha_t = 1 - beta_t",
)

# eq. 4: x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, for x0, noise float32 [B, C, H, W] and
# t an int or a LongTensor [B]
check_q_sample = Exercise(
    "q_sample(x0, t, noise, schedule)",
    reference=lambda x0, t, noise, s: add_noise(x0, t, s, noise=noise)[0],
    cases={
        "t = 300": images_at(300),
        "t = 0 (the first step: x_1 in the paper)": images_at(0, seed=1),
        f"t = {T - 1} (the last step: x_T)": images_at(T - 1, seed=2),
        f"t = tensor({[0, 250, T - 1]}), one step per image":
            images_at([0, 250, T - 1], batch=3, seed=3),
        "t = 500 with the cosine schedule": images_at(500, "cosine", seed=4),
    },
    mistakes=[
        (eq4(root_x0=False, root_noise=False),
         "missing square roots: eq. 4 multiplies x0 by sqrt(abar_t) and the noise by "
         "sqrt(1 - abar_t), its standard deviation (1 - abar_t is its variance)."),
        (eq4(root_noise=False),
         "the noise's coefficient needs a square root: sqrt(1 - abar_t), the standard "
         "deviation, not the variance 1 - abar_t."),
        (eq4(root_x0=False),
         "the picture's coefficient needs a square root: sqrt(abar_t), not abar_t."),
        (eq4(lambda s: s.alphas),
         "you used alpha_t = 1 - beta_t, one step from x_{t-1} (eq. 2). The jump from x_0 needs "
         "alpha-bar_t, the product of all alphas so far: schedule.alpha_bars."),
        (eq4(lambda s: s.alpha_bars_prev),
         f"you used alpha-bar of the step before (alpha_bars[t - 1]). {ZERO_BASED}"),
        (eq4(later=1),
         f"you used alpha-bar of the step after (alpha_bars[t + 1]). {ZERO_BASED}"),
        (eq4(lambda s: s.alpha_bars.roll(1)),
         f"you used alpha_bars[t - 1]: at t = 0 that wraps round to the *last* step. {ZERO_BASED}"),
    ],
    errors=[  # (a regular expression on the learner's error, its hint)
        ("must match the size",
         "with t a tensor [B], alpha_bars[t] is [B] and does not line up with x0 [B, C, H, W]: "
         f"reshape it to [B, 1, 1, 1] (.view(-1, 1, 1, 1)), or use {GATHER}."),
        ("Boolean value|one element|cannot be converted",
         "here t is a tensor, one step per image: `if t`, int(t), float(...) and .item() need a "
         f"single number. {GATHER} picks one value per image."),
    ],
    success="your q_sample matches eq. 4 (dh.add_noise)",
)

# Algorithm 1's loss: the mean over the batch and every pixel of (predicted_noise - noise)^2, a
# float32 0-dim tensor whose gradient with respect to predicted_noise is 2 (p - n) / N
check_loss = Exercise(
    "loss(predicted_noise, noise)",
    reference=F.mse_loss,
    cases={
        "a batch of 4 images 3x8x8": prediction_and_noise((4, 3, 8, 8), 0),
        "a batch of 1 image 1x4x4": prediction_and_noise((1, 1, 4, 4), 1),
        "a batch of 2 images 3x6x6, prediction far off": prediction_and_noise((2, 3, 6, 6), 2, -2),
    },
    mistakes=[
        (lambda p, n: ((p - n) ** 2).sum(),
         "you summed the squared differences: take their mean (.mean()), which stays near 1 "
         "whatever the image size (the paper's sum only rescales it)."),
        (lambda p, n: ((p - n) ** 2).flatten(1).sum(1).mean(),
         "you summed over the pixels and averaged over the batch: here the loss is the mean "
         "over the pixels too."),
        (lambda p, n: ((p - n) ** 2).flatten(1).mean(1).sum(),
         "you averaged over the pixels but summed over the batch: take the mean over "
         "everything, so the loss does not grow with the batch size."),
        (lambda p, n: (p - n).mean(), NOT_SQUARED),
        (lambda p, n: (n - p).mean(), NOT_SQUARED),
        (lambda p, n: (p - n).abs().mean(),
         "that is the mean *absolute* error (L1); Algorithm 1 squares the differences."),
        (lambda p, n: ((p - n) ** 2).mean().sqrt(),
         "that is the root of the mean squared error: drop the square root."),
        (lambda p, n: (p**2 - n**2).mean(),
         "you took a difference of squares, p^2 - n^2: square the difference, (p - n)^2."),
        (lambda p, n: (p - n) ** 2,
         "that is one value per pixel: the loss is one number, their mean (.mean())."),
        (lambda p, n: ((p - n) ** 2).flatten(1).mean(1),
         "you returned one loss per image: average over the batch too (.mean() of everything)."),
    ],
    success="your loss is the mean squared difference of Algorithm 1",
    gradient_of="predicted_noise",
)

# Algorithm 2, line 4, with sigma_t^2 = beta_t, no clipping, no noise at t = 0, float32 like x_t:
# x_{t-1} = 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - abar_t) predicted_noise) + sqrt(beta_t) z
check_reverse_step = Exercise(
    "reverse_step(x_t, t, predicted_noise, schedule, z)",
    reference=package_step("beta", clip=False),
    cases={
        f"t = {T - 1} (the first reverse step, from x_T)": noisy_images_at(T - 1),
        "t = 500": noisy_images_at(500, seed=1),
        "t = 1": noisy_images_at(1, seed=2),
        "t = 0 (the paper's t = 1: the last step, which gives x_0)": noisy_images_at(0, seed=3),
        f"t = {T - 1} with the cosine schedule": noisy_images_at(T - 1, "cosine", seed=4),
    },
    mistakes=[
        (algorithm_2(noise_at_0=True),
         "at t = 0 (the paper's t = 1, the very last step) add no noise: return the mean. "
         "Fresh noise there would stay in the final picture as grain."),
        (algorithm_2(sigma=lambda s, t: s.posterior_variance[t].sqrt()),
         "you used sigma_t^2 = beta-tilde_t (schedule.posterior_variance); this exercise uses "
         "sigma_t^2 = beta_t, so add sqrt(beta_t) z."),
        (algorithm_2(sigma=lambda s, t: s.betas[t]),
         "missing square root on the noise: sigma_t = sqrt(beta_t); you added beta_t z."),
        (algorithm_2(sigma=lambda s, t: 0.0),
         "no fresh noise: for t > 0 add sigma_t z = sqrt(beta_t) z with the z you are given, "
         "or every step only removes noise and samples come out too smooth."),
        (algorithm_2(coef=lambda s, t: s.betas[t]),
         f"you used beta_t alone: {COEF}, the paper's (1 - alpha_t) / sqrt(1 - alpha-bar_t)."),
        (algorithm_2(coef=lambda s, t: s.betas[t] / (1 - s.alpha_bars[t])),
         f"missing square root in the noise coefficient: {COEF}, not beta_t / (1 - abar_t)."),
        (algorithm_2(coef=lambda s, t: s.sqrt_one_minus_alpha_bars[t]),
         f"you used sqrt(1 - abar_t), the noise share of x_t in eq. 4: {COEF}. One step "
         "removes only a sliver of the predicted noise."),
        (algorithm_2(coef=lambda s, t: s.betas[t].sqrt()),  # beta_t / sqrt(1 - alpha_t)
         f"alpha instead of alpha-bar: {COEF}, not beta_t / sqrt(1 - alpha_t)."),
        (algorithm_2(front=lambda s, t: s.sqrt_recip_alpha_bars[t]),
         "the factor in front is 1 / sqrt(alpha_t) of this one step, not 1 / sqrt(alpha-bar_t)."),
        (algorithm_2(front=lambda s, t: 1.0),
         "missing the factor 1 / sqrt(alpha_t) in front of the bracket."),
        (algorithm_2(coef=lambda s, t: -s.betas[t] / s.sqrt_one_minus_alpha_bars[t]),
         "sign: subtract the scaled predicted noise from x_t, don't add it."),
        (algorithm_2(lag=1),
         "you used the schedule's values of step t - 1: t is 0-based, and the step from x_t "
         "uses beta_t, alpha_t and abar_t at index t."),
        (package_step("beta", clip=True),
         "you clipped x0_hat to [-1, 1] (dh.reverse_step's default, clip=True). This exercise "
         "is Algorithm 2 as written: no clipping (clip=False)."),
        (package_step("posterior", clip=True),
         "that is dh.reverse_step with its defaults (sigma^2 = beta-tilde and clipping). This "
         "exercise is Algorithm 2 as written, with sigma_t^2 = beta_t and no clipping."),
    ],
    success="your reverse_step is Algorithm 2 (sigma_t^2 = beta_t, no noise at t = 0)",
)

# Tweedie's formula (S-1 of score.py): -predicted_noise / sqrt(1 - abar_t), for an int t
check_score = Exercise(
    "score(predicted_noise, t, schedule)",
    reference=score_from_noise,
    cases={
        f"t = {T - 1}": (*randn(0, 1), T - 1, NoiseSchedule(T)),
        "t = 500": (*randn(1, 1), 500, NoiseSchedule(T)),
        "t = 0, almost no noise: a steep score": (*randn(2, 1), 0, NoiseSchedule(T)),
        "t = 700 with the cosine schedule": (*randn(3, 1), 700, NoiseSchedule(T, "cosine")),
    },
    mistakes=[
        (scaled(lambda s, t: 1 / s.sqrt_one_minus_alpha_bars[t]),
         "sign: the score points towards the data, against the noise: -predicted_noise / "
         "sqrt(1 - abar_t)."),
        (scaled(lambda s, t: -1 / (1 - s.alpha_bars[t])),
         "missing square root: divide by sqrt(1 - abar_t), the noise's standard deviation in "
         "eq. 4, not by its variance 1 - abar_t."),
        (scaled(lambda s, t: -s.sqrt_one_minus_alpha_bars[t]),
         "you multiplied by sqrt(1 - abar_t): divide by it (the score of N(mu, sigma^2) is "
         "-(x - mu) / sigma^2 = -eps / sigma)."),
        (scaled(lambda s, t: -1 / s.betas[t].sqrt()),
         "you divided by sqrt(beta_t), one step's noise: the noise in x_t has standard "
         "deviation sqrt(1 - abar_t)."),
        (scaled(lambda s, t: -1 / s.sqrt_alpha_bars[t]),
         "that is -eps / sqrt(abar_t): the noise's share is sqrt(1 - abar_t), the picture's "
         "sqrt(abar_t)."),
    ],
    success="your score is Tweedie's -eps_theta / sqrt(1 - abar_t)",
)

# One step of Langevin dynamics (S-4): x + step_size score + sqrt(2 step_size) z, for a float step
check_langevin_step = Exercise(
    "langevin_step(x, score, step_size, z)",
    reference=langevin_step,
    cases={
        "step size 0.01": langevin_case(0.01, seed=0),
        "step size 0.5": langevin_case(0.5, seed=1),
        "step size 2e-4": langevin_case(2e-4, seed=2),
    },
    mistakes=[
        (lambda x, s, d, z: x + d * s + d**0.5 * z,
         "the noise is sqrt(2 step_size) z: you left out the 2 (that goes with step_size / 2 "
         "on the score, which this step does not have)."),
        (lambda x, s, d, z: x + d * s + 2 * d * z,
         "missing square root on the noise: sqrt(2 step_size) z, not 2 step_size z."),
        (lambda x, s, d, z: x + d / 2 * s + (2 * d) ** 0.5 * z,
         "that is step_size / 2 on the score: here the drift is step_size * score."),
        (lambda x, s, d, z: x - d * s + (2 * d) ** 0.5 * z,
         "sign: go up the score (towards higher density), x + step_size * score."),
        (lambda x, s, d, z: x + d * s,
         "no noise: without sqrt(2 step_size) z every point climbs to a peak of the density "
         "instead of becoming a sample."),
    ],
    success="your step is x + delta score + sqrt(2 delta) z",
)

# Flow matching's loss (FM-2): the mean of (predicted_velocity - (noise - x0))^2, a float32 0-dim
# tensor with the right gradient
check_flow_loss = Exercise(
    "flow_loss(predicted_velocity, x0, noise)",
    reference=lambda v, x0, noise: F.mse_loss(v, velocity(x0, noise)),
    cases={
        "a batch of 2 images 3x4x4": velocity_x0_and_noise((2, 3, 4, 4), seed=0),
        "a batch of 1 image 1x6x6": velocity_x0_and_noise((1, 1, 6, 6), seed=1),
    },
    mistakes=[
        (lambda v, x0, n: F.mse_loss(v, x0 - n),
         "the velocity d/ds ((1 - s) x0 + s noise) = noise - x0 points from the picture to the "
         "noise: you used x0 - noise."),
        (lambda v, x0, n: F.mse_loss(v, n),
         "that is DDPM's target, the noise: flow matching's is the velocity noise - x0."),
        (lambda v, x0, n: F.mse_loss(v, x0),
         "that is the x0 target: flow matching's is the velocity noise - x0."),
        (lambda v, x0, n: ((v - (n - x0)) ** 2).sum(),
         "you summed the squared differences: take their mean, as in Algorithm 1's loss."),
        (lambda v, x0, n: (v - (n - x0)).abs().mean(),
         "the differences are not squared: ((predicted_velocity - (noise - x0)) ** 2).mean()."),
    ],
    success="your loss is flow matching's || (noise - x0) - v_theta ||^2",
    gradient_of="predicted_velocity",
)

# One Euler step of dx/ds = v from s down to s_next (FM-3): x + (s_next - s) v, 1 >= s > s_next >= 0
check_euler_step = Exercise(
    "euler_step(x, v, s, s_next)",
    reference=euler_step,
    cases={
        "from s = 1, pure noise, to 0.9": (*randn(0, 2), 1.0, 0.9),
        "from s = 0.5 to 0.25": (*randn(1, 2), 0.5, 0.25),
        "the last step, from s = 0.1 to 0, the picture": (*randn(2, 2), 0.1, 0.0),
    },
    mistakes=[
        (lambda x, v, s, sn: x + (s - sn) * v,
         "sign: s goes down, so s_next - s < 0 and the step moves against v, from the noise "
         "towards the picture: x + (s_next - s) v."),
        (lambda x, v, s, sn: x + sn * v,
         "the step is (s_next - s) v, the change of s times the velocity: you used s_next * v."),
        (lambda x, v, s, sn: x - s * v,
         "the step is (s_next - s) v: you used s * v, the whole way to the picture at once."),
    ],
    success="your step is x + (s_next - s) v",
)
# fmt: on

"""Exercises of notebook 02: alpha-bar, the running product, and q(x_t | x_0) (eq. 4)."""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch

from ...forward import add_noise
from ...schedule import NoiseSchedule
from .runner import (
    Case,
    Exercise,
    Mistake,
    T,
    describe,
    image_shape_hint,
    run,
    schedule,
    schedule_dtype_hint,
)


def check_alpha_bar(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(betas) -> alpha_bars``: abar_t = prod_{s <= t} (1 - beta_s), for t = 0..T-1.

    ``betas`` is a float64 tensor [T]; the answer must be a float64 tensor [T] (the schedule
    keeps its arrays in float64). Cases: four hand-picked betas (0.1, 0.2, 0.3, 0.4 give 0.9,
    0.72, 0.504, 0.3024), DDPM's linear schedule and the cosine schedule, both with T = 1000.
    """
    four = torch.tensor([0.1, 0.2, 0.3, 0.4], dtype=torch.float64)
    cases = [
        Case("betas = [0.1, 0.2, 0.3, 0.4]", lambda: (four.clone(),)),
        Case("DDPM's linear betas, T = 1000", lambda: (NoiseSchedule(T, "linear").betas,)),
        Case("the cosine schedule's betas, T = 1000", lambda: (NoiseSchedule(T, "cosine").betas,)),
    ]
    mistakes = [
        Mistake(
            "you added up the alphas (cumsum): alpha-bar is their running *product*, "
            "torch.cumprod(1 - betas, dim=0).",
            lambda b: torch.cumsum(1 - b, 0),
        ),
        Mistake(
            "1 - (sum of the betas) is only the first-order approximation of the product: "
            "alpha-bar is torch.cumprod(1 - betas, dim=0).",
            lambda b: 1 - torch.cumsum(b, 0),
        ),
        Mistake(
            "you multiplied the betas: alpha-bar multiplies alpha_t = 1 - beta_t.",
            lambda b: torch.cumprod(b, 0),
        ),
        Mistake(
            "that is alpha_t = 1 - beta_t of a single step: alpha-bar_t is the running product "
            "alpha_0 * alpha_1 * ... * alpha_t (torch.cumprod).",
            lambda b: 1 - b,
        ),
        Mistake(
            "you took a square root: alpha-bar is the product itself (its square root is the "
            "coefficient of x_0 in eq. 4, which comes later).",
            lambda b: torch.cumprod(1 - b, 0).sqrt(),
        ),
        Mistake(
            "off by one step: your first value is 1. In 0-based code, abar[0] = 1 - beta[0] "
            "already includes the first step (the paper's t = 1).",
            lambda b: torch.cat([torch.ones(1, dtype=b.dtype), torch.cumprod(1 - b, 0)[:-1]]),
        ),
    ]

    def shape_hint(got: torch.Tensor, args: tuple, expected: torch.Tensor) -> Optional[str]:
        if got.numel() == 1:
            return (
                "You returned a single number: alpha-bar has one value per step (torch.prod, "
                ".sum() or [-1] keep only one); torch.cumprod(1 - betas, dim=0) keeps them all."
            )
        return None

    def dtype_hint(got: torch.dtype) -> Optional[str]:
        if got != torch.float32:
            return None
        return (
            "The schedule keeps alpha-bar in float64: in float32, 1 - abar_t near t = 0 keeps "
            "only about 3 significant digits. Drop the .float() (and give torch.tensor(...) "
            "dtype=betas.dtype)."
        )

    return run(
        Exercise(
            name="alpha_bar",
            signature="alpha_bar(betas)",
            cases=cases,
            reference=lambda b: torch.cumprod(1 - b, 0),
            mistakes=mistakes,
            success="your alpha_bar is the running product of alpha_t = 1 - beta_t",
            like="betas",
            shape_hint=shape_hint,
            dtype_hint=dtype_hint,
        ),
        fn,
    )


def check_q_sample(
    fn: Callable[[torch.Tensor, Any, torch.Tensor, NoiseSchedule], torch.Tensor],
) -> bool:
    """Check ``fn(x0, t, noise, schedule) -> x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``
    (DDPM eq. 4), the reference being :func:`.forward.add_noise`.

    Cases: t = 0, t = T-1 and t = 300 as ints, a LongTensor of three different t for a batch of
    three images, and the cosine schedule. ``x0`` and ``noise`` are float32 [B, 3, 4, 5]; the
    answer must have the same shape and dtype (float64 schedule values must be cast).
    """

    def args(t: Any, kind: str = "linear", batch: int = 2, seed: int = 0) -> Callable[[], tuple]:
        def make() -> tuple:
            g = torch.Generator().manual_seed(seed)
            x0 = torch.rand(batch, 3, 4, 5, generator=g) * 2 - 1
            noise = torch.randn(batch, 3, 4, 5, generator=g)
            return x0, t.clone() if isinstance(t, torch.Tensor) else t, noise, schedule(kind)

        return make

    per_image = torch.tensor([0, 250, T - 1])
    cases = [
        Case("t = 300", args(300)),
        Case("t = 0 (the first step: x_1 in the paper)", args(0, seed=1)),
        Case(f"t = {T - 1} (the last step: x_T)", args(T - 1, seed=2)),
        Case("t = tensor([0, 250, 999]), one step per image", args(per_image, batch=3, seed=3)),
        Case("t = 500 with the cosine schedule", args(500, "cosine", seed=4)),
    ]

    def abar(
        s: NoiseSchedule, t: Any, like: torch.Tensor, values: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        return s.gather(s.alpha_bars if values is None else values, t, like)

    def prev_wrapped(s: NoiseSchedule) -> torch.Tensor:
        return s.alpha_bars.roll(1)  # alpha_bars[t - 1], with t = 0 wrapping round to t = T-1

    mistakes = [
        Mistake(
            "missing square roots: eq. 4 multiplies x0 by sqrt(abar_t) and the noise by "
            "sqrt(1 - abar_t). 1 - abar_t is the noise's *variance*; the coefficient is its "
            "standard deviation.",
            lambda x0, t, n, s: abar(s, t, x0) * x0 + (1 - abar(s, t, x0)) * n,
        ),
        Mistake(
            "the noise's coefficient needs a square root: sqrt(1 - abar_t), the standard "
            "deviation, not the variance 1 - abar_t.",
            lambda x0, t, n, s: abar(s, t, x0).sqrt() * x0 + (1 - abar(s, t, x0)) * n,
        ),
        Mistake(
            "the picture's coefficient needs a square root: sqrt(abar_t), not abar_t.",
            lambda x0, t, n, s: abar(s, t, x0) * x0 + (1 - abar(s, t, x0)).sqrt() * n,
        ),
        Mistake(
            "you used alpha_t = 1 - beta_t, which takes one step from x_{t-1} (eq. 2). The jump "
            "from x_0 needs alpha-bar_t, the product of all alphas so far: schedule.alpha_bars.",
            lambda x0, t, n, s: (
                abar(s, t, x0, s.alphas).sqrt() * x0 + (1 - abar(s, t, x0, s.alphas)).sqrt() * n
            ),
        ),
        Mistake(
            "you used alpha-bar of the step before (alpha_bars_prev, or alpha_bars[t - 1]). "
            "t is 0-based: code t is the paper's t + 1, and schedule.alpha_bars[t] already "
            "belongs to it.",
            lambda x0, t, n, s: (
                abar(s, t, x0, s.alpha_bars_prev).sqrt() * x0
                + (1 - abar(s, t, x0, s.alpha_bars_prev)).sqrt() * n
            ),
        ),
        Mistake(
            "you used alpha-bar of the step after (alpha_bars[t + 1]). t is 0-based: code t is "
            "the paper's t + 1, and schedule.alpha_bars[t] already belongs to it.",
            lambda x0, t, n, s: (
                abar(s, t + 1, x0).sqrt() * x0 + (1 - abar(s, t + 1, x0)).sqrt() * n
            ),
        ),
        Mistake(
            "you used alpha_bars[t - 1]: at t = 0 that wraps round to the *last* step. t is "
            "0-based: code t is the paper's t + 1, and schedule.alpha_bars[t] belongs to it.",
            lambda x0, t, n, s: (
                abar(s, t, x0, prev_wrapped(s)).sqrt() * x0
                + (1 - abar(s, t, x0, prev_wrapped(s))).sqrt() * n
            ),
        ),
    ]

    def error_hint(err: BaseException, case: Case) -> Optional[str]:
        text = describe(err)  # "Type: first line", even when str(err) fails
        if isinstance(err, IndexError) and "out of bounds" in text:
            return (
                "an index is out of range. t is 0-based, from 0 to T-1: schedule.alpha_bars[t] "
                "exists for every valid t (no t + 1 needed)."
            )
        if not isinstance(case.make_args()[1], torch.Tensor):
            return None
        if "must match the size" in text:
            return (
                "with t a tensor [B], alpha_bars[t] has shape [B], which does not line up with "
                "x0 [B, C, H, W]. Reshape it to [B, 1, 1, 1] (.view(-1, 1, 1, 1)), or use "
                "schedule.gather(schedule.alpha_bars, t, x0), which does it for you."
            )
        if any(words in text for words in ("Boolean value", "one element", "cannot be converted")):
            return (
                "here t is a tensor, one step per image: `if t ...`, int(t), float(...) and "
                ".item() need a single number. Work on the whole tensor: "
                "schedule.gather(schedule.alpha_bars, t, x0) picks one value per image."
            )
        return None

    return run(
        Exercise(
            name="q_sample",
            signature="q_sample(x0, t, noise, schedule)",
            cases=cases,
            reference=lambda x0, t, n, s: add_noise(x0, t, s, noise=n)[0],
            mistakes=mistakes,
            success="your q_sample matches eq. 4 (dh.add_noise)",
            like="x0",
            shape_hint=image_shape_hint,
            dtype_hint=schedule_dtype_hint("x0"),
            error_hint=error_hint,
        ),
        fn,
    )

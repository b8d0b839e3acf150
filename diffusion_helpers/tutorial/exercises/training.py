"""The exercise of notebook 03: the simple loss of Algorithm 1."""

from __future__ import annotations

from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .runner import Case, Exercise, Mistake, run


def check_loss(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Check ``fn(predicted_noise, noise) -> loss``, the simple loss of Algorithm 1 (Ho et al.
    2020: line 5, L_simple of eq. 14 taken as a mean): the mean over the batch and every pixel of
    (predicted_noise - noise)^2, as a float32 0-dim tensor whose gradient with respect to
    ``predicted_noise`` is the reference's, 2 (predicted_noise - noise) / N
    (``predicted_noise`` requires grad in the cases; gradients are on during the check even
    under ``torch.no_grad()``).
    """

    def args(shape: tuple, seed: int, scale: float = 1.0) -> Callable[[], tuple]:
        def make() -> tuple:
            g = torch.Generator().manual_seed(seed)
            noise = torch.randn(shape, generator=g)
            predicted = noise * scale + 0.5 * torch.randn(shape, generator=g)
            return predicted.requires_grad_(True), noise

        return make

    cases = [
        Case("a batch of 4 images 3x8x8", args((4, 3, 8, 8), 0)),
        Case("a batch of 1 image 1x4x4", args((1, 1, 4, 4), 1)),
        Case("a batch of 2 images 3x6x6, prediction far off", args((2, 3, 6, 6), 2, scale=-2.0)),
    ]
    mistakes = [
        Mistake(
            "you summed the squared differences: use their mean (.mean()). The paper writes "
            "the sum ||eps - eps_theta||^2; dividing by the number of values only rescales the "
            "loss, and the mean keeps it near 1 whatever the image size.",
            lambda p, n: ((p - n) ** 2).sum(),
        ),
        Mistake(
            "you summed over the pixels and averaged over the batch (the paper's "
            "||eps - eps_theta||^2 per image): here the loss is the mean over the pixels too.",
            lambda p, n: ((p - n) ** 2).flatten(1).sum(1).mean(),
        ),
        Mistake(
            "you averaged over the pixels but summed over the batch: take the mean over "
            "everything, so the loss does not grow with the batch size.",
            lambda p, n: ((p - n) ** 2).flatten(1).mean(1).sum(),
        ),
        Mistake(
            "the differences are not squared: positive and negative errors cancel. Use "
            "((predicted_noise - noise) ** 2).mean().",
            lambda p, n: (p - n).mean(),
        ),
        Mistake(
            "the differences are not squared: positive and negative errors cancel. Use "
            "((predicted_noise - noise) ** 2).mean().",
            lambda p, n: (n - p).mean(),
        ),
        Mistake(
            "that is the mean *absolute* error (L1); Algorithm 1 squares the differences.",
            lambda p, n: (p - n).abs().mean(),
        ),
        Mistake(
            "that is the root of the mean squared error: drop the square root.",
            lambda p, n: ((p - n) ** 2).mean().sqrt(),
        ),
        Mistake(
            "you took a difference of squares, p^2 - n^2: square the difference, (p - n)^2.",
            lambda p, n: (p**2 - n**2).mean(),
        ),
    ]

    def shape_hint(got: torch.Tensor, args: tuple, expected: torch.Tensor) -> Optional[str]:
        predicted = args[0]
        if got.shape == predicted.shape:
            return (
                "That is one value per pixel: the loss is the mean of the squared differences, "
                "one number (.mean())."
            )
        if got.dim() == 1 and got.numel() == predicted.shape[0] and got.numel() > 1:
            return (
                "You returned one loss per image: average over the batch too, so the loss is "
                "one number (.mean() over everything)."
            )
        if got.numel() == 1:
            return (
                "Return a 0-dim tensor, the mean over everything (loss.backward() and the loss "
                "curve expect one number)."
            )
        return "The loss is one number, the mean over every dimension: .mean() with no dim."

    return run(
        Exercise(
            name="loss",
            signature="loss(predicted_noise, noise)",
            cases=cases,
            reference=lambda p, n: F.mse_loss(p, n),  # Algorithm 1, line 5, as a mean
            mistakes=mistakes,
            success="your loss is the mean squared difference of Algorithm 1",
            like="predicted_noise",
            shape_hint=shape_hint,
            gradient_of="predicted_noise",
        ),
        fn,
    )

"""What the network predicts, as a small object: DDPM's noise, the clean picture, or the velocity
of flow matching. Every sampler sees a noise predictor, so each target says how to read its
output as eps:

    Noise (DDPM):          target eps;                      eps = output
    Picture (x_0):         target x_0;                      eps = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t)
    Velocity (flow):       input x_s = x_t / k_t, target eps - x_0;   eps = x_s + (1 - s_t) v

The three losses differ only in how they weigh the timesteps. With SNR_t = abar_t / (1 - abar_t),
||eps - eps_theta||^2 = SNR_t ||x_0 - x0_theta||^2 (eq. 4 solved for x_0), so the noise loss
gives the noisiest steps, where the layout of the picture is decided, almost no weight in x_0
terms (SNR ~ 4e-5 at t = T); the picture loss weighs every step alike; the velocity loss
weighs them by (1 + sqrt(SNR))^2 (Salimans & Ho 2022 and Karras et al. 2022 discuss the same
choice). A checkpoint stores the name (:data:`PREDICTIONS`), and loading wraps the net in
:class:`NoisePredictor`, so a saved model is sampled as what it is.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from .flow import flow_time, to_flow
from .schedule import NoiseSchedule


class Prediction:
    """What a net predicts: how its input is made from x_t, what its output is compared with in
    training, and the noise eps its output implies (all at timesteps t [B], tensors [B, C, H, W]).
    The base is DDPM's choice (Ho et al. 2020, eq. 14): the noise itself."""

    name = "eps"

    def net_input(self, x_t: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        """What the net is shown for x_t."""
        return x_t

    def target(self, x0: Tensor, eps: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        """What the output is compared with, for x_t made from x0 and eps at t (eq. 4)."""
        return eps

    def noise(self, output: Tensor, x_t: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        """The eps that the net's output implies at (x_t, t)."""
        return output


class Noise(Prediction):
    """The net predicts the noise eps in x_t (DDPM)."""


class Picture(Prediction):
    """The net predicts the clean picture x_0; eps from eq. 4 solved for the noise."""

    name = "x0"

    def target(self, x0: Tensor, eps: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        return x0

    def noise(self, output: Tensor, x_t: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        sqrt_abar = schedule.gather(schedule.sqrt_alpha_bars, t, x_t)
        sqrt_one_minus = schedule.gather(schedule.sqrt_one_minus_alpha_bars, t, x_t)
        return (x_t - sqrt_abar * output) / sqrt_one_minus  # eq. 4 solved for eps


class Velocity(Prediction):
    """Flow matching (:mod:`.flow`): the net sees x_t as the point x_s of the straight path and
    predicts its velocity v = eps - x_0 (FM-2); eps = x_s + (1 - s) v."""

    name = "velocity"

    def net_input(self, x_t: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        return to_flow(x_t, t, schedule)  # FM-1

    def target(self, x0: Tensor, eps: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        return eps - x0  # FM-2

    def noise(self, output: Tensor, x_t: Tensor, t: Tensor, schedule: NoiseSchedule) -> Tensor:
        x_s = to_flow(x_t, t, schedule)
        return x_s + (1 - flow_time(schedule, t, x_s)) * output


PREDICTIONS = {p.name: p for p in (Noise(), Picture(), Velocity())}
NOISE = PREDICTIONS["eps"]  # DDPM's, the default of Algorithm 1


def prediction(name: str) -> Prediction:
    """The prediction object called ``name`` (``"eps"``, ``"x0"`` or ``"velocity"``)."""
    if name not in PREDICTIONS:
        raise ValueError(
            f"prediction must be one of {', '.join(map(repr, PREDICTIONS))}; got {name!r}."
        )
    return PREDICTIONS[name]


class NoisePredictor(torch.nn.Module):
    """eps_theta(x_t, t) from a net that predicts ``prediction``: what every sampler calls.
    ``net`` is the trained net; ``config`` and the parameters are its."""

    def __init__(
        self, net: Callable[..., torch.Tensor], predicts: Prediction, schedule: NoiseSchedule
    ) -> None:
        super().__init__()
        self.net, self.predicts, self.schedule = net, predicts, schedule
        self.config = getattr(net, "config", None)
        self.training = getattr(net, "training", False)  # in the mode of the net it wraps

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, *labels: torch.Tensor) -> torch.Tensor:
        """eps implied by the net's output at (x_t, t)."""
        output = self.net(self.predicts.net_input(x_t, t, self.schedule), t, *labels)
        return self.predicts.noise(output.to(x_t.dtype), x_t, t, self.schedule)


def noise_predictor(net: Any, predicts: Prediction, schedule: NoiseSchedule) -> Any:
    """``net`` itself when it predicts the noise, else the :class:`NoisePredictor` around it."""
    return net if predicts.name == "eps" else NoisePredictor(net, predicts, schedule)

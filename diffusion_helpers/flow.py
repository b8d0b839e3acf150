"""Flow matching on DDPM's machinery (Lipman et al. 2023; rectified flow, Liu et al. 2023), and
why DDIM is its Euler sampler (Gao et al. 2024, "Diffusion meets flow matching").

The path from the picture to noise is a straight line, s in [0, 1] (0: the picture, 1: noise):
    x_s = (1 - s) x_0 + s eps,                                                          (FM-1)
its velocity dx_s/ds = eps - x_0 is what the network learns:
    loss = || (eps - x_0) - v_theta(x_s, t) ||^2,                                       (FM-2)
and a sample solves dx/ds = v_theta(x, s) from s = 1 down to 0; Euler's method:
    x_{s'} = x_s + (s' - s) v_theta(x_s, s).                                            (FM-3)

The same point on DDPM's path: x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps (eq. 4), divided
by k_t = sqrt(abar_t) + sqrt(1 - abar_t), is x_s with s = sqrt(1 - abar_t) / k_t; both have the
signal-to-noise ratio abar_t / (1 - abar_t). So the two choices are separate, as in
smalldiffusion: the schedule says where on the path each t lies (``NoiseSchedule(kind="flow")``
puts s = (t + 1) / T, the rectified-flow spacing), and ``train(..., prediction="velocity")``
says what the network predicts. From v: eps = x_s + (1 - s) v and x_0 = x_s - s v, so
:class:`.prediction.Velocity` hands a flow model to every sampler of the package.

DDIM with eta = 0 (eq. 12) steps to sqrt(abar') x0_hat + sqrt(1 - abar') eps_hat; times k' that
is (1 - s') x0_hat + s' eps_hat, and so is the Euler step (FM-3), since x_s + (s' - s)(eps_hat -
x0_hat) = (1 - s') x0_hat + s' eps_hat. The two samplers are one (``tests/test_flow.py``).
"""

from __future__ import annotations

import torch

from .schedule import NoiseSchedule, Timesteps


def flow_time(schedule: NoiseSchedule, t: Timesteps, like: torch.Tensor) -> torch.Tensor:
    """s_t = sqrt(1 - abar_t) / (sqrt(abar_t) + sqrt(1 - abar_t)), the place of timestep t on the
    straight path (FM-1), shaped [B, 1, ...] like ``like``; t = -1 (after the last step) is 0."""
    t = torch.as_tensor(t)
    abar = torch.where(
        t >= 0,
        schedule.alpha_bars[t.clamp(min=0).cpu()],
        torch.ones((), dtype=torch.float64),
    )
    s = (1 - abar).sqrt() / (abar.sqrt() + (1 - abar).sqrt())
    return s.to(like.device, like.dtype).reshape(-1, *([1] * (like.dim() - 1)))


def to_flow(x_t: torch.Tensor, t: Timesteps, schedule: NoiseSchedule) -> torch.Tensor:
    """x_s = x_t / (sqrt(abar_t) + sqrt(1 - abar_t)): DDPM's x_t as the point of the straight
    path with the same signal-to-noise ratio."""
    sqrt_abar = schedule.gather(schedule.sqrt_alpha_bars, t, x_t)
    return x_t / (sqrt_abar + schedule.gather(schedule.sqrt_one_minus_alpha_bars, t, x_t))


def velocity(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The target of flow matching, dx_s/ds = eps - x_0 (FM-2)."""
    return noise - x0


def euler_step(
    x_s: torch.Tensor, v: torch.Tensor, s: torch.Tensor, s_next: torch.Tensor
) -> torch.Tensor:
    """One Euler step of dx/ds = v from s to s_next < s (FM-3): x_s + (s_next - s) v."""
    return x_s + (s_next - s) * v

"""Flow matching (diffusion_helpers/flow.py) against its closed forms, in float64: the straight
path, the flow schedule, the velocity as a noise predictor, DDIM with eta = 0 as Euler's
method, the training target, and a flow sampler that reproduces a Gaussian mixture."""

import pytest
import torch

import diffusion_helpers as dh
from diffusion_helpers.flow import euler_step, flow_time, to_flow, velocity
from diffusion_helpers.metrics.distributions import energy_distance
from diffusion_helpers.prediction import NoisePredictor, prediction
from diffusion_helpers.reverse import ddim_step
from diffusion_helpers.train import training_loss
from diffusion_helpers.tutorial.points import GaussianMixture
from tests.tiny import StandInConfig

FLOW = dh.NoiseSchedule(1000, kind="flow")
F64 = 1e-12  # float64 round-off on values of order 1


def draws(seed, shape=(4, 3, 5, 5)):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(
        shape, generator=g, dtype=torch.float64
    )


def test_the_flow_schedule_puts_timestep_t_at_s_equal_t_plus_1_over_T():
    t = torch.arange(999)  # the last step is capped at beta 0.999, as the cosine's
    s = flow_time(FLOW, t, torch.zeros(999, 1, dtype=torch.float64)).flatten()
    assert torch.allclose(s, (t + 1).double() / 1000, atol=F64)
    assert flow_time(FLOW, torch.tensor([999]), torch.zeros(1, 1)).item() > 0.9999
    assert flow_time(FLOW, torch.tensor([-1]), torch.zeros(1, 1)).item() == 0.0
    # abar_t = (1 - s)^2 / ((1 - s)^2 + s^2): the straight path's signal-to-noise ratio
    s = (t + 1).double() / 1000
    assert torch.allclose(FLOW.alpha_bars[:999], (1 - s) ** 2 / ((1 - s) ** 2 + s**2), atol=F64)


@pytest.mark.parametrize("kind", ["linear", "cosine", "flow"])
def test_ddpms_x_t_scaled_is_the_point_of_the_straight_path(kind):
    schedule = dh.NoiseSchedule(1000, kind=kind)
    x0, eps = draws(0)
    t = torch.tensor([0, 250, 600, 998])
    x_t, _ = dh.add_noise(x0, t, schedule, noise=eps)
    s = flow_time(schedule, t, x0)
    assert torch.allclose(to_flow(x_t, t, schedule), (1 - s) * x0 + s * eps, atol=1e-10)  # FM-1


def test_noise_from_velocity_recovers_eps_from_the_true_velocity():
    x0, eps = draws(1)
    t = torch.tensor([3, 100, 500, 990])

    class TrueVelocity(torch.nn.Module):  # knows x0 and eps: returns eps - x0 (FM-2)
        config = StandInConfig(5)

        def forward(self, x_s, t):
            return velocity(x0, eps)

    x_t, _ = dh.add_noise(x0, t, FLOW, noise=eps)
    assert torch.allclose(
        NoisePredictor(TrueVelocity(), prediction("velocity"), FLOW)(x_t, t), eps, atol=1e-9
    )


def test_ddim_with_eta_0_is_eulers_method_on_the_flow():
    """Any velocity field: 10 DDIM steps (no clipping) and 10 Euler steps (FM-3) agree."""
    torch.manual_seed(0)
    w = torch.randn(3, 3, dtype=torch.float64) * 0.5

    def v_theta(x_s, t):  # some smooth field of x and t
        return torch.einsum("ij,bjhw->bihw", w, x_s).tanh() + t.double().reshape(-1, 1, 1, 1) / 999

    eps_net = NoisePredictor(v_theta, prediction("velocity"), FLOW)
    timesteps = dh.ddim_timesteps(1000, 10)
    x_ddim, _ = draws(2)
    x_euler = to_flow(x_ddim, torch.full((4,), timesteps[0]), FLOW)
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        tt = torch.full((4,), t)
        x_ddim = ddim_step(x_ddim, tt, t_prev, eps_net(x_ddim, tt), FLOW, clip=False)
        s, s_next = flow_time(FLOW, tt, x_euler), flow_time(FLOW, torch.full((4,), t_prev), x_euler)
        x_euler = euler_step(x_euler, v_theta(x_euler, tt), s, s_next)
    assert torch.allclose(x_ddim, x_euler, atol=1e-10)  # at s = 0 the two variables agree


def test_training_with_prediction_velocity_feeds_the_flow_point_and_targets_eps_minus_x0():
    x0 = torch.rand(3, 3, 4, 4) * 2 - 1
    seen = []

    class Recorder(torch.nn.Module):
        config = StandInConfig(4)

        def forward(self, x, t):
            seen.append((x, t))
            return torch.zeros_like(x)

    loss, t, _ = training_loss(Recorder(), x0, FLOW, torch.Generator().manual_seed(5),
                               predicts=prediction("velocity"))  # fmt: skip
    g = torch.Generator().manual_seed(5)  # the same draws, in training's order: t, then eps
    t_ref = torch.randint(0, 1000, (3,), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    s = flow_time(FLOW, t_ref, x0)
    assert torch.equal(t, t_ref)
    assert torch.allclose(seen[0][0], (1 - s) * x0 + s * eps, atol=1e-5)
    assert torch.allclose(loss, ((eps - x0) ** 2).mean(), atol=1e-6)  # the net predicted 0


def test_euler_on_the_exact_velocity_of_a_mixture_reproduces_it():
    """A Gaussian mixture's exact eps under the flow schedule, sampled with DDIM (= Euler)."""
    means = torch.tensor([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]])
    mixture = GaussianMixture(means, 0.1, torch.tensor([1.0, 2.0, 1.0]), schedule=FLOW)
    samples = dh.sample(mixture, FLOW, 2000, dh.Sampler("ddim", steps=50), seed=0, progress=False)
    fresh = mixture.sample(2000, torch.Generator().manual_seed(1000))
    # tests/tutorial/test_points.py measured the spread of this statistic: two fresh draws are
    # at most 3.4e-3 apart (100 seeds), and 4e-3 rejects a solver that is too coarse.
    assert energy_distance(samples.images, fresh) < 4e-3

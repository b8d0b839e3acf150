"""Tests of the samplers (DDPM Algorithm 2, DDIM, DPM-Solver++(2M)) and of PSNR, without any
training (classifier-free guidance: test_guidance.py).

Stand-in models: a tiny untrained conv net taking (x, t) for determinism and bookkeeping, and
an oracle that returns the true noise of a known x_0 (for which the reverse process must give
back x_0).
"""

import copy
import math

import pytest
import torch
from tiny import StandInConfig
from torch import nn

from diffusion_helpers import sampling
from diffusion_helpers.forward import add_noise
from diffusion_helpers.reverse import (
    Frame,
    Sampler,
    SampleResult,
    ddim_step,
    forward_jump,
    reverse_process,
)
from diffusion_helpers.sampling import sample
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.timesteps import ddim_timesteps, logsnr_timesteps

SIZE, CHANNELS = 8, 3


class TinyNet(nn.Module):
    """One 3x3 conv plus a learned per-timestep offset: eps = conv(x) + emb[t]."""

    def __init__(self, num_steps: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(CHANNELS, CHANNELS, 3, padding=1)
        self.emb = nn.Embedding(num_steps, 1)
        self.config = StandInConfig(SIZE, CHANNELS)
        self.seen_training: list[bool] = []

    def forward(self, x, t):
        self.seen_training.append(self.training)
        return self.conv(x) + self.emb(t).reshape(-1, 1, 1, 1)


def make_oracle(x0: torch.Tensor, schedule: NoiseSchedule):
    """eps*(x_t, t) = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t): eq. 4 solved for the noise."""

    def oracle(x_t, t):
        abar = schedule.gather(schedule.alpha_bars, t, x_t)
        return (x_t - abar.sqrt() * x0) / (1 - abar).sqrt()

    return oracle


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=50)


@pytest.fixture(scope="module")
def x0():
    gen = torch.Generator().manual_seed(0)
    # Inside (-1, 1), so that clipping x0_hat to the data range leaves the true x_0 unchanged.
    return torch.rand(1, CHANNELS, 16, 16, generator=gen) * 1.8 - 0.9


def run(model, schedule, **kwargs):
    kwargs.setdefault("n", 2)
    kwargs.setdefault("progress", False)
    return sample(model, schedule, **kwargs)


# ---------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "method,eta", [("ddpm", 0), ("ddim", 0), ("dpm_solver", 0), ("dpm_solver", 1)]
)
def test_same_seed_same_images_other_seed_other_images(schedule, method, eta):
    net = TinyNet(schedule.num_steps)
    steps = None if method == "ddpm" else 10
    a = run(net, schedule, method=method, steps=steps, eta=eta, seed=3)
    b = run(net, schedule, method=method, steps=steps, eta=eta, seed=3)
    c = run(net, schedule, method=method, steps=steps, eta=eta, seed=4)
    assert torch.equal(a.images, b.images)
    assert not torch.allclose(a.images, c.images)


def test_generator_and_seed_give_the_same_images(schedule):
    net = TinyNet(schedule.num_steps)
    a = run(net, schedule, seed=7)
    b = run(net, schedule, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a.images, b.images)


def test_ddim_eta0_depends_only_on_x_T(schedule):
    """The sampler equals a hand-written loop of ddim_step from the same x_T, with no z."""
    net = TinyNet(schedule.num_steps)
    result = run(net, schedule, method="ddim", steps=7, eta=0.0, seed=11, clip=False)
    x = torch.randn(2, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(11))
    ts = ddim_timesteps(schedule.num_steps, 7)
    with torch.no_grad():
        for t, t_prev in zip(ts[:-1], ts[1:]):
            eps = net(x, torch.full((2,), t))
            x = ddim_step(x, t, t_prev, eps, schedule, eta=0.0, clip=False)
    # Same operations in the same order on the same x_T: equal up to float32 rounding.
    torch.testing.assert_close(result.images, x.clamp(-1, 1), atol=1e-6, rtol=0)
    noisy = run(net, schedule, method="ddim", steps=7, eta=1.0, seed=11, clip=False)
    assert not torch.allclose(noisy.images, result.images)  # eta > 0 adds fresh noise


def test_model_mode_restored_and_eval_inside(schedule):
    net = TinyNet(schedule.num_steps).train()
    run(net, schedule, method="ddim", steps=3, seed=0)
    assert net.training and net.seen_training == [False] * 3
    net.eval()
    run(net, schedule, method="ddim", steps=3, seed=0)
    assert not net.training


def test_shape_from_model_config_and_result_types(schedule):
    result = run(TinyNet(schedule.num_steps), schedule, n=3, method="ddim", steps=4, seed=0)
    assert isinstance(result, SampleResult)
    assert result.images.shape == (3, CHANNELS, SIZE, SIZE)
    assert result.images.min() >= -1 and result.images.max() <= 1
    assert result.frames == [] and result.method == "ddim"
    assert result.timesteps == ddim_timesteps(schedule.num_steps, 4)[:-1]


# ---------------------------------------------------------------- frames


@pytest.mark.parametrize(
    "method,steps,every",
    [("ddpm", None, 7), ("ddim", 10, 3), ("ddim", 10, 1), ("dpm_solver", 10, 4)],
)
def test_frames_every_k_include_both_ends(schedule, method, steps, every):
    result = run(TinyNet(schedule.num_steps), schedule, method=method, steps=steps, every=every)
    visited = result.timesteps
    assert len(result.frames) == math.ceil(len(visited) / every) + 1
    assert [f.t for f in result.frames[:-1]] == visited[::every]
    assert result.frames[0].t == schedule.num_steps - 1
    assert result.frames[-1].t == visited[-1]  # the step that produced the final images
    assert torch.equal(result.frames[-1].x_t, result.images)
    for frame in result.frames:
        assert isinstance(frame, Frame)
        assert frame.x_t.shape == frame.x0_pred.shape == (2, CHANNELS, SIZE, SIZE)
        assert frame.x_t.device.type == "cpu"


def test_first_frame_is_x_T(schedule):
    result = run(TinyNet(schedule.num_steps), schedule, seed=5, every=10)
    x_T = torch.randn(2, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    assert torch.equal(result.frames[0].x_t, x_T)


# ---------------------------------------------------------------- oracle


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver"])
@pytest.mark.parametrize("clip", [True, False])
def test_oracle_recovers_x0(x0, method, clip):
    schedule = NoiseSchedule(1000)
    oracle = make_oracle(x0, schedule)
    result = run(oracle, schedule, n=3, image_size=16, channels=CHANNELS, method=method,
                 clip=clip, seed=0, every=100)  # fmt: skip
    # With the true noise, x0_hat = x_0 at every step (eq. 15 inverts eq. 4) and the last step
    # returns x0_hat (posterior coef of x_t is 0 at t = 0; abar_{-1} = 1 for DDIM). What is
    # left is float32 rounding (~1e-7) amplified by 1/sqrt(1 - abar_0) = 100 at the last step:
    # ~1e-5; we measured 3e-6, and allow 1e-4.
    assert (result.images - x0).abs().max() < 1e-4
    for frame in result.frames:
        assert (frame.x0_pred - x0).abs().max() < 1e-4


def test_oracle_ddpm_intermediate_x_t_follow_q(x0):
    """With the true noise, each reverse step samples q(x_{t-1} | x_t, x_0) (eq. 6-7), so x_t
    along the way must be distributed as q(x_t | x_0) = N(sqrt(abar_t) x_0, (1-abar_t) I)."""
    schedule = NoiseSchedule(1000)
    result = run(make_oracle(x0, schedule), schedule, n=8, image_size=16, channels=CHANNELS,
                 seed=1, every=250)  # fmt: skip
    for frame in result.frames[1:-1]:  # t = 749, 499, 249 (frame 0 is the drawn x_T itself)
        abar = schedule.alpha_bars[frame.t].float()
        z = (frame.x_t - abar.sqrt() * x0) / (1 - abar).sqrt()
        # 8*3*16*16 = 6144 values: the std of the sample mean is 1/sqrt(6144) = 0.013 and that of
        # the sample std about 0.009; 0.05 is > 3.5 sigma for both.
        assert abs(z.mean().item()) < 0.05, frame.t
        assert abs(z.std().item() - 1) < 0.05, frame.t


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"method": "euler"}, "method"),
        ({"method": "ddpm", "steps": 10}, "steps"),
        ({"method": "ddim", "steps": 51}, "steps"),
        ({"method": "ddim", "steps": 0}, "steps"),  # given, so refused, never "the default"
        ({"method": "dpm_solver", "steps": 0}, "steps"),
        ({"method": "ddpm", "steps": 0}, "steps"),
        ({"method": "dpm_solver", "eta": 1.5}, "eta"),
        ({"method": "dpm_solver", "variance": "beta"}, "variance"),
        ({"labels": 0}, "labels"),  # TinyNet is unconditional
        ({"guidance_scale": 2.0}, "guidance_scale"),
        ({"n": 0}, "n "),
        ({"method": "ddim", "eta": -0.5}, "eta"),
        ({"method": "ddpm", "eta": 1.0}, "eta"),
        ({"method": "ddim", "variance": "beta"}, "variance"),
        ({"variance": "large"}, "variance"),
        ({"every": 0}, "every"),
        ({"seed": 1, "generator": torch.Generator()}, "seed or generator"),
    ],
)
def test_bad_arguments_raise_early(schedule, kwargs, word):
    net = TinyNet(schedule.num_steps)
    with pytest.raises(ValueError, match=word):
        run(net, schedule, **kwargs)
    assert net.seen_training == []  # raised before the model was called


def test_missing_image_size_without_config(schedule, x0):
    with pytest.raises(ValueError, match="image_size"):
        run(make_oracle(x0, schedule), schedule, channels=3)


def test_a_given_zero_is_refused_not_replaced(schedule):
    """image_channels=0 in a config is an error, not a cue to look at another field."""
    net = TinyNet(schedule.num_steps)
    net.config = StandInConfig(SIZE, 0)
    net.config.channels = 3
    with pytest.raises(ValueError, match="channels"):
        run(net, schedule, method="ddim", steps=2)
    with pytest.raises(ValueError, match="image_size"):
        run(TinyNet(schedule.num_steps), schedule, image_size=0)


# ---------------------------------------------------------------- DPM-Solver++(2M)


def test_dpm_solver_default_steps_and_timesteps(schedule):
    result = run(TinyNet(schedule.num_steps), schedule, method="dpm_solver", seed=0)
    assert result.timesteps == logsnr_timesteps(schedule, 20)[:-1]
    assert result.method == "dpm_solver"


def test_dpm_solver_oracle_10_steps_returns_x0(x0):
    """A perfect model makes every data prediction x_0, so each 2M step lands exactly on
    q(x_prev | x_0, eps) and the last on x_0: the error is float32 rounding. 10 steps visit
    t = 999 ... 0; we measured 3.5e-6 and allow 1e-4 (as for DDIM above)."""
    schedule = NoiseSchedule(1000)
    for clip, eta in ((True, 0.0), (False, 0.0), (True, 1.0)):
        result = run(make_oracle(x0, schedule), schedule, n=3, image_size=16, channels=CHANNELS,
                     method="dpm_solver", steps=10, clip=clip, eta=eta, seed=0)  # fmt: skip
        assert (result.images - x0).abs().max() < 1e-4


def reference_dpm_solver_2m(model, schedule, x, timesteps, clip, eta=0.0, generator=None):
    """DPM-Solver++(2M), Lu et al. 2022 Algorithm 2, written independently in float64 with
    alpha, sigma, lambda as Python floats; the last step (to sigma = 0) is first order. With
    ``eta = 1`` the SDE variant: x_t weighs sigma_p / sigma e^{-h}, D alpha_p (1 - e^{-2h}),
    plus sigma_p sqrt(1 - e^{-2h}) z, z drawn in float32 from ``generator`` as the sampler does."""
    x0_last, lam_last = None, None
    for t, t_prev in zip(timesteps[:-1], timesteps[1:]):
        ab = float(schedule.alpha_bars[t])
        alpha, sigma = math.sqrt(ab), math.sqrt(1 - ab)
        lam = math.log(alpha / sigma)
        eps = model(x, torch.full((x.shape[0],), t))
        x0 = (x - sigma * eps) / alpha
        x0 = x0.clamp(-1, 1) if clip else x0
        if t_prev == -1:
            return x0  # sigma_prev = 0, exp(-h) = 0: x_prev = alpha_prev D = x0
        ab_p = float(schedule.alpha_bars[t_prev])
        alpha_p, sigma_p = math.sqrt(ab_p), math.sqrt(1 - ab_p)
        h = math.log(alpha_p / sigma_p) - lam
        if x0_last is None:
            d = x0
        else:
            r = (lam - lam_last) / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_last
        if eta == 0:
            x = sigma_p / sigma * x - alpha_p * (math.exp(-h) - 1) * d
        else:
            z = torch.randn(x.shape, generator=generator).double()
            x = (sigma_p / sigma * math.exp(-h) * x + alpha_p * (1 - math.exp(-2 * h)) * d
                 + sigma_p * math.sqrt(1 - math.exp(-2 * h)) * z)  # fmt: skip
        x0_last, lam_last = x0, lam
    raise AssertionError("timesteps must end with -1")


@pytest.mark.parametrize("clip,eta", [(False, 0.0), (True, 0.0), (True, 1.0)])
def test_dpm_solver_equals_a_float64_reimplementation(schedule, clip, eta):
    net = TinyNet(schedule.num_steps)
    result = run(net, schedule, method="dpm_solver", steps=6, clip=clip, eta=eta, seed=2)
    generator = torch.Generator().manual_seed(2)
    x_T = torch.randn(2, CHANNELS, SIZE, SIZE, generator=generator)
    ts = logsnr_timesteps(schedule, 6)
    with torch.no_grad():
        want = reference_dpm_solver_2m(
            copy.deepcopy(net).double(), schedule, x_T.double(), ts, clip, eta, generator
        )
    # float32 against float64 over 6 steps of an O(1) net: we measured 5e-7; 1e-5 allows for
    # other CPUs' float32 kernels and still catches any wrong coefficient (those move pixels
    # by > 1e-2: the first-order solver, DDIM on the same timesteps, differs from it by 0.2).
    torch.testing.assert_close(result.images, want.clamp(-1, 1).float(), rtol=0, atol=1e-5)
    first_order = reverse_process(net, schedule, x_T, ts, Sampler("ddim", eta=eta, clip=clip),
                                  generator=torch.Generator().manual_seed(2),
                                  progress=False)  # fmt: skip
    assert (first_order.images - result.images).abs().max() > 1e-2


# ---------------------------------------------------------------- the shared loop


def test_sampling_runs_on_the_threads_pick_threads_gives(schedule, monkeypatch):
    seen = []
    net = TinyNet(schedule.num_steps)
    forward = net.forward
    monkeypatch.setattr(
        net, "forward", lambda x, t: seen.append(torch.get_num_threads()) or forward(x, t)
    )
    monkeypatch.setattr(sampling, "pick_threads", lambda threads, device: 1)
    before = torch.get_num_threads()
    run(net, schedule, method="ddim", steps=3, seed=0)
    assert seen == [1] * 3 and torch.get_num_threads() == before  # 3 steps (nothing else runs it)


def test_forward_jump_samples_q_between_two_steps(x0):
    """x_s ~ q(x_s | x_0), then a jump to t gives x_t ~ q(x_t | x_0) = N(sqrt(abar_t) x_0,
    (1 - abar_t) I): the z-scores must be standard normal."""
    schedule = NoiseSchedule(1000)
    gen = torch.Generator().manual_seed(3)
    x0s = x0.expand(8, -1, -1, -1)
    for s_, t in ((-1, 400), (100, 110), (300, 900)):
        x_s = x0s if s_ == -1 else add_noise(x0s, s_, schedule, generator=gen)[0]
        x_t = forward_jump(x_s, s_, t, schedule, gen)
        abar = float(schedule.alpha_bars[t])
        z = (x_t - abar**0.5 * x0s) / (1 - abar) ** 0.5
        # 6144 values: std of the mean 0.013, of the std ~0.009; 0.05 is > 3.5 sigma for both.
        assert abs(z.mean().item()) < 0.05 and abs(z.std().item() - 1) < 0.05, (s_, t)


def test_reverse_process_with_jumps_and_after_step(x0):
    """A RePaint-like schedule that rises twice still ends on x_0 for the oracle, and
    after_step sees every t_prev of a falling pair, in order."""
    schedule = NoiseSchedule(1000)
    x = torch.randn(2, CHANNELS, 16, 16, generator=torch.Generator().manual_seed(0))
    seen = []

    def after_step(x, t_prev):
        seen.append(t_prev)
        return x

    ts = [999, 600, 300, 600, 300, 100, 400, 100, 0, -1]
    for method in ("ddim", "dpm_solver"):
        seen.clear()
        result = reverse_process(make_oracle(x0, schedule), schedule, x, ts, Sampler(method),
                                 generator=torch.Generator().manual_seed(1), progress=False,
                                 after_step=after_step)  # fmt: skip
        assert (result.images - x0).abs().max() < 1e-4
        assert seen == [600, 300, 300, 100, 100, 0, -1]


# ---------------------------------------------------------------- psnr


# ---------------------------------------------------------------- bad models and their output


def test_a_model_that_is_not_callable_is_one_clear_error(schedule):
    with pytest.raises(ValueError, match="model must be the noise-prediction net.*NoneType"):
        sample(None, schedule, n=1, image_size=SIZE, channels=CHANNELS, progress=False)


def test_nan_from_the_model_is_an_error_not_clamped_images(schedule):
    """sample() promises images in [-1, 1]: NaN clamped is still NaN."""

    def broken(x, t):
        return torch.full_like(x, float("nan"))

    with pytest.raises(ValueError, match="the model produced NaN or infinite values"):
        run(broken, schedule, method="ddim", steps=3, seed=0, image_size=SIZE, channels=CHANNELS)

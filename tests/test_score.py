"""The score and Langevin dynamics (diffusion_helpers/score.py) against closed forms: Tweedie's
formula on a Gaussian mixture, Langevin sampling of a Gaussian, the corrector's step size, and
the predictor-corrector sampler (which without corrector steps is DDIM exactly)."""

import torch

import diffusion_helpers as dh
from diffusion_helpers.metrics.distributions import energy_distance
from diffusion_helpers.score import (
    corrector_step_size,
    langevin_step,
    sample_with_corrector,
    score_from_noise,
)
from diffusion_helpers.tutorial.points import GaussianMixture

SCHEDULE = dh.NoiseSchedule(1000)
MEANS = torch.tensor([[-0.5, -0.5], [0.5, 0.5], [0.5, -0.5]])


def test_the_score_from_the_exact_noise_is_the_mixtures_score():
    mixture = GaussianMixture(MEANS, 0.1, schedule=SCHEDULE)
    x = torch.randn(50, 2, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for t in (0, 100, 700):
        tt = torch.full((50,), t)
        got = score_from_noise(mixture(x, tt).double(), tt, SCHEDULE)
        assert torch.allclose(
            got, mixture.score(x, tt).double().reshape_as(x), rtol=1e-4, atol=1e-4
        )


def test_langevin_dynamics_with_the_exact_score_samples_a_gaussian():
    # N(1, 0.5^2): score (1 - x) / 0.25. 4000 chains from N(-2, 1), 400 steps of delta 0.01:
    # the chain's variance relaxes like exp(-2 delta k / 0.25), gone after 400 steps, and
    # delta's bias on the variance is about delta / 2 relative (~0.5%).
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 1, generator=g, dtype=torch.float64) - 2
    for _ in range(400):
        x = langevin_step(
            x,
            (1 - x) / 0.25,
            torch.tensor(0.01),
            torch.randn(x.shape, generator=g, dtype=torch.float64),
        )
    # standard errors: mean 0.5 / sqrt(4000) = 0.008, std ~0.006; tolerances are 4-5 of them
    assert abs(x.mean().item() - 1) < 0.04
    assert abs(x.std().item() - 0.5) < 0.03


def test_a_langevin_step_takes_a_float_a_tensor_or_one_step_per_image():
    x, score, z = torch.randn(3, 2, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    by_float = langevin_step(x, score, 0.01, z)  # the exercise of notebook 07 passes a float
    assert torch.allclose(by_float, x + 0.01 * score + 0.02**0.5 * z)
    assert torch.allclose(by_float, langevin_step(x, score, torch.tensor(0.01), z))
    per_image = langevin_step(x, score, torch.tensor([0.01, 0.5]).view(2, 1, 1, 1), z)
    assert torch.allclose(per_image[1], langevin_step(x[1:], score[1:], 0.5, z[1:])[0])


def test_the_corrector_step_makes_the_drift_r_times_the_noise_on_average():
    g = torch.Generator().manual_seed(1)
    score, z = torch.randn(3, 2, 4, 4, generator=g) * 5, torch.randn(3, 2, 4, 4, generator=g)
    delta = corrector_step_size(score, z, 0.16)
    assert delta.dim() == 0  # one step for the batch
    noise = (2 * delta).sqrt() * z.flatten(1).norm(dim=1).mean()
    drift = delta * score.flatten(1).norm(dim=1).mean()
    assert torch.allclose(drift, 0.16 * noise, rtol=1e-5)  # r: the drift's share
    assert torch.allclose(corrector_step_size(score, z, 0.32), 4 * delta, rtol=1e-5)


def test_without_corrector_steps_the_sampler_is_ddim_with_the_same_seed():
    mixture = GaussianMixture(MEANS, 0.1, schedule=SCHEDULE)
    images, calls = sample_with_corrector(
        mixture, SCHEDULE, 100, steps=10, corrector_steps=0, seed=3
    )
    ddim = dh.sample(mixture, SCHEDULE, 100, dh.Sampler("ddim", steps=10), seed=3, progress=False)
    assert calls == 10
    assert torch.allclose(images, ddim.images, atol=1e-6)


def test_the_corrector_with_the_exact_score_keeps_the_mixture_and_counts_its_calls():
    mixture = GaussianMixture(MEANS, 0.1, torch.tensor([1.0, 2.0, 1.0]), schedule=SCHEDULE)
    images, calls = sample_with_corrector(mixture, SCHEDULE, 2000, steps=50, seed=0)
    assert calls == 50 + 49  # a corrector step after every step but the last
    fresh = mixture.sample(2000, torch.Generator().manual_seed(1000))
    assert energy_distance(images, fresh) < 4e-3  # the bound of tests/tutorial/test_points.py

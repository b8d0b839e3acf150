"""The numerical checks of the notebooks' derivations: sampled ones agree with their formulas
within a few standard errors (and would not with a wrong formula), exact ones to rounding; the
what-if runner trains and samples every variant with the same seed."""

import math

import pytest
import torch

import diffusion_helpers as dh
from diffusion_helpers.sampling import sample
from diffusion_helpers.tutorial import derivations
from diffusion_helpers.tutorial.derivations import (
    noise_error_vs_x0_error,
    posterior_by_sampling,
    posterior_mean_is_algorithm_2_mean,
    show_what_if,
    two_steps_in_one,
    variance_goes_to_one,
    what_if,
)

SCHEDULE = dh.NoiseSchedule(1000)
SIGMAS = 5  # sampled checks: allowed distance in standard errors (fixed seeds: no flakiness)


@pytest.fixture(scope="module")
def picture():
    return dh.load_image(dh.sample_image_path(), size=16)


def row(comparison, start):
    found = [
        r for r in comparison.rows if r.quantity == start or r.quantity.startswith(start + " ")
    ]
    assert len(found) == 1, [r.quantity for r in comparison.rows]
    return found[0]


def test_two_steps_in_one_matches_one_gaussian_step():
    n, t, x = 200_000, 500, 0.5
    c = two_steps_in_one(SCHEDULE, t=t, x=x, n=n)
    a1, a2 = float(SCHEDULE.alphas[t]), float(SCHEDULE.alphas[t + 1])
    variance = 1 - a1 * a2  # the formula, written here independently
    mean = row(c, "mean")
    assert mean.predicted == pytest.approx(math.sqrt(a1 * a2) * x, rel=1e-12)
    assert abs(mean.measured - mean.predicted) < SIGMAS * math.sqrt(variance / n)
    var = row(c, "variance")
    assert abs(var.measured - variance) < SIGMAS * variance * math.sqrt(2 / n)
    # ... and would not match one step's alpha: its variance is half as large.
    assert abs(var.measured - (1 - a1)) > 0.4 * variance
    assert "measured" in repr(c) and "1 - α₁α₂" in repr(c)


def test_variance_goes_to_one_whatever_it_started_at():
    n = 20_000
    c = variance_goes_to_one(SCHEDULE, start_variances=(0.0, 4.0), at=(99, 999), n=n)
    assert len(c.rows) == 4
    for r in c.rows:
        assert abs(r.measured - r.predicted) < SIGMAS * r.predicted * math.sqrt(2 / n), r
    end = [r for r in c.rows if r.quantity.endswith("t = 999")]
    assert all(r.predicted == pytest.approx(1.0, abs=2e-4) for r in end)
    assert row(c, "start 4, t = 99").predicted > 3  # not yet forgotten after 100 steps


def test_posterior_by_sampling_finds_eq_7():
    n, t, x0 = 400_000, 10, 0.5
    c = posterior_by_sampling(SCHEDULE, t=t, x0=x0, n=n)
    abar, abar_prev = float(SCHEDULE.alpha_bars[t]), float(SCHEDULE.alpha_bars[t - 1])
    beta = float(SCHEDULE.betas[t])
    weight_xt = math.sqrt(1 - beta) * (1 - abar_prev) / (1 - abar)  # eq. 7, written here
    weight_x0 = math.sqrt(abar_prev) * beta / (1 - abar)
    variance = (1 - abar_prev) / (1 - abar) * beta
    slope, intercept, spread = c.rows
    assert slope.predicted == pytest.approx(weight_xt, rel=1e-9)
    assert intercept.predicted == pytest.approx(weight_x0 * x0, rel=1e-9)
    assert spread.predicted == pytest.approx(variance, rel=1e-9)
    # Standard errors of a least-squares fit: slope sd = sqrt(var_res / (n var_x)); the
    # intercept's is larger by sqrt(1 + mean_x^2 / var_x), since x_t is centred on sqrt(abar) x0.
    var_x = 1 - abar
    se_slope = math.sqrt(variance / (n * var_x))
    se_intercept = math.sqrt(variance / n) * math.sqrt(1 + abar * x0**2 / var_x)
    assert abs(slope.measured - weight_xt) < SIGMAS * se_slope
    assert abs(intercept.measured - weight_x0 * x0) < SIGMAS * se_intercept
    assert abs(spread.measured - variance) < SIGMAS * variance * math.sqrt(2 / n)
    assert abs(spread.measured - beta) > 0.1 * beta  # beta_t is not the posterior's variance


def test_posterior_by_sampling_refuses_t0():
    with pytest.raises(ValueError, match="t must be between 1"):
        posterior_by_sampling(SCHEDULE, t=0)


def test_posterior_mean_is_algorithm_2_mean_exactly(picture):
    c = posterior_mean_is_algorithm_2_mean(picture, SCHEDULE, timesteps=(0, 1, 500, 999))
    assert len(c.rows) == 4
    largest = max(abs(r.measured - r.predicted) for r in c.rows)
    assert largest < 1e-10  # float64 rounding; a wrong weight gives > 1e-3


def test_noise_error_is_snr_times_x0_error(picture):
    c = noise_error_vs_x0_error(picture, SCHEDULE, timesteps=(0, 10, 500, 999))
    for r in c.rows:
        assert r.measured == pytest.approx(r.predicted, rel=1e-6), r
    snr = [r.predicted for r in c.rows]
    assert snr[0] == pytest.approx(9999, rel=1e-3) and snr == sorted(snr, reverse=True)


def test_what_if_trains_and_samples_each_variant(picture, one_thread):
    fast = dh.NoiseSchedule(20, "cosine")  # few steps: a cheap sampler for the test

    def net():
        return dh.UNet.preset("tiny", image_channels=3, image_size=16, seed=0)

    runs = {"a": (net(), fast), "b": (net(), dh.NoiseSchedule(30, "cosine"), "x0")}
    results = what_if(runs, picture, steps=2, n=2, seed=0, batch_size=2)
    assert list(results) == ["a", "b"]
    for run in results.values():
        assert run.images.shape == (2, 3, 16, 16) and run.steps == 2
        assert run.psnr.shape == (2,) and torch.isfinite(run.psnr).all()
    # The same seed, model and schedule give the same samples.
    again = what_if({"a": (net(), fast)}, picture, steps=2, n=2, seed=0, batch_size=2)
    torch.testing.assert_close(again["a"].images, results["a"].images)
    fig = show_what_if(results)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and titles[0].startswith("a\n2 steps") and "PSNR" in titles[-1]


def test_what_if_samples_an_x0_model_through_its_implied_noise(picture, monkeypatch):
    # The net trained with prediction="x0" is sampled as eps = (x_t - sqrt(abar) x0) / sqrt(1 -
    # abar): what_if must hand sample() that wrapper, not the raw x0 predictor.
    # The sampler options are handed on too.
    handed = []
    real_sample = sample
    monkeypatch.setattr(
        derivations,
        "sample",
        lambda net, *a, **k: handed.append((net, a)) or real_sample(net, *a, **k),
    )
    fast = dh.NoiseSchedule(20, "cosine")
    net = dh.UNet.preset("tiny", image_channels=3, image_size=16, seed=0)
    ddim = dh.Sampler("ddim", 5)
    what_if({"x0": (net, fast, "x0")}, picture, steps=1, n=1, batch_size=2, sampler=ddim)
    ((model, args),) = handed
    assert isinstance(model, dh.NoisePredictor) and model.predicts.name == "x0"
    assert model.schedule is fast
    assert ddim in args  # the sampler, passed whole

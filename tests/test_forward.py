"""The forward process: closed form (eq. 4) against the step-by-step chain (eq. 2)."""

import pytest
import torch

from diffusion_helpers.forward import add_noise, add_noise_chain, add_noise_step
from diffusion_helpers.schedule import NoiseSchedule


def test_closed_form_is_the_formula():
    s = NoiseSchedule(1000)
    x0 = torch.linspace(-1, 1, 48).reshape(1, 3, 4, 4)
    eps = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    x_t, noise = add_noise(x0, 600, s, noise=eps)
    abar = float(s.alpha_bars[600])
    assert noise is eps or torch.equal(noise, eps)
    torch.testing.assert_close(x_t, abar**0.5 * x0 + (1 - abar) ** 0.5 * eps)


def test_one_step_is_the_formula_and_t0_starts_from_the_clean_image():
    s = NoiseSchedule(1000)
    x0 = torch.full((2, 1, 3, 3), 0.5)
    eps = torch.ones_like(x0)
    x1 = add_noise_step(x0, 0, s, noise=eps)
    # t = 0 is the paper's first step: x_1 = sqrt(1 - 1e-4) x_0 + sqrt(1e-4) eps.
    torch.testing.assert_close(x1, (1 - 1e-4) ** 0.5 * x0 + 1e-2 * eps)
    # And equals the closed form at t = 0 with the same noise (abar_0 = alpha_0).
    torch.testing.assert_close(x1, add_noise(x0, 0, s, noise=eps)[0])


def test_chain_and_closed_form_give_the_same_distribution():
    """Mean sqrt(abar_t) x_0 and variance 1 - abar_t per pixel, both ways, at several t.

    N = 4000 draws per pixel: the standard error of a mean is at most 1/sqrt(N) = 0.016 and of
    a variance about var * sqrt(2/N) = 2.2% of it; 5 standard errors keep a correct
    implementation far from failing across all 48 pixels x 4 timesteps with this fixed seed,
    while an off-by-one in t or a wrong sqrt moves the variance at t = 9 by >10%.
    """
    s = NoiseSchedule(1000)
    N = 4000
    x0 = torch.linspace(-1, 1, 48, dtype=torch.float64).reshape(1, 3, 4, 4).expand(N, 3, 4, 4)
    keep = [9, 99, 499, 999]
    chain = add_noise_chain(x0, keep, s, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    for k, t in enumerate(keep):
        closed, _ = add_noise(x0, t, s, generator=g)
        abar = s.alpha_bars[t]
        want_mean = abar.sqrt() * x0[0]
        want_var = float(1 - abar)
        for draws in (chain[k], closed):
            mean_err = (draws.mean(0) - want_mean).abs().max()
            assert mean_err < 5 * (want_var / N) ** 0.5, (t, float(mean_err))
            rel_var_err = (draws.var(0) / want_var - 1).abs().max()
            assert rel_var_err < 5 * (2 / N) ** 0.5, (t, float(rel_var_err))


def test_chain_keeps_requested_steps_in_order():
    s = NoiseSchedule(100)
    x0 = torch.zeros(2, 1, 4, 4)
    out = add_noise_chain(x0, [50, 0, 99], s, generator=torch.Generator().manual_seed(0))
    assert out.shape == (3, 2, 1, 4, 4)
    # Variance grows with t: x_0-step has almost none, t = 99 has most.
    assert out[1].std() < out[0].std() < out[2].std()


def test_generator_makes_it_reproducible():
    s = NoiseSchedule(1000)
    x0 = torch.zeros(1, 3, 8, 8)
    a, _ = add_noise(x0, 10, s, generator=torch.Generator().manual_seed(7))
    b, _ = add_noise(x0, 10, s, generator=torch.Generator().manual_seed(7))
    c, _ = add_noise(x0, 10, s, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_per_sample_timesteps():
    s = NoiseSchedule(1000)
    x0 = torch.ones(3, 1, 2, 2)
    eps = torch.zeros_like(x0)
    x_t, _ = add_noise(x0, torch.tensor([0, 500, 999]), s, noise=eps)
    torch.testing.assert_close(x_t[:, 0, 0, 0], s.sqrt_alpha_bars[[0, 500, 999]].float())


@pytest.mark.parametrize(
    "noise, word",
    [
        (torch.zeros(1, 3, 4, 5), "shape"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.float64), "dtype"),
    ],
)
def test_noise_mismatch_is_refused(noise, word):
    s = NoiseSchedule(10)
    with pytest.raises(ValueError, match=f"noise.*{word}"):
        add_noise(torch.zeros(1, 3, 4, 4), 1, s, noise=noise)
    with pytest.raises(ValueError, match=f"noise.*{word}"):
        add_noise_step(torch.zeros(1, 3, 4, 4), 1, s, noise=noise)


def test_bad_images_and_timesteps_are_refused():
    s = NoiseSchedule(10)
    with pytest.raises(ValueError, match="x0"):
        add_noise(torch.zeros(3, 4, 4), 1, s)
    with pytest.raises(ValueError, match="x0"):
        add_noise(torch.zeros(1, 3, 4, 4, dtype=torch.long), 1, s)
    with pytest.raises(ValueError, match="t = 10"):
        add_noise(torch.zeros(1, 3, 4, 4), 10, s)

"""The reverse step: Algorithm 2, the posterior route through x0_hat, and DDIM."""

import pytest
import torch

from diffusion_helpers import (
    NoiseSchedule,
    add_noise,
    ddim_step,
    predict_x0,
    q_posterior,
    reverse_step,
)

T = 1000


@pytest.fixture(scope="module")
def setup():
    s = NoiseSchedule(T)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8, generator=g, dtype=torch.float64) * 2 - 1
    t = torch.tensor([1, 10, 500, 999])
    x_t, eps = add_noise(x0, t, s, generator=g)
    z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
    return s, x0, t, x_t, eps, z


def test_predict_x0_inverts_the_closed_form(setup):
    s, x0, t, x_t, eps, _ = setup
    torch.testing.assert_close(predict_x0(x_t, t, eps, s), x0, rtol=0, atol=1e-9)


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_algorithm2_equals_the_posterior_mean_route(setup, variance):
    """Alg. 2's formula and mu_tilde(x_t, x0_hat) (eq. 7 with eq. 15) are the same mean."""
    s, x0, t, x_t, eps, z = setup
    # A wrong-but-plausible noise prediction, so the identity is not trivial.
    eps_hat = 0.7 * eps + 0.3 * z
    alg2 = reverse_step(x_t, t, eps_hat, s, noise=z, variance=variance)
    mean, _ = q_posterior(predict_x0(x_t, t, eps_hat, s), x_t, t, s)
    sigma_sq = s.posterior_variance if variance == "posterior" else s.betas
    sigma = sigma_sq[t].sqrt().reshape(-1, 1, 1, 1)
    torch.testing.assert_close(alg2, mean + sigma * z, rtol=0, atol=1e-9)
    # And the formula as the notebooks write it, with plain per-sample floats.
    for i, ti in enumerate(t.tolist()):
        a, ab = float(s.alphas[ti]), float(s.alpha_bars[ti])
        manual = (x_t[i] - (1 - a) / (1 - ab) ** 0.5 * eps_hat[i]) / a**0.5
        manual = manual + float(sigma_sq[ti]) ** 0.5 * z[i]
        torch.testing.assert_close(alg2[i], manual, rtol=0, atol=1e-9)


def test_clipping_changes_nothing_when_x0_hat_is_in_range(setup):
    s, x0, t, x_t, eps, z = setup
    # With the true noise, x0_hat = x0 lies in [-1, 1], so the clip route equals Alg. 2.
    a = reverse_step(x_t, t, eps, s, noise=z, clip=False)
    b = reverse_step(x_t, t, eps, s, noise=z, clip=True)
    torch.testing.assert_close(a, b, rtol=0, atol=1e-9)


def test_clipping_keeps_x0_hat_in_range():
    s = NoiseSchedule(T)
    x_t = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    huge = torch.full_like(x_t, -50.0)  # implies x0_hat far above 1
    t = 999
    out = reverse_step(x_t, t, huge, s, noise=torch.zeros_like(x_t), clip=True)
    # mean = coef1 * clip(x0_hat) + coef2 * x_t, with clip(x0_hat) = 1 and x_t = 0.
    torch.testing.assert_close(out, torch.full_like(x_t, float(s.posterior_mean_coef1[t])))


@pytest.mark.parametrize("variance", ["posterior", "beta"])
def test_no_noise_is_added_at_t0(setup, variance):
    # beta_tilde_0 is already 0, but beta_0 = 1e-4 is not: the step itself must drop sigma z.
    s, _, _, x_t, eps, z = setup
    a = reverse_step(x_t, 0, eps, s, noise=z, variance=variance)
    b = reverse_step(x_t, 0, eps, s, noise=torch.zeros_like(z), variance=variance)
    assert torch.equal(a, b)
    # Per-sample: only the t = 0 entries are noise-free.
    t = torch.tensor([0, 5, 0, 5])
    a = reverse_step(x_t, t, eps, s, noise=z, variance=variance)
    b = reverse_step(x_t, t, eps, s, noise=torch.zeros_like(z), variance=variance)
    assert torch.equal(a[[0, 2]], b[[0, 2]]) and not torch.equal(a[[1, 3]], b[[1, 3]])


@pytest.mark.parametrize("variance, attr", [("posterior", "posterior_variance"), ("beta", "betas")])
def test_noise_scale_is_sigma_t(setup, variance, attr):
    s, _, t, x_t, eps, z = setup
    a = reverse_step(x_t, t, eps, s, noise=z, variance=variance)
    b = reverse_step(x_t, t, eps, s, noise=torch.zeros_like(z), variance=variance)
    sigma = ((a - b) / z).mean(dim=(1, 2, 3))
    torch.testing.assert_close(sigma, getattr(s, attr)[t].sqrt(), rtol=1e-9, atol=0)


def test_ddim_eta1_on_consecutive_steps_is_ddpm(setup):
    """sigma = sqrt((1-abar_{t-1})/(1-abar_t)) sqrt(1 - alpha_t) = sqrt(beta_tilde_t), and the
    mean reduces to mu_tilde: DDIM with eta = 1 is DDPM's posterior step (Song et al. sec. 4.1)."""
    s, _, t, x_t, eps, z = setup
    eps_hat = 0.7 * eps + 0.3 * z
    a = ddim_step(x_t, t, t - 1, eps_hat, s, eta=1.0, noise=z)
    b = ddim_step(x_t, t, t - 1, eps_hat, s, eta=1.0, noise=torch.zeros_like(z))
    sigma = ((a - b) / z).mean(dim=(1, 2, 3))
    torch.testing.assert_close(sigma, s.posterior_variance[t].sqrt(), rtol=1e-9, atol=0)
    torch.testing.assert_close(a, reverse_step(x_t, t, eps_hat, s, noise=z), rtol=0, atol=1e-9)


def test_ddim_eta0_is_deterministic_and_lands_on_x0(setup):
    s, x0, t, x_t, eps, _ = setup
    a = ddim_step(x_t, t, t - 1, eps, s, eta=0.0, generator=torch.Generator().manual_seed(1))
    b = ddim_step(x_t, t, t - 1, eps, s, eta=0.0, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b)
    # With the true noise, the step to t_prev stays on the same line: x_prev = q(x_prev | x0, eps).
    expected, _ = add_noise(x0[1:], t[1:] - 1, s, noise=eps[1:])
    torch.testing.assert_close(a[1:], expected, rtol=0, atol=1e-9)
    # t_prev = -1 is the last step, to x_0 itself.
    torch.testing.assert_close(ddim_step(x_t, t, -1, eps, s), x0, rtol=0, atol=1e-9)


def test_ddim_skips_steps(setup):
    s, x0, _, _, _, _ = setup
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=x0.dtype)
    x_t, _ = add_noise(x0, 900, s, noise=eps)
    jumped = ddim_step(x_t, 900, 300, eps, s)
    expected, _ = add_noise(x0, 300, s, noise=eps)
    torch.testing.assert_close(jumped, expected, rtol=0, atol=1e-9)


def test_ddim_clipping_rederives_the_noise():
    """With clip, x0_hat is clipped to [-1, 1] and eps recomputed from it, so the step lands
    on the line between the clipped x0_hat and x_t: x_prev = sqrt(abar_prev) x0c + sqrt(1 -
    abar_prev) (x_t - sqrt(abar_t) x0c) / sqrt(1 - abar_t)."""
    s = NoiseSchedule(T)
    x_t = torch.full((1, 1, 2, 2), 0.3, dtype=torch.float64)
    eps_hat = torch.full_like(x_t, -3.0)  # implies x0_hat far above 1
    t, t_prev = 400, 200
    assert float(predict_x0(x_t, t, eps_hat, s).min()) > 1
    got = ddim_step(x_t, t, t_prev, eps_hat, s, clip=True)
    ab, ab_prev = float(s.alpha_bars[t]), float(s.alpha_bars[t_prev])
    eps_c = (0.3 - ab**0.5 * 1.0) / (1 - ab) ** 0.5
    want = ab_prev**0.5 * 1.0 + (1 - ab_prev) ** 0.5 * eps_c
    torch.testing.assert_close(got, torch.full_like(x_t, want), rtol=0, atol=1e-12)


def test_float32_inputs_stay_float32():
    s = NoiseSchedule(T)
    x = torch.zeros(2, 3, 4, 4)
    assert reverse_step(x, 5, x, s).dtype == torch.float32
    assert ddim_step(x, 5, 2, x, s).dtype == torch.float32


@pytest.mark.parametrize(
    "call, word",
    [
        (lambda s, x: reverse_step(x, 5, x[:1], s), "predicted_noise"),
        (lambda s, x: reverse_step(x, 5, x.double(), s), "predicted_noise"),
        (lambda s, x: reverse_step(x, 5, x, s, noise=x[:, :1]), "noise"),
        (lambda s, x: reverse_step(x, 5, x, s, variance="learned"), "variance"),
        (lambda s, x: reverse_step(x, 1000, x, s), "t = 1000"),
        (lambda s, x: reverse_step(x, -1, x, s), "t = -1"),
        (lambda s, x: ddim_step(x, 5, 5, x, s), "t_prev"),
        (lambda s, x: ddim_step(x, 5, -2, x, s), "t_prev"),
        (lambda s, x: ddim_step(x, 5, 2, x, s, eta=-1), "eta"),
    ],
)
def test_bad_arguments(call, word):
    s = NoiseSchedule(T)
    with pytest.raises(ValueError, match=word):
        call(s, torch.zeros(2, 3, 4, 4))

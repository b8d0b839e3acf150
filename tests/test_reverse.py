"""The reverse step: Algorithm 2, the posterior route through x0_hat, and DDIM."""

import inspect
import math

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
from diffusion_helpers.reverse import CLIP_X0, Sampler, dpm_solver_2m_step

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
    alg2 = reverse_step(x_t, t, eps_hat, s, noise=z, variance=variance, clip=False)
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


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta1_on_consecutive_steps_is_ddpm(setup, clip):
    """sigma = sqrt((1-abar_{t-1})/(1-abar_t)) sqrt(1 - alpha_t) = sqrt(beta_tilde_t), and the
    mean reduces to mu_tilde: DDIM with eta = 1 is DDPM's posterior step (Song et al. sec. 4.1).
    With clip both steps use mu_tilde(x_t, clipped x0_hat), so the identity holds again."""
    s, _, t, x_t, eps, z = setup
    eps_hat = 0.7 * eps + 0.3 * z
    if clip:  # make sure the clip really bites at some step
        assert float(predict_x0(x_t, t, eps_hat, s).abs().max()) > 1
    a = ddim_step(x_t, t, t - 1, eps_hat, s, eta=1.0, noise=z, clip=clip)
    b = ddim_step(x_t, t, t - 1, eps_hat, s, eta=1.0, noise=torch.zeros_like(z), clip=clip)
    sigma = ((a - b) / z).mean(dim=(1, 2, 3))
    torch.testing.assert_close(sigma, s.posterior_variance[t].sqrt(), rtol=1e-9, atol=0)
    ddpm = reverse_step(x_t, t, eps_hat, s, noise=z, clip=clip)
    torch.testing.assert_close(a, ddpm, rtol=0, atol=1e-9)


def test_ddim_eta0_is_deterministic_and_lands_on_x0(setup):
    s, x0, t, x_t, eps, _ = setup
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    a = ddim_step(x_t, t, t - 1, eps, s, eta=0.0, generator=g1, clip=False)
    b = ddim_step(x_t, t, t - 1, eps, s, eta=0.0, generator=g2, clip=False)
    assert torch.equal(a, b)
    # With the true noise, the step to t_prev stays on the same line: x_prev = q(x_prev | x0, eps).
    expected, _ = add_noise(x0[1:], t[1:] - 1, s, noise=eps[1:])
    torch.testing.assert_close(a[1:], expected, rtol=0, atol=1e-9)
    # t_prev = -1 is the last step, to x_0 itself.
    torch.testing.assert_close(ddim_step(x_t, t, -1, eps, s, clip=False), x0, rtol=0, atol=1e-9)


def test_ddim_skips_steps(setup):
    s, x0, _, _, _, _ = setup
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(3), dtype=x0.dtype)
    x_t, _ = add_noise(x0, 900, s, noise=eps)
    jumped = ddim_step(x_t, 900, 300, eps, s, clip=False)
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


# ---------------------------------------------------------------- DPM-Solver++(2M)


@pytest.mark.parametrize("clip", [False, True])
def test_dpm_solver_first_order_is_ddim_eta0(setup, clip):
    """Lu et al. 2022, sec. 4: first-order DPM-Solver++ is DDIM. Both write x_prev as
    sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev) eps_hat, with eps_hat from x_t and x0_hat."""
    s, _, t, x_t, eps, z = setup
    eps_hat = 0.7 * eps + 0.3 * z  # wrong on purpose: x0_hat leaves [-1, 1] at large t
    for t_prev in (t - 1, t // 2 - 1, -1):
        got, x0_hat = dpm_solver_2m_step(x_t, t, t_prev, eps_hat, s, clip=clip)
        want = ddim_step(x_t, t, t_prev, eps_hat, s, eta=0.0, clip=clip)
        # float64 throughout; both are sums of two O(1) terms: 1e-9 is rounding with margin.
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9)
        x0_want = predict_x0(x_t, t, eps_hat, s)
        torch.testing.assert_close(x0_hat, x0_want.clamp(-1, 1) if clip else x0_want)


def test_dpm_solver_second_order_matches_the_formula(setup):
    """One 2M step against Algorithm 2 of Lu et al. written out with float64 scalars."""
    s, _, _, _, _, z = setup
    gen = torch.Generator().manual_seed(5)
    x_t = torch.randn(z.shape, generator=gen, dtype=torch.float64)
    eps_hat = torch.randn(z.shape, generator=gen, dtype=torch.float64)
    x0_last = torch.randn(z.shape, generator=gen, dtype=torch.float64)
    t_last, t, t_prev = 700, 500, 250
    got, x0_hat = dpm_solver_2m_step(x_t, t, t_prev, eps_hat, s, (t_last, x0_last), clip=False)

    def alpha_sigma_lam(step):
        ab = float(s.alpha_bars[step])
        return ab**0.5, (1 - ab) ** 0.5, math.log(ab**0.5 / (1 - ab) ** 0.5)

    a_t, s_t, lam_t = alpha_sigma_lam(t)
    a_p, s_p, lam_p = alpha_sigma_lam(t_prev)
    lam_last = alpha_sigma_lam(t_last)[2]
    h, h_last = lam_p - lam_t, lam_t - lam_last
    r = h_last / h
    x0 = (x_t - s_t * eps_hat) / a_t
    d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_last
    want = s_p / s_t * x_t - a_p * (math.exp(-h) - 1) * d
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9)
    # The second-order term matters here: the first-order step lands elsewhere.
    first, _ = dpm_solver_2m_step(x_t, t, t_prev, eps_hat, s, clip=False)
    assert (first - got).abs().max() > 0.1


def test_dpm_solver_with_the_true_noise_stays_on_q(setup):
    """With the true noise every data prediction is x_0, so D = x_0 and each step lands on
    q(x_prev | x_0, eps) (eq. 4 with the same eps): the solver is exact for a perfect model."""
    s, x0, _, _, _, _ = setup
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(4), dtype=x0.dtype)
    x_t, _ = add_noise(x0, 600, s, noise=eps)
    previous = (800, x0)
    x_prev, x0_hat = dpm_solver_2m_step(x_t, 600, 300, eps, s, previous, clip=False)
    torch.testing.assert_close(x0_hat, x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(x_prev, add_noise(x0, 300, s, noise=eps)[0], rtol=0, atol=1e-9)


def test_dpm_solver_final_step_is_first_order(setup):
    """To t_prev = -1 (sigma = 0, h infinite) the step returns x0_hat whatever came before."""
    s, x0, _, _, eps, z = setup
    t = torch.tensor([1, 10, 500, 990])
    x_t, _ = add_noise(x0, t, s, noise=eps)
    eps_hat = 0.7 * eps + 0.3 * z
    got, x0_hat = dpm_solver_2m_step(x_t, t, -1, eps_hat, s, (t + 1, z), clip=True)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got, x0_hat, rtol=0, atol=1e-12)


@pytest.mark.parametrize("eta", [0.3, 1.0])
@pytest.mark.parametrize("clip", [False, True])
def test_sde_dpm_solver_first_order_is_ddim_with_the_same_eta(setup, eta, clip):
    """With noise (eta > 0) the first-order step is DDIM with that eta, given the same z:
    the same mean, and s = eta sigma_prev sqrt(1 - e^{-2h}) is DDIM's sigma (eq. 16)."""
    s, _, t, x_t, eps, z = setup
    eps_hat = 0.7 * eps + 0.3 * z
    for t_prev in (t - 1, t // 2 - 1, -1):
        got, _ = dpm_solver_2m_step(x_t, t, t_prev, eps_hat, s, clip=clip, eta=eta, noise=z)
        want = ddim_step(x_t, t, t_prev, eps_hat, s, eta=eta, noise=z, clip=clip)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9)


def test_sde_dpm_solver_second_order_matches_the_formula(setup):
    """One SDE-DPM-Solver++(2M) step (eta = 1) against the update written out with float64
    scalars: (sigma_prev / sigma_t) e^{-h} x_t + alpha_prev (1 - e^{-2h}) D
    + sigma_prev sqrt(1 - e^{-2h}) z, D as in the ODE step."""
    s, _, _, _, _, z = setup
    gen = torch.Generator().manual_seed(6)
    x_t, eps_hat, x0_last = (
        torch.randn(z.shape, generator=gen, dtype=torch.float64) for _ in "abc"
    )
    t_last, t, t_prev = 700, 500, 250
    got, _ = dpm_solver_2m_step(
        x_t, t, t_prev, eps_hat, s, (t_last, x0_last), clip=False, eta=1.0, noise=z
    )
    ab = {k: float(s.alpha_bars[k]) for k in (t_last, t, t_prev)}
    lam = {k: 0.5 * math.log(v / (1 - v)) for k, v in ab.items()}
    h, h_last = lam[t_prev] - lam[t], lam[t] - lam[t_last]
    x0 = (x_t - (1 - ab[t]) ** 0.5 * eps_hat) / ab[t] ** 0.5
    d = x0 + h / (2 * h_last) * (x0 - x0_last)
    sigma_ratio = ((1 - ab[t_prev]) / (1 - ab[t])) ** 0.5
    want = (sigma_ratio * math.exp(-h) * x_t + ab[t_prev] ** 0.5 * (1 - math.exp(-2 * h)) * d
            + (1 - ab[t_prev]) ** 0.5 * (1 - math.exp(-2 * h)) ** 0.5 * z)  # fmt: skip
    torch.testing.assert_close(got, want, rtol=0, atol=1e-9)


def test_sde_dpm_solver_with_the_true_noise_keeps_q(setup):
    """A perfect model (x0_hat = x_0 at every step) and eta = 1: x_prev is x_0's marginal
    q(x_prev | x_0) again. Over 16,000 draws of one pixel value the mean is sqrt(abar_prev) x_0
    and the variance 1 - abar_prev = 0.61 (standard errors 0.0062 and 0.0068; the bounds are
    four of them)."""
    s = NoiseSchedule(T)
    gen = torch.Generator().manual_seed(7)
    x0 = torch.full((4000, 1, 2, 2), 0.5, dtype=torch.float64)
    x_t, eps = add_noise(x0, 600, s, generator=gen)
    x_prev, _ = dpm_solver_2m_step(x_t, 600, 300, eps, s, (800, x0), clip=False, eta=1.0,
                                   generator=gen)  # fmt: skip
    ab = float(s.alpha_bars[300])
    assert abs(x_prev.mean().item() - ab**0.5 * 0.5) < 0.025
    assert abs(x_prev.var().item() - (1 - ab)) < 0.027
    # and it is not the ODE's deterministic landing point: the noise is new
    ode, _ = dpm_solver_2m_step(x_t, 600, 300, eps, s, (800, x0), clip=False)
    assert (x_prev - ode).abs().mean() > 0.1


@pytest.mark.parametrize("eta", [-0.1, 1.5, float("nan"), True, "1"])
def test_dpm_solver_rejects_eta_outside_0_1(eta):
    s = NoiseSchedule(T)
    x = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="eta"):
        dpm_solver_2m_step(x, 5, 2, x, s, eta=eta)


def test_dpm_solver_per_image_timesteps_equal_one_at_a_time(setup):
    s, x0, _, _, eps, z = setup
    t = torch.tensor([1, 10, 500, 980])
    x_t, _ = add_noise(x0, t, s, noise=eps)
    t_prev = torch.tensor([0, 5, 250, -1])
    previous = (t + 10, z)
    batch, _ = dpm_solver_2m_step(x_t, t, t_prev, eps, s, previous)
    for i in range(len(t)):
        one, _ = dpm_solver_2m_step(
            x_t[i : i + 1],
            int(t[i]),
            int(t_prev[i]),
            eps[i : i + 1],
            s,
            (int(t[i]) + 10, z[i : i + 1]),
        )
        torch.testing.assert_close(batch[i : i + 1], one, rtol=0, atol=1e-12)


def test_one_clip_default_for_every_sampler():
    """Hand-run steps and `sample` run the same math unless told otherwise."""
    for fn in (reverse_step, ddim_step, dpm_solver_2m_step):
        assert inspect.signature(fn).parameters["clip"].default is CLIP_X0, fn.__name__
    assert Sampler().clip is CLIP_X0
    assert CLIP_X0 is True


def test_float32_inputs_stay_float32():
    s = NoiseSchedule(T)
    x = torch.zeros(2, 3, 4, 4)
    assert reverse_step(x, 5, x, s).dtype == torch.float32
    assert ddim_step(x, 5, 2, x, s).dtype == torch.float32
    assert all(y.dtype == torch.float32 for y in dpm_solver_2m_step(x, 5, 2, x, s, (7, x)))


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
        (lambda s, x: dpm_solver_2m_step(x, 5, 5, x, s), "t_prev"),
        (lambda s, x: dpm_solver_2m_step(x, 5, 2, x, s, (5, x)), "t_last"),
        (lambda s, x: dpm_solver_2m_step(x, 5, 2, x, s, (9, x[:1])), "previous"),
    ],
)
def test_bad_arguments(call, word):
    s = NoiseSchedule(T)
    with pytest.raises(ValueError, match=word):
        call(s, torch.zeros(2, 3, 4, 4))


def test_noise_from_x0_inverts_equation_4():
    """A net that outputs the true x_0, read as a noise predictor, gives back the true noise."""
    from diffusion_helpers.forward import add_noise
    from diffusion_helpers.prediction import NoisePredictor, prediction

    schedule = NoiseSchedule(1000)
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, 1, 8, 8, generator=g) * 2 - 1
    t = torch.tensor([0, 500, 999])
    x_t, eps = add_noise(x0, t, schedule, generator=g)
    wrapped = NoisePredictor(lambda x, steps: x0, prediction("x0"), schedule)
    # 1e-3: at t = 0, 1 / sqrt(1 - abar) = 100 magnifies float32 rounding of x_t
    torch.testing.assert_close(wrapped(x_t, t), eps, atol=1e-3, rtol=0)

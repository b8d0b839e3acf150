"""The noise schedules against values computed here from the papers' definitions in plain float64.

The references never call the code under test: they are Python floats and the math module.
rtol 1e-9 allows for summation order (cumprod over 1000 factors, linspace's two-sided
stepping) while catching any off-by-one in t (which changes abar by ~1e-4 relative or more).
"""

import math

import pytest
import torch

from diffusion_helpers.schedule import NoiseSchedule

RTOL = 1e-9
T = 1000


def linear_betas(T, b0=1e-4, b1=0.02):
    # DDPM sec. 4: "linearly increasing from beta_1 = 1e-4 to beta_T = 0.02".
    return [b0 + (b1 - b0) * i / (T - 1) for i in range(T)]


def cumprod(values):
    out, p = [], 1.0
    for v in values:
        p *= v
        out.append(p)
    return out


def cosine_f(t, T, s=0.008):
    # Nichol & Dhariwal (2021), eq. 17.
    return math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2


def close(a, b, rtol=RTOL):
    return math.isclose(float(a), b, rel_tol=rtol, abs_tol=0.0)


def test_linear_alpha_bars_match_the_product_of_alphas():
    s = NoiseSchedule(T, "linear")
    abar = cumprod([1 - b for b in linear_betas(T)])
    for t in (0, 499, 999):
        assert close(s.alpha_bars[t], abar[t]), t
    # t = 0 is the paper's t = 1: abar_0 = 1 - beta_1 = 0.9999.
    assert close(s.alpha_bars[0], 1 - 1e-4)
    assert close(s.betas[0], 1e-4) and close(s.betas[-1], 0.02)


def test_linear_is_rescaled_with_T_as_in_improved_diffusion():
    # improved-diffusion, get_named_beta_schedule("linear", T): scale = 1000 / T, both ends
    # scaled. (This replaces a test that pinned the unscaled 1e-4..0.02 for every T.)
    for steps in (100, 250, 2000):
        s = NoiseSchedule(steps, "linear")
        scale = 1000 / steps
        expected = linear_betas(steps, 1e-4 * scale, 0.02 * scale)
        for t in (0, steps // 2, steps - 1):
            assert close(s.betas[t], expected[t]), (steps, t)
    assert close(NoiseSchedule(100).betas[-1], 0.2)
    # The same total noise for any T: abar_T stays near DDPM's 4e-5 (T = 100: 2e-5).
    for steps in (100, 1000, 2000):
        assert 1e-5 < float(NoiseSchedule(steps).alpha_bars[-1]) < 1e-4, steps


def test_linear_with_very_few_steps_is_capped_and_warns():
    with pytest.warns(UserWarning, match="T = 10.*capped at 0.999"):
        s = NoiseSchedule(10, "linear")  # 0.02 * 100 = 2: beyond 1
    assert close(s.betas[0], 1e-2) and float(s.betas.max()) == pytest.approx(0.999)


def test_a_schedule_that_leaves_picture_at_T_warns():
    # Unscaled DDPM betas over 100 steps: abar_T = 0.36, x_T keeps 60% of the picture. The
    # warning names the betas used (scaled by 1000 / T), not only the ones passed.
    with pytest.warns(
        UserWarning,
        match=r"betas used: 0.0001 to 0.02\): alpha-bar at the last step is 0.3.*not close to N",
    ):
        NoiseSchedule(100, "linear", beta_start=1e-5, beta_end=0.002)


@pytest.mark.parametrize(
    "steps, kind", [(1000, "linear"), (100, "linear"), (1000, "cosine"), (50, "cosine")]
)
def test_usual_schedules_do_not_warn(steps, kind, recwarn):
    NoiseSchedule(steps, kind)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]


def test_posterior_variance_at_t1_and_last():
    s = NoiseSchedule(T, "linear")
    betas = linear_betas(T)
    abar = cumprod([1 - b for b in betas])
    for t in (1, T - 1):
        expected = betas[t] * (1 - abar[t - 1]) / (1 - abar[t])  # DDPM eq. 7
        assert close(s.posterior_variance[t], expected), t
    assert s.posterior_variance[0] == 0.0  # abar_{-1} = 1: nothing to be uncertain about


def test_posterior_mean_coefficients():
    s = NoiseSchedule(T, "linear")
    betas = linear_betas(T)
    abar = cumprod([1 - b for b in betas])
    t = 500
    assert close(s.posterior_mean_coef1[t], math.sqrt(abar[t - 1]) * betas[t] / (1 - abar[t]))
    c2 = math.sqrt(1 - betas[t]) * (1 - abar[t - 1]) / (1 - abar[t])
    assert close(s.posterior_mean_coef2[t], c2)


def test_cosine_betas_at_both_ends():
    s = NoiseSchedule(T, "cosine")
    first = 1 - cosine_f(1, T) / cosine_f(0, T)
    last = min(1 - cosine_f(T, T) / cosine_f(T - 1, T), 0.999)
    assert close(s.betas[0], first)
    assert close(s.betas[-1], last)
    assert s.betas[-1] == pytest.approx(0.999)  # clipped, as in the paper
    # Without clipping abar_t would equal f(t+1)/f(0) exactly; check mid-way (no clip there).
    assert close(s.alpha_bars[499], cosine_f(500, T) / cosine_f(0, T), rtol=1e-7)


def test_scaled_linear_and_sigmoid():
    b0, b1 = 1e-4, 0.02
    s = NoiseSchedule(T, "scaled_linear")
    for i in (0, 333, 999):
        root = math.sqrt(b0) + (math.sqrt(b1) - math.sqrt(b0)) * i / (T - 1)
        assert close(s.betas[i], root**2), i
    g = NoiseSchedule(T, "sigmoid")
    for i in (0, 500, 999):
        x = -6 + 12 * i / (T - 1)
        assert close(g.betas[i], 1 / (1 + math.exp(-x)) * (b1 - b0) + b0), i


@pytest.mark.filterwarnings("ignore:NoiseSchedule")  # T = 50 is too few for scaled_linear/sigmoid
@pytest.mark.parametrize("kind", ["linear", "cosine", "scaled_linear", "sigmoid"])
def test_every_array_is_float64_of_length_T_and_abar_decreases(kind):
    s = NoiseSchedule(50, kind)
    for name in ("betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variance"):
        arr = getattr(s, name)
        assert arr.dtype == torch.float64 and arr.shape == (50,), name
    assert bool((s.alpha_bars[1:] < s.alpha_bars[:-1]).all())
    assert bool((s.log_snr[1:] < s.log_snr[:-1]).all())
    assert s.num_steps == len(s) == 50


def test_gather_casts_only_at_use():
    s = NoiseSchedule(T)
    x = torch.zeros(3, 1, 2, 2, dtype=torch.float32)
    got = s.gather(s.alpha_bars, torch.tensor([0, 5, 999]), x)
    assert got.dtype == torch.float32 and got.shape == (3, 1, 1, 1)
    assert s.alpha_bars.dtype == torch.float64


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"num_steps": 0}, "num_steps"),
        ({"num_steps": 2.5}, "num_steps"),
        ({"beta_start": 0.0}, "beta_start"),
        ({"beta_end": 1.0}, "beta_end"),
        ({"beta_start": -0.1}, "beta_start"),
        ({"beta_start": 0.03, "beta_end": 0.02}, "beta_start"),
        ({"kind": "quadratic"}, "kind"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, word):
    with pytest.raises(ValueError, match=word):
        NoiseSchedule(**kwargs)


@pytest.mark.parametrize("t", [-1, 1000, torch.tensor([0, 1000]), 2.0, torch.tensor([0.5])])
def test_timesteps_outside_range_are_refused(t):
    s = NoiseSchedule(T)
    with pytest.raises(ValueError, match=r"^t (=|must)"):
        s.check_t(t)


def test_timestep_batch_mismatch_is_refused():
    s = NoiseSchedule(T)
    with pytest.raises(ValueError, match="batch"):
        s.gather(s.betas, torch.tensor([1, 2]), torch.zeros(3, 1, 2, 2))


def test_a_resolution_shift_lowers_every_log_snr_by_2_log_shift():
    """simple diffusion's shift: log SNR(t) - 2 log(s) at every t, in float64, with betas that
    stay in (0, 1) and reproduce the shifted alpha-bars; s = 1 is the schedule itself."""
    base = NoiseSchedule(1000)
    for s in (0.5, 2.0, 4.0):
        shifted = NoiseSchedule(1000, shift=s)
        torch.testing.assert_close(shifted.log_snr, base.log_snr - 2 * math.log(s), rtol=0,
                                   atol=1e-9)  # fmt: skip
        assert bool(((shifted.betas > 0) & (shifted.betas < 1)).all())
        torch.testing.assert_close(torch.cumprod(1 - shifted.betas, 0), shifted.alpha_bars)
        assert NoiseSchedule(**shifted.config()).config() == shifted.config()
    assert torch.equal(NoiseSchedule(1000, shift=1.0).betas, base.betas)
    assert "shift" not in base.config()  # checkpoints from before the shift still match
    for bad in (0, -1.0, True, "2"):
        with pytest.raises(ValueError, match="shift"):
            NoiseSchedule(1000, shift=bad)


def test_one_step_warns_once_and_a_text_beta_is_named(recwarn):
    """T = 1 takes beta_start alone (nothing is capped): one warning, about x_T, not a second
    one contradicting it; a beta given as text is one line naming it, not a TypeError."""
    NoiseSchedule(1)
    messages = [str(w.message) for w in recwarn.list]
    assert len(messages) == 1 and "x_T still holds" in messages[0], messages
    with pytest.raises(ValueError, match="beta_start must be a number, got the text '1e-4'"):
        NoiseSchedule(1000, beta_start="1e-4")

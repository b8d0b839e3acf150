"""The exercise checkers: a right answer passes with one "✓" line; each typical wrong answer,
written as a learner would write it, fails with the hint that names its mistake; a broken
function (wrong signature, an exception, None, a wrong type or shape) fails with a clear
message and never raises."""

import pytest
import torch
import torch.nn.functional as F

import diffusion_helpers as dh
from diffusion_helpers.tutorial.exercises import (
    check_alpha_bar,
    check_loss,
    check_q_sample,
    check_reverse_step,
)


def run_check(check, fn, capsys):
    """(return value, printed text) of one checker call."""
    ok = check(fn)
    return ok, capsys.readouterr().out


def assert_passes(check, fn, capsys):
    ok, out = run_check(check, fn, capsys)
    assert ok is True, out
    assert out.startswith("✓ ") and out.count("\n") == 1, out


def assert_fails(check, fn, capsys, *words):
    ok, out = run_check(check, fn, capsys)
    assert ok is False, out
    assert out.startswith("✗ "), out
    for word in words:
        assert word in out, f"{word!r} not in:\n{out}"
    return out


# ----------------------------------------------------------------------------- alpha-bar


def alpha_bar_loop(betas):
    out, product = [], 1.0
    for beta in betas.tolist():
        product *= 1 - beta
        out.append(product)
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize(
    "fn",
    [
        lambda betas: torch.cumprod(1 - betas, dim=0),
        alpha_bar_loop,
        lambda betas: torch.cumprod((1 - betas).float(), dim=0),  # float32 is accurate enough
        lambda betas: torch.exp(torch.cumsum(torch.log1p(-betas), 0)),
    ],
    ids=["cumprod", "loop", "float32", "log-space"],
)
def test_alpha_bar_right(fn, capsys):
    assert_passes(check_alpha_bar, fn, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda b: torch.cumsum(1 - b, 0), ["cumsum", "product"]),
        (lambda b: 1 - torch.cumsum(b, 0), ["first-order"]),
        (lambda b: torch.cumprod(b, 0), ["multiplied the betas"]),
        (lambda b: 1 - b, ["single step"]),
        (lambda b: torch.sqrt(torch.cumprod(1 - b, 0)), ["square root"]),
        (
            lambda b: torch.cumprod(torch.cat([torch.ones(1, dtype=b.dtype), 1 - b[:-1]]), 0),
            ["off by one", "0.72, 0.504"],  # the hand-picked case is printed
        ),
        (lambda b: torch.prod(1 - b), ["single number", "cumprod"]),
    ],
    ids=["cumsum", "one-minus-sum", "betas", "alpha", "sqrt", "shifted", "prod"],
)
def test_alpha_bar_wrong(fn, words, capsys):
    assert_fails(check_alpha_bar, fn, capsys, *words)


# ----------------------------------------------------------------------------- q_sample


def q_sample(x0, t, noise, schedule):
    abar = schedule.gather(schedule.alpha_bars, t, x0)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_sample_by_hand(x0, t, noise, schedule):
    abar = schedule.alpha_bars[torch.as_tensor(t)].reshape(-1, 1, 1, 1).to(x0.dtype)
    return abar**0.5 * x0 + (1 - abar) ** 0.5 * noise


@pytest.mark.parametrize(
    "fn",
    [q_sample, q_sample_by_hand, lambda x0, t, n, s: dh.add_noise(x0, t, s, noise=n)[0]],
    ids=["gather", "by-hand", "package"],
)
def test_q_sample_right(fn, capsys):
    assert_passes(check_q_sample, fn, capsys)


def with_abar(rule):
    """A q_sample that gets abar [B, 1, 1, 1] right and combines it by ``rule(abar, x0, n)``."""

    def fn(x0, t, noise, schedule):
        return rule(schedule.gather(schedule.alpha_bars, t, x0), x0, noise)

    return fn


def q_sample_alpha(x0, t, noise, schedule):
    alpha = schedule.gather(schedule.alphas, t, x0)
    return alpha.sqrt() * x0 + (1 - alpha).sqrt() * noise


def q_sample_previous(x0, t, noise, schedule):
    abar = schedule.alpha_bars[torch.as_tensor(t) - 1].reshape(-1, 1, 1, 1).float()
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_sample_next(x0, t, noise, schedule):
    abar = schedule.alpha_bars[torch.as_tensor(t) + 1].reshape(-1, 1, 1, 1).float()
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_sample_no_reshape(x0, t, noise, schedule):
    abar = schedule.alpha_bars[t].float()
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_sample_float64(x0, t, noise, schedule):
    abar = schedule.alpha_bars[torch.as_tensor(t)].reshape(-1, 1, 1, 1)
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


def q_sample_fresh_noise(x0, t, noise, schedule):
    return q_sample(x0, t, torch.randn_like(x0), schedule)


def q_sample_in_place(x0, t, noise, schedule):
    abar = schedule.gather(schedule.alpha_bars, t, x0)
    x0 *= abar.sqrt()
    return x0 + (1 - abar).sqrt() * noise


@pytest.mark.parametrize(
    "fn, words",
    [
        (with_abar(lambda a, x, n: a * x + (1 - a) * n), ["missing square roots"]),
        (with_abar(lambda a, x, n: a.sqrt() * x + (1 - a) * n), ["standard deviation"]),
        (with_abar(lambda a, x, n: a * x + (1 - a).sqrt() * n), ["picture's coefficient"]),
        (with_abar(lambda a, x, n: (1 - a).sqrt() * x + a.sqrt() * n), ["swapped"]),
        (q_sample_alpha, ["alpha_t = 1 - beta_t", "alpha_bars"]),
        (q_sample_previous, ["wraps round"]),
        (q_sample_next, ["step after"]),
        (q_sample_no_reshape, ["RuntimeError", "[B, 1, 1, 1]", "one step per image"]),
        (q_sample_float64, ["float64", "schedule.gather"]),
        (q_sample_fresh_noise, ["different answer each time"]),
        (q_sample_in_place, ["changed its input `x0` in place"]),
        (lambda x0, t, n, s: dh.add_noise(x0, t, s, noise=n), ["tuple of 2"]),
    ],
    ids=[
        "no-sqrt",
        "variance-not-std",
        "no-sqrt-on-x0",
        "swapped",
        "alpha",
        "t-minus-1",
        "t-plus-1",
        "no-reshape",
        "float64",
        "fresh-noise",
        "in-place",
        "tuple",
    ],
)
def test_q_sample_wrong(fn, words, capsys):
    assert_fails(check_q_sample, fn, capsys, *words)


def test_q_sample_wrong_at_t0_only_names_the_first_step(capsys):
    def previous_padded(x0, t, noise, schedule):  # alpha_bars_prev: right shape, one step late
        abar = schedule.gather(schedule.alpha_bars_prev, t, x0)
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    assert_fails(check_q_sample, previous_padded, capsys, "step before", "t = 300")


# ----------------------------------------------------------------------------- loss


@pytest.mark.parametrize(
    "fn",
    [
        lambda p, n: ((p - n) ** 2).mean(),
        lambda p, n: F.mse_loss(p, n),
        lambda p, n: ((n - p) ** 2).mean(),
        lambda p, n: torch.mean(torch.square(p - n)),
    ],
    ids=["mean", "mse_loss", "reversed", "square"],
)
def test_loss_right(fn, capsys):
    assert_passes(check_loss, fn, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda p, n: ((p - n) ** 2).sum(), ["summed the squared differences"]),
        (lambda p, n: ((p - n) ** 2).sum(dim=(1, 2, 3)).mean(), ["summed over the pixels"]),
        (lambda p, n: ((p - n) ** 2).mean(dim=(1, 2, 3)).sum(), ["summed over the batch"]),
        (lambda p, n: (p - n).mean(), ["not squared"]),
        (lambda p, n: (p - n).abs().mean(), ["absolute"]),
        (lambda p, n: ((p - n) ** 2).mean().sqrt(), ["square root"]),
        (lambda p, n: (p**2 - n**2).mean(), ["difference of squares"]),
        (lambda p, n: ((p - n) ** 2).mean(dim=(1, 2, 3)), ["one loss per image"]),
        (lambda p, n: ((p - n) ** 2).mean().item(), ["Python number", ".item()"]),
        (lambda p, n: ((p - n) ** 2).mean().detach(), ["cut off", "backward"]),
        (lambda p, n: ((p - n) ** 2).mean().reshape(1), ["0-dim"]),
    ],
    ids=[
        "sum",
        "sum-pixels",
        "sum-batch",
        "no-square",
        "l1",
        "rmse",
        "diff-of-squares",
        "per-image",
        "item",
        "detach",
        "shape-1",
    ],
)
def test_loss_wrong(fn, words, capsys):
    assert_fails(check_loss, fn, capsys, *words)


# ----------------------------------------------------------------------------- reverse step


def reverse_step(x_t, t, predicted_noise, schedule, z):
    beta, abar = schedule.betas[t], schedule.alpha_bars[t]
    mean = (x_t - beta / (1 - abar).sqrt() * predicted_noise) / (1 - beta).sqrt()
    return mean if t == 0 else mean + beta.sqrt() * z


def variant(coef=None, front=None, sigma=None, noise_at_0=False):
    """Algorithm 2 with one factor replaced, written as a learner would."""

    def fn(x_t, t, eps, s, z):
        beta, abar, alpha = float(s.betas[t]), float(s.alpha_bars[t]), float(s.alphas[t])
        c = coef(beta, abar, alpha) if coef else beta / (1 - abar) ** 0.5
        f = front(beta, abar, alpha) if front else 1 / alpha**0.5
        sd = sigma(s, t) if sigma else beta**0.5
        mean = f * (x_t - c * eps)
        return mean if (t == 0 and not noise_at_0) else mean + sd * z

    return fn


@pytest.mark.parametrize(
    "fn",
    [
        reverse_step,
        variant(),
        lambda x, t, e, s, z: dh.reverse_step(x, t, e, s, noise=z, variance="beta", clip=False),
    ],
    ids=["tensors", "floats", "package"],
)
def test_reverse_step_right(fn, capsys):
    assert_passes(check_reverse_step, fn, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (variant(noise_at_0=True), ["t = 0 (the paper's t = 1", "add no noise"]),
        (variant(sigma=lambda s, t: float(s.posterior_variance[t]) ** 0.5), ["beta-tilde"]),
        (variant(sigma=lambda s, t: float(s.betas[t])), ["missing square root on the noise"]),
        (variant(sigma=lambda s, t: 0.0), ["no fresh noise"]),
        (variant(coef=lambda b, ab, a: b), ["beta_t alone"]),
        (variant(coef=lambda b, ab, a: b / (1 - ab)), ["missing square root in the noise coef"]),
        (variant(coef=lambda b, ab, a: (1 - ab) ** 0.5), ["noise share of x_t"]),
        (variant(coef=lambda b, ab, a: b / (1 - a) ** 0.5), ["alpha instead of alpha-bar"]),
        (variant(front=lambda b, ab, a: 1 / ab**0.5), ["not 1 / sqrt(alpha-bar_t)"]),
        (variant(front=lambda b, ab, a: 1.0), ["missing the factor 1 / sqrt(alpha_t)"]),
        (variant(coef=lambda b, ab, a: -b / (1 - ab) ** 0.5), ["sign"]),
        (
            lambda x, t, e, s, z: dh.reverse_step(x, t, e, s, noise=z, variance="beta", clip=True),
            ["clipped x0_hat"],
        ),
        (lambda x, t, e, s, z: dh.reverse_step(x, t, e, s, noise=z), ["with its defaults"]),
        (lambda x, t, e, s, z: reverse_step(x, t, e, s, torch.randn_like(x)), ["each time"]),
    ],
    ids=[
        "noise-at-0",
        "posterior",
        "sigma-is-beta",
        "no-noise",
        "coef-beta",
        "coef-no-sqrt",
        "coef-forward",
        "coef-alpha",
        "front-abar",
        "no-front",
        "sign",
        "clip",
        "package-defaults",
        "fresh-noise",
    ],
)
def test_reverse_step_wrong(fn, words, capsys):
    assert_fails(check_reverse_step, fn, capsys, *words)


def test_reverse_step_off_by_one_is_named(capsys):
    def previous_step(x_t, t, eps, s, z):  # the schedule's values of step t - 1
        return reverse_step(x_t, t - 1, eps, s, z) if t > 0 else reverse_step(x_t, 0, eps, s, z)

    assert_fails(check_reverse_step, previous_step, capsys, "step t - 1")


# ----------------------------------------------------------------------------- broken functions


def stub(*args):
    raise NotImplementedError("your turn")


def forgot_return(x_t, t, predicted_noise, schedule, z):
    x_t - predicted_noise


def crashes(x_t, t, predicted_noise, schedule, z):
    return x_t + schedule.no_such_thing


@pytest.mark.parametrize(
    "check, fn, words",
    [
        (check_alpha_bar, stub, ["NotImplementedError", "replace"]),
        (check_reverse_step, forgot_return, ["returned None", "return"]),
        (check_reverse_step, crashes, ["raised AttributeError", "no_such_thing"]),
        (check_reverse_step, lambda x_t, t, eps, s: x_t, ["(x_t, t, eps, s)", "5 arguments"]),
        (check_q_sample, None, ["got NoneType", "without calling it"]),
        (
            check_q_sample,
            q_sample(torch.zeros(1, 1, 2, 2), 0, torch.zeros(1, 1, 2, 2), dh.NoiseSchedule(50)),
            ["got Tensor"],
        ),
        (check_loss, lambda p, n: [0.0], ["torch.Tensor", "list"]),
        (
            check_alpha_bar,
            lambda b: torch.cumprod(1 - b, 0)[None],
            ["shape [1, 4]", "expected [4]"],
        ),
        (check_alpha_bar, lambda b: torch.full_like(b, float("nan")), ["NaN"]),
        (check_alpha_bar, lambda b: (b * 0).long(), ["dtype torch.int64"]),
    ],
    ids=[
        "stub",
        "no-return",
        "raises",
        "signature",
        "none",
        "called",
        "list",
        "shape",
        "nan",
        "integer",
    ],
)
def test_broken_functions_get_a_message_and_false(check, fn, words, capsys):
    assert_fails(check, fn, capsys, *words)


def test_a_checker_never_raises_even_for_odd_errors(capsys):
    def exits(*args):
        raise KeyError("surprise")

    assert_fails(check_q_sample, exits, capsys, "KeyError", "surprise")


def test_inputs_stay_intact_for_the_next_case(capsys):
    # A function that scales the betas in place must not spoil the reference or later cases.
    def in_place(betas):
        return torch.cumprod(betas.mul_(-1).add_(1), 0)

    assert_fails(check_alpha_bar, in_place, capsys, "in place")

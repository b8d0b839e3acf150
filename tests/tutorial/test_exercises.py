"""The exercise checkers: a right answer passes with one "✓" line; each typical wrong answer,
written as a learner would write it, fails with the hint that names its mistake; a broken
function (wrong signature, an exception, None, a wrong type, shape or dtype, an odd tensor, an
endless loop, Ctrl-C) fails with a clear message and never raises or hangs."""

import functools
import inspect
import math
import signal
import threading
import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import diffusion_helpers as dh
from diffusion_helpers.tutorial import exercises
from diffusion_helpers.tutorial.exercises import (
    check_alpha_bar,
    check_euler_step,
    check_flow_loss,
    check_langevin_step,
    check_loss,
    check_q_sample,
    check_reverse_step,
    check_score,
    judge,
    time_limit,
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
        lambda betas: torch.exp(torch.cumsum(torch.log1p(-betas), 0)),
    ],
    ids=["cumprod", "loop", "log-space"],
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
        (lambda p, n: (n - p).mean(), ["not squared"]),
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
        "no-square-reversed",
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


# ----------------------------------------------------------------------------- notebook 07


def score(predicted_noise, t, schedule):  # notebook 07's solution
    return -predicted_noise / schedule.sqrt_one_minus_alpha_bars[t]


def score_loop(eps, t, schedule):
    abar = 1.0
    for beta in schedule.betas[: t + 1].tolist():
        abar *= 1 - beta
    return -eps / (1 - abar) ** 0.5


@pytest.mark.parametrize(
    "check, fn",
    [
        (check_score, score),
        (check_score, lambda e, t, s: -e / (1 - s.alpha_bars[t]).sqrt()),
        (check_score, lambda e, t, s: -e / s.gather(s.sqrt_one_minus_alpha_bars, t, e)),
        (check_score, lambda e, t, s: -e / torch.sqrt(1 - s.alpha_bars[t]).float()),
        (check_score, score_loop),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc + (2 * d) ** 0.5 * z),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc + math.sqrt(2 * d) * z),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc + torch.sqrt(torch.tensor(2 * d)) * z),
        (check_flow_loss, lambda v, x0, n: ((v - (n - x0)) ** 2).mean()),
        (check_flow_loss, lambda v, x0, n: F.mse_loss(v, n - x0)),
        (check_euler_step, lambda x, v, s, s_next: x + (s_next - s) * v),
        (check_euler_step, lambda x, v, s, s_next: x - (s - s_next) * v),
    ],
    ids=[
        "score",
        "score-abar",
        "score-gather",
        "score-float",
        "score-loop",
        "langevin",
        "langevin-math",
        "langevin-tensor",
        "flow-loss",
        "flow-loss-mse",
        "euler",
        "euler-minus",
    ],
)
def test_notebook_07_right(check, fn, capsys):
    assert_passes(check, fn, capsys)


@pytest.mark.parametrize(
    "check, fn, words",
    [
        (check_score, lambda e, t, s: e / s.sqrt_one_minus_alpha_bars[t], ["sign"]),
        (check_score, lambda e, t, s: -e / (1 - s.alpha_bars[t]), ["missing square root"]),
        (check_score, lambda e, t, s: -e * s.sqrt_one_minus_alpha_bars[t], ["multiplied by"]),
        (check_score, lambda e, t, s: -e / s.betas[t].sqrt(), ["sqrt(beta_t)"]),
        (check_score, lambda e, t, s: -e / s.alpha_bars[t].sqrt(), ["-eps / sqrt(abar_t)"]),
        (check_score, lambda e, t, s: score(e, t, s).double(), ["float64", "schedule.gather"]),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc + d**0.5 * z, ["left out the 2"]),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc + 2 * d * z, ["square root"]),
        (
            check_langevin_step,
            lambda x, sc, d, z: x + 0.5 * d * sc + (2 * d) ** 0.5 * z,
            ["step_size / 2 on the score"],
        ),
        (check_langevin_step, lambda x, sc, d, z: x - d * sc + (2 * d) ** 0.5 * z, ["sign"]),
        (check_langevin_step, lambda x, sc, d, z: x + d * sc, ["no noise"]),
        (
            check_langevin_step,
            lambda x, sc, d, z: x + d * z + (2 * d) ** 0.5 * sc,
            ["`score` and `z` are swapped"],
        ),
        (check_flow_loss, lambda v, x0, n: ((v - (x0 - n)) ** 2).mean(), ["you used x0 - noise"]),
        (check_flow_loss, lambda v, x0, n: ((v - n) ** 2).mean(), ["DDPM's target"]),
        (check_flow_loss, lambda v, x0, n: ((v - x0) ** 2).mean(), ["the x0 target"]),
        (check_flow_loss, lambda v, x0, n: ((v - (n - x0)) ** 2).sum(), ["summed"]),
        (check_flow_loss, lambda v, x0, n: (v - (n - x0)).abs().mean(), ["not squared"]),
        (
            check_flow_loss,
            lambda v, x0, n: ((v - (n - x0)) ** 2).mean().detach(),
            ["cut off from predicted_velocity", "backward"],
        ),
        (check_euler_step, lambda x, v, s, s_next: x + (s - s_next) * v, ["sign"]),
        (check_euler_step, lambda x, v, s, s_next: x + s_next * v, ["you used s_next * v"]),
        (check_euler_step, lambda x, v, s, s_next: x - s * v, ["the whole way", "s * v"]),
        (check_euler_step, lambda x, v, s, s_next: x, []),
    ],
    ids=[
        "score-sign",
        "score-variance",
        "score-times",
        "score-beta",
        "score-abar",
        "score-float64",
        "langevin-no-2",
        "langevin-no-sqrt",
        "langevin-half-drift",
        "langevin-sign",
        "langevin-no-noise",
        "langevin-swapped",
        "flow-direction",
        "flow-noise-target",
        "flow-x0-target",
        "flow-sum",
        "flow-l1",
        "flow-detach",
        "euler-sign",
        "euler-s-next",
        "euler-s",
        "euler-no-step",
    ],
)
def test_notebook_07_wrong(check, fn, words, capsys):
    assert_fails(check, fn, capsys, *words)


# ----------------------------------------------------------------------------- the package itself

PACKAGE = {  # the package's function for each exercise, in the exercise's calling convention
    "check_alpha_bar": exercises.check_alpha_bar.reference,  # NoiseSchedule computes it in __init__
    "check_q_sample": lambda x0, t, n, s: dh.add_noise(x0, t, s, noise=n)[0],
    "check_loss": exercises.check_loss.reference,  # F.mse_loss; dh.train's is inside training_loss
    "check_reverse_step": lambda x, t, e, s, z: dh.reverse_step(
        x, t, e, s, noise=z, variance="beta", clip=False
    ),
    "check_score": dh.score_from_noise,
    "check_langevin_step": dh.langevin_step,
    "check_flow_loss": exercises.check_flow_loss.reference,  # the mean square from dh.velocity
    "check_euler_step": dh.euler_step,
}


@pytest.mark.parametrize("name", exercises.__all__)
def test_the_package_passes_its_own_exercises(name, capsys):
    assert_passes(getattr(exercises, name), PACKAGE[name], capsys)


def peeks_at_the_answer(*args):
    """A learner's function that walks up the call stack and returns the checker's expected
    value if any frame holds one (as a local, or on a local object or a list of them)."""
    frame = inspect.currentframe().f_back
    while frame is not None:
        for name, value in frame.f_locals.items():
            found = [value] if name == "expected" else []
            for item in value if isinstance(value, (list, tuple)) else [value]:
                found.append(getattr(item, "expected", None))
            for answer in found:
                if isinstance(answer, torch.Tensor):
                    return answer.clone()
        frame = frame.f_back
    return args[0]


@pytest.mark.parametrize("name", exercises.__all__)
def test_a_function_cannot_copy_the_expected_value_from_the_stack(name, capsys):
    assert_fails(getattr(exercises, name), peeks_at_the_answer, capsys)


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


# ----------------------------------------------------------------------------- time limit, Ctrl-C


ENDLESS = [0.0]  # when the "endless" functions below give up: 25 s after the test starts


@pytest.fixture
def one_second(monkeypatch):
    """A 1 s time limit instead of 10 s, so that the tests of endless functions run fast."""
    monkeypatch.setattr(judge, "TIME_LIMIT_S", 1.0)
    ENDLESS[0] = time.monotonic() + 25


def busy(*args):
    """An endless loop for the checks' 1 s limit. It ends 25 s after the test started all the
    same, so that a checker without a time limit fails these tests instead of hanging them."""
    while time.monotonic() < ENDLESS[0]:
        pass


def sleeps(*args):
    time.sleep(max(ENDLESS[0] - time.monotonic(), 0))


def alarm_state():
    return signal.getsignal(signal.SIGALRM), signal.getitimer(signal.ITIMER_REAL)


def assert_stopped(check, fn, capsys):
    """The check stops ``fn`` at the 1 s limit (20 s of slack for a busy machine), in one line."""
    start = time.monotonic()
    out = assert_fails(check, fn, capsys, "still running after 1 s", "endless loop")
    assert time.monotonic() - start < 20, out
    assert out.count("\n") == 1, out


needs_alarm = pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="no SIGALRM here")


@needs_alarm
@pytest.mark.parametrize(
    "check, fn",
    [
        (check_alpha_bar, busy),
        (check_q_sample, busy),
        (check_loss, busy),
        (check_reverse_step, busy),
        (check_reverse_step, sleeps),
    ],
    ids=["alpha_bar", "q_sample", "loss", "reverse_step", "sleep"],
)
def test_an_endless_function_is_stopped_and_no_alarm_is_left(check, fn, one_second, capsys):
    before = alarm_state()
    assert_stopped(check, fn, capsys)
    assert alarm_state() == before  # the handler is back, and no timer runs


def test_an_endless_function_is_stopped_without_signals(one_second, monkeypatch, capsys):
    # Windows has no SIGALRM: the watchdog thread raises in the checker's thread instead.
    monkeypatch.setattr(time_limit, "alarm_usable", lambda: False)
    assert_stopped(check_loss, busy, capsys)
    assert not [t for t in threading.enumerate() if t.name == "exercise time limit"]


def test_an_endless_function_is_stopped_outside_the_main_thread(one_second, capsys):
    results = []
    worker = threading.Thread(target=lambda: results.append(check_q_sample(busy)))
    start = time.monotonic()
    worker.start()
    worker.join(timeout=30)
    out = capsys.readouterr().out
    assert results == [False] and time.monotonic() - start < 20, out
    assert "still running after 1 s" in out and out.count("\n") == 1, out


@needs_alarm
def test_the_time_limit_gives_back_an_alarm_set_before_it(one_second, capsys):
    rang = []
    previous = signal.signal(signal.SIGALRM, lambda signum, frame: rang.append(signum))
    signal.setitimer(signal.ITIMER_REAL, 100.0)
    try:
        handler = signal.getsignal(signal.SIGALRM)
        assert_stopped(check_alpha_bar, busy, capsys)
        assert signal.getsignal(signal.SIGALRM) is handler
        assert 50 < signal.getitimer(signal.ITIMER_REAL)[0] <= 100  # the rest of its 100 s
        assert not rang
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def presses_ctrl_c(*args):
    signal.raise_signal(signal.SIGINT)  # what Ctrl-C or the notebook's stop button sends
    time.sleep(5)


def raises_keyboard_interrupt(*args):
    raise KeyboardInterrupt


@pytest.mark.parametrize("fn", [presses_ctrl_c, raises_keyboard_interrupt], ids=["sigint", "raise"])
def test_ctrl_c_in_the_function_ends_the_check_in_one_line(fn, capsys):
    try:
        ok = check_reverse_step(fn)
    except KeyboardInterrupt:
        pytest.fail("the KeyboardInterrupt went through the checker")
    out = capsys.readouterr().out
    assert ok is False and out.startswith("✗ "), out
    assert "stopped while running your function" in out and out.count("\n") == 1, out


# ----------------------------------------------------------------------------- gradients


class WrongBackward(torch.autograd.Function):
    """The right loss in the forward pass, twice its gradient in the backward pass."""

    @staticmethod
    def forward(ctx, p, n):
        ctx.save_for_backward(p, n)
        return ((p - n) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        p, n = ctx.saved_tensors
        return 4 * grad * (p - n) / p.numel(), None


class EndlessBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, n):
        return ((p - n) ** 2).mean()

    @staticmethod
    def backward(ctx, grad):
        busy()


@pytest.mark.parametrize(
    "fn, words",
    [
        (
            lambda p, n: torch.tensor(((p - n) ** 2).mean().item(), requires_grad=True),
            ["cut off", "requires_grad=True does not"],
        ),
        (lambda p, n: ((p - n) ** 2).mean().detach() + 0 * p.mean(), ["not the right gradient"]),
        (lambda p, n: WrongBackward.apply(p, n), ["not the right gradient"]),
    ],
    ids=["new-leaf", "detached-part", "wrong-backward"],
)
def test_loss_must_pass_the_right_gradient_to_the_prediction(fn, words, capsys):
    assert_fails(check_loss, fn, capsys, *words)


def test_an_endless_backward_is_stopped(one_second, capsys):
    assert_stopped(check_loss, lambda p, n: EndlessBackward.apply(p, n), capsys)


@pytest.mark.parametrize("mode", ["no_grad", "set_grad_enabled", "inference_mode"])
def test_the_right_loss_passes_with_gradients_off_and_the_mode_comes_back(mode, capsys):
    right = lambda p, n: ((p - n) ** 2).mean()  # noqa: E731
    try:
        if mode == "no_grad":
            with torch.no_grad():
                assert_passes(check_loss, right, capsys)
                assert not torch.is_grad_enabled()
        elif mode == "inference_mode":
            with torch.inference_mode():
                assert_passes(check_loss, right, capsys)
                assert torch.is_inference_mode_enabled()
        else:
            torch.set_grad_enabled(False)
            assert_passes(check_loss, right, capsys)
            assert not torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)


def test_a_function_that_turns_gradients_off_leaves_them_on_for_the_notebook(capsys):
    def fn(p, n):
        torch.set_grad_enabled(False)
        return ((p - n) ** 2).mean()

    try:
        assert_fails(check_loss, fn, capsys, "cut off")
        assert torch.is_grad_enabled()
    finally:
        torch.set_grad_enabled(True)


# ----------------------------------------------------------------------------- dtype


def reverse_step_float64(x_t, t, predicted_noise, schedule, z):
    beta, abar = schedule.betas[t : t + 1], schedule.alpha_bars[t : t + 1]  # float64 [1]
    mean = (x_t - beta / (1 - abar).sqrt() * predicted_noise) / (1 - beta).sqrt()
    return mean if t == 0 else mean + beta.sqrt() * z


@pytest.mark.parametrize(
    "check, fn, words",
    [
        (
            check_reverse_step,
            reverse_step_float64,
            ["torch.float64, but x_t has torch.float32", ".to(x_t.dtype)", "schedule.gather"],
        ),
        (
            check_loss,
            lambda p, n: ((p.double() - n.double()) ** 2).mean(),
            ["torch.float64, but predicted_noise has torch.float32", ".to(predicted_noise.dtype)"],
        ),
        (
            check_alpha_bar,
            lambda b: torch.cumprod((1 - b).float(), dim=0),
            ["torch.float32, but betas has torch.float64", "Drop the .float()"],
        ),
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0).half(), ["float16", "Half precision"]),
        (check_q_sample, lambda x0, t, n, s: q_sample(x0, t, n, s).half(), ["Half precision"]),
        (check_loss, lambda p, n: ((p - n) ** 2).mean().bfloat16(), ["bfloat16", "Half prec"]),
        (check_reverse_step, lambda *a: reverse_step(*a).half(), ["float16", "Half precision"]),
        (
            check_reverse_step,
            lambda *a: reverse_step(*a).half().float(),  # float32, but rounded to float16
            ["rounded to torch.float16", "Compute in the dtype of x_t"],
        ),
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0).half().double(), ["rounded to"]),
    ],
    ids=[
        "reverse-float64",
        "loss-float64",
        "alpha-bar-float32",
        "alpha-bar-float16",
        "q-sample-float16",
        "loss-bfloat16",
        "reverse-float16",
        "reverse-rounded",
        "alpha-bar-rounded",
    ],
)
def test_a_result_in_another_dtype_says_which_and_what_to_do(check, fn, words, capsys):
    assert_fails(check, fn, capsys, *words)


# ----------------------------------------------------------------------------- odd results


def generator(betas):
    yield torch.cumprod(1 - betas, 0)


class Refuses(torch.Tensor):
    """A tensor subclass whose every operation raises."""

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError("this subclass refuses every operation")


class UnprintableError(Exception):
    def __str__(self):
        raise ValueError("no text")


def raises(err):
    def fn(*args):
        raise err

    return fn


@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize(
    "check, fn, words",
    [
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0).to("meta"), ["meta tensor"]),
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0).to_sparse(), ["sparse", "dense"]),
        (check_q_sample, lambda x0, t, n, s: q_sample(x0, t, n, s).to_sparse(), ["sparse"]),
        (
            check_alpha_bar,
            lambda b: torch.nested.nested_tensor([torch.cumprod(1 - b, 0)]),
            ["nested tensor"],
        ),
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0) + 0j, ["complex", "real numbers"]),
        (check_alpha_bar, generator, ["generator", "yield", "return"]),
        (check_alpha_bar, lambda b: np.cumprod(1 - b.numpy()), ["ndarray", "NumPy"]),
        (check_loss, raises(UnprintableError()), ["raised UnprintableError"]),
        (check_loss, raises(SystemExit(3)), ["raised SystemExit"]),
        (check_loss, functools.partial(lambda a, b, c, d: a, 1), ["(b, c, d)", "2 arguments"]),
    ],
    ids=[
        "meta",
        "sparse",
        "sparse-image",
        "nested",
        "complex",
        "generator",
        "numpy",
        "unprintable-error",
        "system-exit",
        "partial",
    ],
)
def test_odd_results_and_errors_get_a_message_and_false(check, fn, words, capsys):
    try:
        out = assert_fails(check, fn, capsys, *words)
    except (Exception, SystemExit) as err:
        pytest.fail(f"the checker raised {type(err).__name__}: {err}")
    assert out.count("\n") == 1, out


def test_a_long_error_message_is_cut_to_its_first_line(capsys):
    out = assert_fails(check_loss, raises(RuntimeError("first line\nsecond line")), capsys)
    assert "first line" in out and "second line" not in out, out


def test_a_tensor_subclass_is_judged_as_a_plain_tensor(capsys):
    assert_passes(check_alpha_bar, lambda b: torch.cumprod(1 - b, 0).as_subclass(Refuses), capsys)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_a_result_on_another_device_is_named(capsys):
    q_sample_on_gpu = lambda x0, t, n, s: q_sample(x0, t, n, s).cuda()  # noqa: E731
    assert_fails(check_q_sample, q_sample_on_gpu, capsys, "is on cuda:0 but x0 is on cpu")


# ----------------------------------------------------------------------------- hints name causes


def q_sample_named_in_another_order(noise, t, x0, schedule):  # the right formula
    return q_sample(x0, t, noise, schedule)


def q_sample_single_number(x0, t, noise, schedule):
    abar = float(schedule.alpha_bars[t])  # one number: fine for an int t, not for a tensor
    return abar**0.5 * x0 + (1 - abar) ** 0.5 * noise


def q_sample_per_channel(x0, t, noise, schedule):
    abar = schedule.alpha_bars[t].view(1, -1, 1, 1).float()  # [1, B, 1, 1]: lines up with C
    return abar.sqrt() * x0 + (1 - abar).sqrt() * noise


@pytest.mark.parametrize(
    "check, fn, words, absent",
    [
        (
            check_q_sample,
            q_sample_named_in_another_order,
            ["`x0` and `noise` are swapped", "Your function takes (noise, t, x0, schedule)"],
            [],
        ),
        (
            check_reverse_step,
            lambda x, t, e, s, z: reverse_step(e, t, x, s, z),
            ["`x_t` and `predicted_noise` are swapped"],
            [],
        ),
        (
            check_reverse_step,
            lambda x, t, e, s, z: reverse_step(x, t, z, s, e),
            ["`predicted_noise` and `z` are swapped"],
            [],
        ),
        (check_alpha_bar, lambda b: torch.cumprod(1 - b, 0)[None], ["size 1"], ["Broadcast"]),
        (check_loss, lambda p, n: (p - n) ** 2, ["one value per pixel"], ["Broadcast"]),
        (check_q_sample, q_sample_single_number, ["t is a tensor", "single number"], ["Reshape"]),
        (
            check_q_sample,
            q_sample_per_channel,
            ["right for t = 300; t = 0", "but not for t = tensor"],
            [],
        ),
    ],
    ids=[
        "q-sample-parameters",
        "reverse-x-and-eps",
        "reverse-eps-and-z",
        "alpha-bar-extra-dim",
        "loss-per-pixel",
        "q-sample-t-as-number",
        "q-sample-right-for-ints",
    ],
)
def test_hints_name_the_real_cause(check, fn, words, absent, capsys):
    out = assert_fails(check, fn, capsys, *words)
    for word in absent:
        assert word not in out, out

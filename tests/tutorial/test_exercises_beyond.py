"""Notebook 07's exercise checkers: the right answers, written the ways a learner would, pass;
each typical mistake fails with the hint that names it."""

import pytest
import torch

from diffusion_helpers.tutorial.exercises import (
    check_euler_step,
    check_flow_loss,
    check_langevin_step,
    check_score,
)
from tests.tutorial.test_exercises import assert_fails, assert_passes


def score_loop(eps, t, schedule):
    abar = 1.0
    for beta in schedule.betas[: t + 1].tolist():
        abar *= 1 - beta
    return -eps / (1 - abar) ** 0.5


@pytest.mark.parametrize(
    "fn",
    [
        lambda eps, t, s: -eps / s.sqrt_one_minus_alpha_bars[t],
        lambda eps, t, s: -eps / torch.sqrt(1 - s.alpha_bars[t]).float(),
        score_loop,
    ],
    ids=["table", "sqrt", "loop"],
)
def test_score_right(fn, capsys):
    assert_passes(check_score, fn, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda eps, t, s: eps / s.sqrt_one_minus_alpha_bars[t], ["sign"]),
        (lambda eps, t, s: -eps / (1 - s.alpha_bars[t]), ["square root"]),
        (lambda eps, t, s: -eps * s.sqrt_one_minus_alpha_bars[t], ["multiplied"]),
        (lambda eps, t, s: -eps / s.betas[t].sqrt(), ["sqrt(beta_t)"]),
        (lambda eps, t, s: -eps / s.sqrt_alpha_bars[t], ["sqrt(abar_t)"]),
    ],
    ids=["sign", "variance", "times", "beta", "abar"],
)
def test_score_wrong(fn, words, capsys):
    assert_fails(check_score, fn, capsys, *words)


def test_langevin_step_right(capsys):
    assert_passes(check_langevin_step, lambda x, s, d, z: x + d * s + (2 * d) ** 0.5 * z, capsys)
    assert_passes(
        check_langevin_step,
        lambda x, s, d, z: x + d * s + torch.sqrt(torch.tensor(2 * d)) * z,
        capsys,
    )


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda x, s, d, z: x + d * s + d**0.5 * z, ["left out the 2"]),
        (lambda x, s, d, z: x + d * s + 2 * d * z, ["square root"]),
        (lambda x, s, d, z: x + d / 2 * s + (2 * d) ** 0.5 * z, ["step_size / 2"]),
        (lambda x, s, d, z: x - d * s + (2 * d) ** 0.5 * z, ["sign"]),
        (lambda x, s, d, z: x + d * s, ["no noise"]),
    ],
    ids=["no-2", "no-sqrt", "half", "sign", "no-noise"],
)
def test_langevin_step_wrong(fn, words, capsys):
    assert_fails(check_langevin_step, fn, capsys, *words)


def test_flow_loss_right(capsys):
    assert_passes(check_flow_loss, lambda v, x0, n: ((v - (n - x0)) ** 2).mean(), capsys)
    assert_passes(check_flow_loss, lambda v, x0, n: torch.nn.functional.mse_loss(v, n - x0), capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda v, x0, n: ((v - (x0 - n)) ** 2).mean(), ["you used x0 - noise"]),
        (lambda v, x0, n: ((v - n) ** 2).mean(), ["DDPM's target"]),
        (lambda v, x0, n: ((v - x0) ** 2).mean(), ["x0 target"]),
        (lambda v, x0, n: ((v - (n - x0)) ** 2).sum(), ["summed"]),
        (lambda v, x0, n: (v - (n - x0)).abs().mean(), ["not squared"]),
        (lambda v, x0, n: ((v - (n - x0)) ** 2).mean().detach(), ["backward"]),
    ],
    ids=["reversed", "eps", "x0", "sum", "l1", "detach"],
)
def test_flow_loss_wrong(fn, words, capsys):
    assert_fails(check_flow_loss, fn, capsys, *words)


def test_euler_step_right(capsys):
    assert_passes(check_euler_step, lambda x, v, s, s_next: x + (s_next - s) * v, capsys)
    assert_passes(check_euler_step, lambda x, v, s, s_next: x - (s - s_next) * v, capsys)


@pytest.mark.parametrize(
    "fn, words",
    [
        (lambda x, v, s, sn: x + (s - sn) * v, ["sign"]),
        (lambda x, v, s, sn: x + sn * v, ["s_next * v"]),
        (lambda x, v, s, sn: x - s * v, ["s * v"]),
        (lambda x, v, s, sn: x, []),
    ],
    ids=["sign", "s-next", "whole-way", "no-step"],
)
def test_euler_step_wrong(fn, words, capsys):
    assert_fails(check_euler_step, fn, capsys, *words)

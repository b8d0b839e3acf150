"""Which timesteps the samplers visit: even in t (DDIM), even in log-SNR (DPM-Solver), all (DDPM)."""

import math

import pytest

from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.timesteps import ddim_timesteps, logsnr_timesteps, method_timesteps


def test_ddim_timesteps_even_decreasing_from_last_to_minus_one():
    ts = ddim_timesteps(1000, 50)
    assert len(ts) == 51
    assert ts[0] == 999 and ts[-2:] == [0, -1]
    gaps = [a - b for a, b in zip(ts[:-1], ts[1:])]
    assert all(g > 0 for g in gaps)
    assert max(gaps[:-1]) - min(gaps[:-1]) <= 1  # even spacing up to rounding: 999 / 49 = 20.4
    assert ddim_timesteps(10, 10) == list(range(9, -2, -1))  # every step, as DDPM
    assert ddim_timesteps(10, 1) == [9, -1]


@pytest.mark.parametrize("steps", [0, 11, 2.5, True])
def test_ddim_timesteps_rejects_bad_steps(steps):
    with pytest.raises(ValueError, match="steps"):
        ddim_timesteps(10, steps)


def half_log_snr(schedule, t):
    ab = float(schedule.alpha_bars[t])
    return 0.5 * math.log(ab / (1 - ab))


def test_logsnr_timesteps_even_in_lambda_from_start_to_minus_one():
    schedule = NoiseSchedule(1000)
    ts = logsnr_timesteps(schedule, 20)
    assert len(ts) == 21 and ts[0] == 999 and ts[-2:] == [0, -1]
    gaps = [half_log_snr(schedule, a) - half_log_snr(schedule, b) for a, b in zip(ts, ts[1:-1])]
    assert all(g < 0 for g in gaps)  # lambda rises as t falls
    # Even in lambda up to rounding to whole timesteps: the 19 gaps are 0.51 each, and rounding
    # moves each end by at most half a step's lambda (0.2 at t = 1, 0.006 at t = 999). Even
    # steps in t are far from it (their last gap is 2.9, the first 0.2).
    assert max(gaps) - min(gaps) < 0.25
    spread = [half_log_snr(schedule, a) - half_log_snr(schedule, b)
              for a, b in zip(ddim_timesteps(1000, 20), ddim_timesteps(1000, 20)[1:-1])]  # fmt: skip
    assert max(spread) - min(spread) > 2.0


@pytest.mark.parametrize("steps,start", [(50, None), (200, None), (1000, None), (30, 40), (41, 40)])
def test_logsnr_timesteps_stay_distinct_where_lambda_moves_fast(steps, start):
    """Near t = 0 one timestep spans more lambda than a gap of 50+ steps: ties are moved up."""
    schedule = NoiseSchedule(1000)
    ts = logsnr_timesteps(schedule, steps, start)
    top = 999 if start is None else start
    assert len(ts) == steps + 1 and ts[0] == top and ts[-2:] == [0, -1]
    assert all(a > b for a, b in zip(ts, ts[1:]))
    if steps == top + 1:
        assert ts == list(range(top, -2, -1))  # every step, as DDPM


@pytest.mark.parametrize(
    "steps,start,word",
    [(0, None, "steps"), (101, None, "steps"), (12, 10, "steps"), (2.0, None, "steps"),
     (5, 100, "start"), (5, -1, "start")],
)  # fmt: skip
def test_logsnr_timesteps_rejects_bad_arguments(steps, start, word):
    with pytest.raises(ValueError, match=word):
        logsnr_timesteps(NoiseSchedule(100), steps, start)


def test_method_timesteps_dpm_solver_even_in_lambda_ddim_even_in_t():
    schedule = NoiseSchedule(1000)
    assert method_timesteps("dpm_solver", schedule, None) == logsnr_timesteps(schedule, 20)
    assert method_timesteps("dpm_solver", schedule, 8, start=300) == logsnr_timesteps(
        schedule, 8, 300
    )
    assert method_timesteps("ddim", schedule, 8, start=300) == ddim_timesteps(301, 8)
    assert method_timesteps("ddpm", schedule, None, start=300) == list(range(300, -2, -1))

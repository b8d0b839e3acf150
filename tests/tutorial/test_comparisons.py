"""Notebook 04's sampler comparisons, run with an oracle: the exact noise of one known picture,
so every sampler must give that picture back, and the numbers printed and plotted can be
checked against what the oracle guarantees."""

import pytest
import torch
from torch import nn

from diffusion_helpers import Sampler, compare_samplers, quality_by_steps, show_runs
from diffusion_helpers.schedule import NoiseSchedule
from tests.tiny import StandInConfig

SIZE, C = 8, 3


class Oracle(nn.Module):
    """eps*(x_t, t) = (x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t) for one picture x_0 (eq. 4
    solved for the noise)."""

    def __init__(self, picture, schedule):
        super().__init__()
        self.picture, self.schedule = picture, schedule
        self.config = StandInConfig(SIZE, C)

    def forward(self, x, t):
        abar = self.schedule.gather(self.schedule.alpha_bars, t, x)
        return (x - abar.sqrt() * self.picture) / (1 - abar).sqrt()


@pytest.fixture(scope="module")
def world():
    schedule = NoiseSchedule(100)
    gen = torch.Generator().manual_seed(0)
    picture = torch.rand(1, C, SIZE, SIZE, generator=gen) * 1.8 - 0.9  # clipping never bites
    return Oracle(picture, schedule), schedule, picture


SAMPLERS = {
    "DDIM": Sampler("ddim", steps=10),
    "DDIM, eta 1": Sampler("ddim", steps=10, eta=1),
    "DPM-Solver++": Sampler("dpm_solver", steps=10),
}


def test_every_sampler_gives_the_oracles_picture_back_and_says_so(world, capsys):
    model, schedule, picture = world
    runs = compare_samplers(model, schedule, SAMPLERS, picture, n=2, seed=0)
    assert list(runs) == list(SAMPLERS)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(SAMPLERS)
    for line, (name, run) in zip(lines, runs.items()):
        assert run.images.shape == (2, C, SIZE, SIZE)
        # float32 rounding through 10 steps: ~1e-5 away from x_0, so far above 60 dB.
        assert torch.allclose(run.images, picture.expand_as(run.images), atol=1e-3)
        assert line.startswith(name) and " 10 calls" in line
        db = float(line.split("mean PSNR")[1].split("dB")[0])
        assert db > 60


def test_the_same_seed_gives_every_sampler_the_same_start(world):
    model, schedule, picture = world
    # The deterministic DDIM run twice from seed 3 is the same; from seed 4 another x_T.
    runs = [
        compare_samplers(model, schedule, {"a": Sampler("ddim", steps=3)}, picture, n=2, seed=s)
        for s in (3, 3, 4)
    ]
    first, again, other = (r["a"].images for r in runs)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_quality_by_steps_has_one_point_per_step_count_and_keeps_earlier_runs(world, capsys):
    model, schedule, picture = world
    earlier = compare_samplers(model, schedule, {"DDPM": Sampler("ddpm")}, picture, n=1)
    curves = quality_by_steps(
        model, schedule, {"DDIM": Sampler("ddim")}, picture, steps=(2, 5), n=1, earlier=earlier
    )
    assert list(curves) == ["DDPM", "DDIM"]
    assert [calls for calls, _ in curves["DDPM"]] == [100]
    assert [calls for calls, _ in curves["DDIM"]] == [2, 5]
    assert all(db > 60 for points in curves.values() for _, db in points)
    assert "DDIM, 5 steps" in capsys.readouterr().out


def test_an_empty_choice_of_samplers_is_refused_with_what_to_give(world):
    model, schedule, picture = world
    with pytest.raises(ValueError, match="at least one name -> dh.Sampler"):
        compare_samplers(model, schedule, {}, picture, n=1)


def test_show_runs_draws_one_row_per_run_titled_with_each_samples_psnr(world):
    model, schedule, picture = world
    runs = compare_samplers(model, schedule, SAMPLERS, picture, n=3, seed=0)
    fig = show_runs(runs, picture, per_run=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 2 * len(SAMPLERS)
    assert titles[0].startswith("DDIM\n") and titles[0].endswith(" dB")
    assert titles[-1].startswith("DPM-Solver++\n")

"""Tests of SDEdit (`edit`) and RePaint inpainting (`inpaint`), without any training.

The stand-in model is an oracle that knows one picture B: it returns the true noise
eps = (x_t - sqrt(abar_t) B) / sqrt(1 - abar_t) (eq. 4 solved for the noise), pixel by pixel.
From any x_t its x0 prediction is B, so a reverse run must end on B wherever the model draws.
"""

import pytest
import torch
from tiny import StandInConfig
from torch import nn

from diffusion_helpers.editing import (
    DEFAULT_JUMP,
    DEFAULT_RESAMPLE,
    edit,
    inpaint,
    repaint_timesteps,
)
from diffusion_helpers.forward import add_noise
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.timesteps import ddim_timesteps, logsnr_timesteps

N, C, SIZE = 2, 3, 16
# float32 rounding (~1e-7) amplified by 1/sqrt(1 - abar_0) = 100 at the last step: ~1e-5; the
# sampler tests measured 3.5e-6 for the same oracle, and allow 1e-4, as here.
ATOL = 1e-4


class Oracle(nn.Module):
    """eps*(x_t, t) for the picture B; counts its calls. With ``num_classes`` it also takes
    labels (and ignores them)."""

    def __init__(self, picture: torch.Tensor, schedule: NoiseSchedule, num_classes=None):
        super().__init__()
        self.picture, self.schedule = picture, schedule
        self.config = StandInConfig(SIZE, C, num_classes=num_classes)
        self.batches: list[int] = []

    def forward(self, x, t, labels=None):
        self.batches.append(x.shape[0])
        abar = self.schedule.gather(self.schedule.alpha_bars, t, x)
        b = self.picture.repeat(x.shape[0] // self.picture.shape[0], 1, 1, 1)  # 2n with guidance
        return (x - abar.sqrt() * b) / (1 - abar).sqrt()


def picture(seed: int) -> torch.Tensor:
    """A random picture [N, C, SIZE, SIZE] inside (-0.9, 0.9): clipping x0_hat never bites."""
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(N, C, SIZE, SIZE, generator=gen) * 1.8 - 0.9


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(1000)


@pytest.fixture(scope="module")
def pictures():
    return picture(0), picture(1)  # A (the input) and B (what the oracle knows)


def centre_mask() -> torch.Tensor:
    """Keep everything but the centre 8x8 square: [1, 1, SIZE, SIZE]."""
    mask = torch.ones(1, 1, SIZE, SIZE)
    mask[..., 4:12, 4:12] = 0
    return mask


# ---------------------------------------------------------------- SDEdit


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver"])
def test_edit_strength_0_returns_the_input(schedule, pictures, method):
    a, b = pictures
    model = Oracle(b, schedule)
    result = edit(model, schedule, a, 0.0, method=method, seed=0, progress=False)
    assert torch.equal(result.images, a)
    assert model.batches == [] and result.timesteps == []


@pytest.mark.parametrize(
    "method,eta", [("ddpm", 0), ("ddim", 0), ("dpm_solver", 0), ("dpm_solver", 1)]
)
def test_edit_strength_1_with_an_oracle_for_b_returns_b_from_any_input(
    schedule, pictures, method, eta
):
    a, b = pictures
    result = edit(Oracle(b, schedule), schedule, a, 1.0, method=method, eta=eta, seed=0,
                  progress=False)  # fmt: skip
    assert result.timesteps[0] == schedule.num_steps - 1
    assert (result.images - b).abs().max() < ATOL
    assert (result.images - a).abs().max() > 0.5  # nothing of A is left to speak of


def test_edit_eta_adds_fresh_noise_along_the_way(schedule, pictures):
    """The same seed with eta = 1 draws new noise at every DPM-Solver step: another picture
    from a model that is not an oracle (the oracle would give B either way)."""
    a, _ = pictures
    net = lambda x, t: 0.3 * x  # noqa: E731  (a fixed, wrong noise guess)
    ode = edit(net, schedule, a, 0.6, method="dpm_solver", seed=0, progress=False)
    sde = edit(net, schedule, a, 0.6, method="dpm_solver", eta=1.0, seed=0, progress=False)
    assert ode.timesteps == sde.timesteps
    assert (ode.images - sde.images).abs().max() > 0.1
    with pytest.raises(ValueError, match="eta"):
        edit(net, schedule, a, 0.6, method="dpm_solver", eta=2.0, progress=False)


@pytest.mark.parametrize("method", ["ddpm", "ddim", "dpm_solver"])
def test_edit_starts_at_round_strength_t_minus_1(schedule, pictures, method):
    a, _ = pictures
    model = Oracle(a, schedule)  # the oracle knows the input: any strength gives it back
    result = edit(model, schedule, a, 0.3, method=method, seed=1, progress=False)
    assert result.timesteps[0] == 299
    if method == "ddpm":
        assert result.timesteps == list(range(299, -1, -1))
    else:  # the default steps of a whole run times 300 / 1000, from t0 = 299 down to 0
        if method == "ddim":
            assert result.timesteps == ddim_timesteps(300, 15)[:-1]
        else:  # even in log-SNR between t0 and 0
            assert result.timesteps == logsnr_timesteps(schedule, 6, start=299)[:-1]
    assert len(model.batches) == len(result.timesteps)
    assert (result.images - a).abs().max() < ATOL


def z_scores(x_t: torch.Tensor, x0: torch.Tensor, t: int, schedule: NoiseSchedule):
    """(x_t - sqrt(abar_t) x_0) / sqrt(1 - abar_t): standard normal if x_t ~ q(x_t | x_0)."""
    abar = float(schedule.alpha_bars[t])
    return (x_t - abar**0.5 * x0) / (1 - abar) ** 0.5


# The kept part below has 3/4 of N C SIZE^2 = 1152 values: the std of their mean is 0.03 and
# that of their std about 0.02; 0.1 is > 3 sigma for both. Pasting A noised to the timestep one
# DDIM step (111) off fails it (tried).
Z_TOL = 0.1


def test_edit_noises_the_input_to_t0_by_eq4(schedule, pictures):
    """The run starts from add_noise(A, t0) with the seeded generator's first draw."""
    a, b = pictures
    result = edit(Oracle(b, schedule), schedule, a, 0.4, method="ddim", steps=4, seed=5,
                  every=1, progress=False)  # fmt: skip
    first = result.frames[0]
    want, _ = add_noise(a, 399, schedule, generator=torch.Generator().manual_seed(5))
    assert first.t == 399
    torch.testing.assert_close(first.x_t, want, rtol=0, atol=1e-6)  # same float32 ops


def test_edit_is_seeded_and_steps_are_used_as_given(schedule, pictures):
    a, b = pictures
    torch.manual_seed(0)
    net = nn.Conv2d(C, C, 3, padding=1)  # an untrained net: its output depends on the noise

    def model(x, t):
        return net(x)

    one = edit(model, schedule, a, 0.5, method="ddim", steps=4, seed=3, progress=False)
    two = edit(model, schedule, a, 0.5, method="ddim", steps=4, seed=3, progress=False)
    other = edit(model, schedule, a, 0.5, method="ddim", steps=4, seed=4, progress=False)
    assert torch.equal(one.images, two.images) and not torch.equal(one.images, other.images)
    assert one.timesteps == ddim_timesteps(500, 4)[:-1]


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"strength": -0.1}, "strength"),
        ({"strength": 1.5}, "strength"),
        ({"strength": True}, "strength"),
        ({"strength": 0.5, "method": "ddim", "steps": 0}, "steps"),
        ({"strength": 0.5, "method": "ddim", "steps": 501}, "steps"),
        ({"strength": 0.5, "method": "ddpm", "steps": 10}, "steps"),
        ({"strength": 0.5, "method": "euler"}, "method"),
        ({"strength": 0.5, "labels": 1}, "labels"),  # the oracle is unconditional
    ],
)
def test_edit_bad_arguments(schedule, pictures, kwargs, word):
    a, b = pictures
    model = Oracle(b, schedule)
    with pytest.raises(ValueError, match=word):
        edit(model, schedule, a, progress=False, **kwargs)
    assert model.batches == []


def test_edit_refuses_pictures_outside_the_data_range(schedule, pictures):
    a, b = pictures
    with pytest.raises(ValueError, match="image"):
        edit(Oracle(b, schedule), schedule, (a + 1) / 2 * 255, 0.5, progress=False)


def test_edit_with_guidance_calls_the_model_on_2n_images(schedule, pictures):
    a, b = pictures
    model = Oracle(b, schedule, num_classes=4)
    edit(model, schedule, a, 0.2, method="ddim", labels=1, guidance_scale=2.0, progress=False)
    assert model.batches and set(model.batches) == {2 * N}


# ---------------------------------------------------------------- RePaint


def test_repaint_timesteps_example_and_shape():
    assert repaint_timesteps([4, 3, 2, 1, 0, -1], 2, 2) == [4, 3, 2, 4, 3, 2, 1, 0, 2, 1, 0, -1]
    base = ddim_timesteps(100, 100)
    assert repaint_timesteps(base, 1, 10) == base  # resample = 1: no resampling
    ts = repaint_timesteps(base, 3, 10)
    falling = sum(1 for t, u in zip(ts[:-1], ts[1:]) if u < t)
    rising = [(t, u) for t, u in zip(ts[:-1], ts[1:]) if u > t]
    # Jumps after the 10th, 20th, ..., 100th step, but not from -1 (the 100th lands there):
    # 9 places, 2 extra passes each, each pass redoing 10 steps.
    assert len(rising) == 9 * 2 and all(u - t == 10 for t, u in rising)
    assert falling == 100 + 9 * 2 * 10
    assert max(ts) == 99 and ts[-2:] == [0, -1]


@pytest.mark.parametrize(
    "method,resample,jump,eta",
    [("ddpm", 1, 1, 0), ("ddpm", 3, 5, 0), ("ddim", 2, 3, 0), ("dpm_solver", 2, 4, 0),
     ("dpm_solver", 1, 1, 1), ("ddim", 1, 1, 1)],
)  # fmt: skip
def test_inpaint_keeps_a_and_fills_with_b(schedule, pictures, method, resample, jump, eta):
    """Input A, an oracle for B: the kept part is A exactly, the filled part becomes B (the
    oracle predicts B there from any x_t, and the reverse steps act pixel by pixel)."""
    a, b = pictures
    mask = centre_mask()
    result = inpaint(Oracle(b, schedule), schedule, a, mask, resample=resample, jump=jump,
                     method=method, eta=eta, seed=0, progress=False)  # fmt: skip
    keep = mask.bool().expand_as(a)
    assert torch.equal(result.images[keep], a[keep])
    assert (result.images[~keep] - b[~keep]).abs().max() < ATOL
    assert (a[~keep] - b[~keep]).abs().max() > 0.5  # A and B do differ there


def test_inpaint_kept_part_is_the_input_noised_to_each_step(schedule, pictures):
    """Each step's input x_t holds, in the kept part, A noised to t (pasted after the step
    before): its z-scores against q(x_t | A) are standard normal."""
    a, b = pictures
    mask = torch.zeros(1, 1, SIZE, SIZE)
    mask[..., :, :12] = 1  # keep three quarters, so that there are enough values to test
    result = inpaint(Oracle(b, schedule), schedule, a, mask, method="ddim", steps=10,
                     resample=1, seed=2, every=1, progress=False)  # fmt: skip
    keep = mask.bool().expand_as(a)
    for frame in result.frames[1:-1]:  # frame 0 is x_T, drawn before any pasting
        z = z_scores(frame.x_t, a, frame.t, schedule)[keep]
        assert abs(z.mean().item()) < Z_TOL and abs(z.std().item() - 1) < Z_TOL, frame.t


def test_inpaint_per_image_and_per_channel_masks(schedule, pictures):
    a, b = pictures
    mask = torch.ones(N, C, SIZE, SIZE)
    mask[0, :, :, :8] = 0  # image 0: fill the left half
    mask[1, 1] = 0  # image 1: fill the green channel
    result = inpaint(Oracle(b, schedule), schedule, a, mask.bool(), method="ddim", seed=0,
                     progress=False)  # fmt: skip
    keep = mask.bool()
    assert torch.equal(result.images[keep], a[keep])
    assert (result.images[~keep] - b[~keep]).abs().max() < ATOL


def test_inpaint_resampling_costs_what_the_schedule_says(schedule, pictures):
    a, b = pictures
    model = Oracle(b, schedule)
    result = inpaint(model, schedule, a, centre_mask(), method="ddim", steps=20, resample=3,
                     jump=5, seed=0, progress=False)  # fmt: skip
    assert result.timesteps == repaint_timesteps(ddim_timesteps(1000, 20), 3, 5)[:-1]
    # 20 steps, jumps after steps 5, 10, 15 (not 20: that lands on -1), 2 extra passes of 5.
    assert len(model.batches) == 20 + 3 * 2 * 5
    assert DEFAULT_RESAMPLE >= 1 and DEFAULT_JUMP >= 1


def test_inpaint_without_resampling_ignores_jump(schedule, pictures):
    a, b = pictures
    model = Oracle(b, schedule)
    result = inpaint(model, schedule, a, centre_mask(), method="ddim", steps=3, resample=1,
                     jump=DEFAULT_JUMP, seed=0, progress=False)  # fmt: skip
    assert result.timesteps == ddim_timesteps(1000, 3)[:-1] and len(model.batches) == 3


def bad_masks():
    half = torch.ones(1, 1, SIZE, SIZE)
    half[..., :8] = 0
    return [
        (half[0], "shape"),  # 3-D
        (half[..., :8], "shape"),  # wrong width
        (half.expand(3, 1, SIZE, SIZE), "shape"),  # 3 masks for 2 images
        (half.expand(1, 2, SIZE, SIZE), "shape"),  # 2 channels for 3
        (half * 0.5, "0 \\(fill\\) and 1"),
        (torch.ones(1, 1, SIZE, SIZE), "all ones"),
        (torch.zeros(1, 1, SIZE, SIZE), "all zeros"),
        ("left half", "tensor"),
    ]


@pytest.mark.parametrize("mask,word", bad_masks())
def test_inpaint_bad_masks_raise(schedule, pictures, mask, word):
    a, b = pictures
    model = Oracle(b, schedule)
    with pytest.raises(ValueError, match=word) as err:
        inpaint(model, schedule, a, mask, progress=False)
    assert "mask" in str(err.value)  # the error names the argument
    assert model.batches == []


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"resample": 0}, "resample"),
        ({"jump": 0}, "jump"),
        ({"method": "ddim", "steps": 10, "resample": 2, "jump": 11}, "jump"),
        ({"method": "ddpm", "steps": 50}, "steps"),
        ({"method": "dpm_solver", "eta": 1.5}, "eta"),
        ({"method": "ddpm", "eta": 1.0}, "eta"),
    ],
)
def test_inpaint_bad_arguments(schedule, pictures, kwargs, word):
    a, b = pictures
    model = Oracle(b, schedule)
    with pytest.raises(ValueError, match=word):
        inpaint(model, schedule, a, centre_mask(), progress=False, **kwargs)
    assert model.batches == []

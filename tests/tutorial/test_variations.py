"""vary.py: the crops dataset, the patch model's window, training and sampling on crops, and the
three measurements on pictures whose answer is known (a copy, a reshuffle, noise)."""

import pytest
import torch
from tiny import smooth_picture

from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.tutorial.variations import (
    RandomCrops,
    patch_model,
    receptive_field,
    sample_variations,
    train_variations,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SCHEDULE = NoiseSchedule(num_steps=1000)
FAST = dict(progress=False, precision="fp32", device="cpu")


def tiny_patch_model(crop=8, seed=0):
    return patch_model(crop, 3, base_channels=8, seed=seed)


# ----------------------------------------------------------------------------- RandomCrops


def test_crops_are_fixed_by_their_index_and_cut_from_the_picture():
    picture = smooth_picture(16)
    crops = RandomCrops(picture, 8, count=50, seed=3)
    again = RandomCrops(picture, 8, count=50, seed=3)
    assert len(crops) == 50
    for i in (0, 7, 49):
        item = crops[i]
        assert item.shape == (3, 8, 8) and item.dtype == torch.float32
        assert torch.equal(item, again[i]) and torch.equal(item, crops[i])
        y, x, mirrored = crops.where(i)
        assert not mirrored
        assert torch.equal(item, picture[0, :, y : y + 8, x : x + 8])
        assert -1 <= float(item.min()) and float(item.max()) <= 1
    other = RandomCrops(picture, 8, count=50, seed=4)
    assert [crops.where(i) for i in range(50)] != [other.where(i) for i in range(50)]
    with pytest.raises(IndexError):
        crops[50]


def test_crop_positions_cover_every_position_and_flips_are_half():
    picture = smooth_picture(16)
    crops = RandomCrops(picture, 8, count=2000, flip=True)
    places = [crops.where(i) for i in range(len(crops))]
    assert {(y, x) for y, x, _ in places} == {(y, x) for y in range(9) for x in range(9)}
    share = sum(m for _, _, m in places) / len(places)
    assert 0.45 < share < 0.55  # 2000 fair coin flips: std 0.011
    i = next(k for k, (_, _, m) in enumerate(places) if m)
    y, x, _ = places[i]
    assert torch.equal(crops[i], picture[0, :, y : y + 8, x : x + 8].flip(-1))


def test_crops_refuse_bad_arguments():
    with pytest.raises(ValueError, match="crop"):
        RandomCrops(smooth_picture(16), 17)
    with pytest.raises(ValueError, match="count"):
        RandomCrops(smooth_picture(16), 8, count=0)
    with pytest.raises(ValueError, match="picture"):
        RandomCrops(torch.zeros(2, 3, 16, 16), 8)


# ----------------------------------------------------------------------------- patch model


def conv_count(model):
    return sum(isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) for m in model.modules())


def test_receptive_field_of_a_one_level_net_counts_its_convolutions():
    """No downsampling: each 3x3 convolution widens the window by 2 px, so 12 of them see
    1 + 2 * 12 = 25 px."""
    model = patch_model(24, 3, base_channels=8, channel_mults=(1,), num_res_blocks=1)
    assert conv_count(model) == 12
    assert receptive_field(model) == 25


def test_default_patch_model_sees_less_than_a_48px_picture():
    model = patch_model(24, 3, seed=0)
    assert receptive_field(model) == 37 < 48  # the docstring's number
    assert receptive_field(patch_model(8, 3)) == 37  # not cut by a small crop
    assert all(type(m).__name__ != "Attention" for m in model.modules())
    assert model.config.attention_resolutions == ()


def test_receptive_field_measure_sees_downsampling():
    """Convolutions at half resolution see twice as far: one more block per level on the way
    down (and so on the way up) adds 4 convolutions at full resolution (2 px each) and 4 at
    half resolution (4 px each): 24 px more."""
    small = patch_model(24, 3, base_channels=8, seed=0)
    large = patch_model(24, 3, base_channels=8, num_res_blocks=1, seed=0)
    assert receptive_field(large) == receptive_field(small) + 24


def test_outside_the_window_only_statistics_reach_an_output_pixel():
    """The real model, GroupNorm kept: rearranging the input outside the window (same values,
    other places) moves the centre output pixel through GroupNorm's statistics only, by a few
    percent of what the same rearrangement inside the window does."""
    model = patch_model(16, 3, base_channels=8, seed=0).eval()  # window 37 px
    init = torch.Generator().manual_seed(0)
    torch.nn.init.normal_(model.conv_out.weight, std=0.1, generator=init)
    x = torch.randn(1, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([300])
    far, near = x.clone(), x.clone()
    far[..., :24, :] = x[..., :24, :].roll(8, -1)  # rows 0-23: over 18 px from row 48
    near[..., 42:55, 42:55] = x[..., 42:55, 42:55].flip(-1)  # inside the window
    with torch.no_grad():
        base = model(x, t)[0, :, 48, 48]
        d_far = (model(far, t)[0, :, 48, 48] - base).abs().max()
        d_near = (model(near, t)[0, :, 48, 48] - base).abs().max()
    assert d_far < 0.05 * d_near  # measured: 0.2%


# ----------------------------------------------------------------------------- train, sample


def test_train_variations_resumes_exactly(tmp_path):
    """Crops are fixed by their index, so a run stopped after its checkpoint and resumed draws
    the same crops, t and noise as one that was never stopped (as tests/test_train.py checks
    for a tensor of pictures)."""
    picture, n = smooth_picture(16), 3

    def run(model, **extra):
        return train_variations(picture, SCHEDULE, model=model, steps=2 * n, batch_size=4,
                                     seed=0, flip=True, **FAST, **extra)  # fmt: skip

    class InterruptError(Exception):
        pass

    def stop_at_n(step, loss):
        if step == n:
            raise InterruptError  # as if the kernel died right after the checkpoint at step n

    straight = run(tiny_patch_model())
    path = tmp_path / "crops.pt"
    with pytest.raises(InterruptError):
        run(tiny_patch_model(), checkpoint=path, checkpoint_every=n, callback=stop_at_n)
    resumed = run(tiny_patch_model(seed=1), checkpoint=path)
    assert resumed.resumed_from == n
    assert resumed.losses == straight.losses
    for a, b in zip(straight.raw_model.parameters(), resumed.raw_model.parameters()):
        assert torch.equal(a, b)


def test_train_variations_default_model_trains_on_half_size_crops():
    result = train_variations(smooth_picture(16), SCHEDULE, steps=1, batch_size=2, seed=0,
                                   **FAST)  # fmt: skip
    assert result.model.config.image_size == 8 and result.model.config.attention_resolutions == ()


@pytest.mark.parametrize("size", [8, 24])
def test_sample_variations_returns_the_size_asked_for(size):
    model = tiny_patch_model()
    out = sample_variations(model, SCHEDULE, 2, size, method="ddim", steps=3, seed=0,
                                 progress=False)  # fmt: skip
    assert out.images.shape == (2, 3, size, size)
    assert torch.isfinite(out.images).all()


def test_sample_variations_refuses_a_size_the_net_cannot_halve():
    model = patch_model(8, 3, base_channels=8, channel_mults=(1, 2))
    with pytest.raises(ValueError, match="size"):
        sample_variations(model, SCHEDULE, 1, 13, method="ddim", steps=2, progress=False)


# ----------------------------------------------------------------------------- measurements

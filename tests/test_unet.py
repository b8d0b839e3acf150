"""The U-Net: shapes, size checks, configs, presets, parameter and FLOP counts."""

import pytest
import torch
from tiny import tiny_config

from diffusion_helpers.unet import Attention, UNet, UNetConfig, timestep_embedding

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32, 48])
def test_output_shape_equals_input_two_levels(channels, size):
    torch.manual_seed(0)
    model = UNet(tiny_config(image_channels=channels))
    x = torch.randn(2, channels, size, size)
    out = model(x, torch.tensor([0, 999]))
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [16, 32])
def test_output_shape_three_levels_and_int_t(size):
    model = UNet(tiny_config(channel_mults=(1, 2, 2), image_size=32))
    x = torch.randn(3, 3, size, size)
    assert model(x, 5).shape == x.shape  # an int t is used for the whole batch


@pytest.mark.parametrize("shape", [(1, 3, 30, 30), (1, 3, 18, 18), (1, 3, 32, 16)])
def test_sizes_that_do_not_divide_raise_naming_valid_sizes(shape):
    model = UNet(tiny_config(channel_mults=(1, 2, 2), image_size=32))  # needs sides % 4 == 0
    with pytest.raises(
        ValueError, match=r"divisible by 4 \(patch stem x 2\^\(levels-1\)\).*16, 20, 24"
    ):
        model(torch.randn(*shape), 0)


def test_wrong_channel_count_is_a_clear_error():
    model = UNet(tiny_config(image_channels=1))
    with pytest.raises(ValueError, match="1-channel"):
        model(torch.randn(1, 3, 16, 16), 0)


def test_param_count_is_sum_of_numel_and_grows_with_width():
    small, wide = UNet(tiny_config()), UNet(tiny_config(base_channels=16))
    assert small.num_parameters() == sum(p.numel() for p in small.parameters())
    # Conv weights grow with (width)^2, so doubling the width roughly quadruples the count.
    assert 3.0 < wide.num_parameters() / small.num_parameters() < 4.2


def test_flops_positive_and_scale_with_area():
    model = UNet(tiny_config(attention_resolutions=()))
    f16, f32 = model.flops(16), model.flops(32)
    assert f16 > 0
    # Every convolution costs FLOPs proportional to H*W, so doubling the side gives 4x; only the
    # time-embedding MLP and the per-block embedding projections do not grow, so the ratio sits
    # just under 4. The band [3.8, 4.0] would catch a count that misses the convs or the area.
    assert 3.8 < f32 / f16 <= 4.0
    # Attention's q k^T grows with (H*W)^2, so with attention the ratio exceeds 4.
    with_attn = UNet(tiny_config(attention_resolutions=(8,)))
    assert with_attn.flops(32) / with_attn.flops(16) > 4.0


def test_attention_only_at_the_resolutions_asked_for():
    cfg = tiny_config(channel_mults=(1, 2, 2), image_size=32, attention_resolutions=(16,))
    model = UNet(cfg)
    assert cfg.attention_levels() == {1}
    n_attn = sum(isinstance(m, Attention) for m in model.modules())
    # level 1: one block down + two blocks up (num_res_blocks + 1); the middle is level 2.
    assert n_attn == 3
    none = UNet(tiny_config(attention_resolutions=()))
    assert not any(isinstance(m, Attention) for m in none.modules())


def test_attention_resolution_not_in_the_net_is_rejected():
    with pytest.raises(ValueError, match=r"attention_resolutions contains 5.*\[16, 8\]"):
        UNet(tiny_config(attention_resolutions=(5,)))


def test_config_round_trip():
    cfg = tiny_config(dropout=0.1)
    model = UNet(cfg)
    assert model.config == cfg
    d = cfg.to_dict()
    assert isinstance(d["channel_mults"], list)  # plain types, for weights_only loading
    again = UNet(UNetConfig.from_dict(d))
    assert again.config == cfg
    assert {k: v.shape for k, v in again.state_dict().items()} == {
        k: v.shape for k, v in model.state_dict().items()
    }
    with pytest.raises(ValueError, match="unknown U-Net config keys"):
        UNetConfig.from_dict({**d, "widths": 3})


def test_presets_build_and_unknown_preset_is_named():
    tiny = UNet.preset("tiny", image_channels=1)
    assert tiny.config.image_channels == 1
    assert tiny(torch.randn(1, 1, 32, 32), 3).shape == (1, 1, 32, 32)
    with pytest.raises(ValueError, match="choose one of tiny"):
        UNet.preset("huge")


def test_bad_configs_raise_value_error():
    with pytest.raises(ValueError, match="image_channels"):
        UNet(tiny_config(image_channels=2))
    with pytest.raises(ValueError, match="norm_groups"):
        UNet(tiny_config(base_channels=6))


def test_untrained_net_predicts_zero_noise():
    # The last conv starts at zero (DDPM), so the first loss is E[eps^2] = 1.
    model = UNet(tiny_config())
    assert torch.count_nonzero(model(torch.randn(2, 3, 16, 16), 10)) == 0


def test_timestep_embedding_is_sin_cos_of_t():
    emb = timestep_embedding(torch.tensor([0, 7]), 8)
    assert emb.shape == (2, 8)
    assert torch.allclose(emb[0], torch.tensor([0.0] * 4 + [1.0] * 4))  # sin 0, cos 0
    assert torch.allclose(emb[1, 0], torch.sin(torch.tensor(7.0)))  # first frequency is 1
    assert torch.allclose(emb[1].pow(2)[:4] + emb[1].pow(2)[4:], torch.ones(4))  # sin^2+cos^2


def test_a_patch_stem_makes_the_net_work_at_a_smaller_side():
    """With patch_size p the U-Net sees p x p patches as positions: a 64 px picture through a
    stem of 2 costs what 32 px does without one (FLOPs within 5%), and comes back at 64 px."""
    plain32 = UNet.preset("tiny", image_size=32, seed=0)
    stem64 = UNet.preset("tiny", image_size=64, patch_size=2, seed=0)
    assert stem64.config.inner_size == 32 and stem64.config.attention_resolutions == (8,)
    x = torch.randn(2, 3, 64, 64)
    assert stem64(x, torch.tensor([0, 999])).shape == (2, 3, 64, 64)
    assert abs(stem64.flops() / plain32.flops() - 1) < 0.05
    assert stem64.valid_sizes(16, 40) == [16, 24, 32, 40]  # sides divide by 2 x 2^(levels-1)
    with pytest.raises(ValueError, match="not divisible by 8"):
        UNet.preset("tiny", image_size=36, patch_size=2)


def test_the_stem_keeps_each_patch_together():
    """pixel_unshuffle puts the p^2 pixels of a patch into one position's channels: changing
    one pixel of the top-left patch of an all-zero picture moves conv_in's output at position
    (0, 0) of the inner grid, and at no position the 3x3 kernel does not reach."""
    net = UNet.preset("tiny", image_size=32, patch_size=4, image_channels=1, seed=0).eval()
    x = torch.zeros(1, 1, 32, 32)  # grey: 16 values a patch, within the 32 base channels
    base = net.conv_in(torch.nn.functional.pixel_unshuffle(x, 4))
    x[0, 0, 3, 2] = 1.0  # inside patch (0, 0)
    moved = (net.conv_in(torch.nn.functional.pixel_unshuffle(x, 4)) - base).abs().sum(1)[0]
    assert moved[:2, :2].gt(0).all() and moved[2:, :].eq(0).all() and moved[:, 2:].eq(0).all()


def test_a_patch_with_more_values_than_base_channels_is_refused():
    """Patch 4 on RGB packs 48 values into each position, more than the tiny net's 32 base
    channels can give back: such a net cannot even pass the noise through (loss 0.55 after
    300 steps, measured), so it is refused with what to change."""
    with pytest.raises(ValueError, match=r"packs 48 values .* base_channels >= 48"):
        UNet.preset("tiny", image_size=128, patch_size=4)
    UNet.preset("tiny", image_size=128, patch_size=2)  # 12 values: fine
    UNet.preset("tiny", image_size=128, patch_size=4, base_channels=48, norm_groups=8)


def test_configs_written_before_the_stem_load_with_none():
    old = {k: v for k, v in tiny_config().to_dict().items() if k != "patch_size"}
    assert UNetConfig.from_dict(old).patch_size == 1
    with pytest.raises(ValueError, match="patch_size"):
        tiny_config(patch_size=0).check()


@pytest.mark.parametrize(
    "fields, words",
    [
        (dict(image_size=0), "image_size must be a whole number from 1 to 4096, got 0"),
        (dict(image_size=100000), "image_size must be a whole number from 1 to 4096"),
        (dict(image_size=16.0), "image_size must be a whole number"),
        (dict(image_size=3), "Try 4\\."),  # one size, not "4 or 4"
        (dict(image_size=30), "Try 28 or 32\\."),
        (dict(image_channels=3.0), "image_channels must be 1 or 3, got 3.0"),
        (dict(image_channels="3"), "image_channels must be 1 or 3, got '3'"),
        (dict(base_channels=160000), "base_channels must be a whole number"),
    ],
)
def test_sizes_are_bounded_where_they_enter(fields, words):
    """A size that is zero, negative, fractional, huge or of the wrong type is one clear line,
    before anything is built (issue 32: UNet.preset built all of these, or crashed in torch)."""
    with pytest.raises(ValueError, match=words):
        UNet.preset("tiny", **fields)

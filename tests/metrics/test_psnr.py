"""PSNR (metrics/psnr.py): whole pictures, their mirror image, and the filled part only."""

import math

import pytest
import torch

from diffusion_helpers.metrics.psnr import psnr
from diffusion_helpers.pictures.masks import mask_preset


def test_psnr_known_mse():
    ref = torch.zeros(3, 4, 4)  # 0 in [-1, 1] is 0.5 on the [0, 1] scale
    offsets = torch.tensor([0.1, 0.5, -0.2])
    images = ref + offsets.reshape(3, 1, 1, 1)
    mse01 = (offsets / 2) ** 2  # an offset d in [-1, 1] is d / 2 on the [0, 1] scale
    expected = 10 * torch.log10(1 / mse01.double())
    torch.testing.assert_close(psnr(images, ref), expected)
    torch.testing.assert_close(psnr(images, ref.unsqueeze(0)), expected)


def test_psnr_identical_is_inf_and_mirror_picks_nearer():
    ref = torch.linspace(-1, 1, 8).repeat(1, 8, 1)  # [1, 8, 8]: a left-to-right ramp
    ref = ref.expand(3, 8, 8)
    mirrored = ref.flip(-1).unsqueeze(0)
    assert psnr(ref.unsqueeze(0), ref).item() == math.inf
    assert math.isfinite(psnr(mirrored, ref).item())
    assert psnr(mirrored, ref, mirror=True).item() == math.inf
    near = ref.unsqueeze(0) + 0.1  # closer to the ramp than to its mirror
    assert psnr(near, ref, mirror=True).item() == pytest.approx(psnr(near, ref).item())


def test_psnr_shape_mismatch_raises():
    with pytest.raises(ValueError, match="reference"):
        psnr(torch.zeros(2, 3, 8, 8), torch.zeros(3, 4, 4))


def test_psnr_of_the_filled_part_counts_only_it():
    reference = torch.zeros(1, 3, 8, 8)
    mask = mask_preset("left_half", 8)
    image = reference.clone()
    image[..., :4] = 0.2  # filled part off by 0.1 in [0, 1] pixels: MSE 0.01, 20 dB
    image[..., 4:] = 1.0  # kept part far off: must not count
    assert float(psnr(image, reference, mask=mask)) == pytest.approx(20.0)
    pair = psnr(
        image.repeat(2, 1, 1, 1), reference, mask=torch.cat([mask, mask_preset("centre_box", 8)])
    )
    # the centre box: half of it in the part that is off by 0.5 (MSE 0.13, 8.9 dB)
    assert float(pair[0]) == pytest.approx(20.0) and float(pair[1]) < 10
    with pytest.raises(ValueError, match="keeps every pixel"):
        psnr(image, reference, mask=torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        psnr(image, reference, mask=torch.ones(1, 1, 4, 4))

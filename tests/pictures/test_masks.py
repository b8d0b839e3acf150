"""masks.py: the named masks, rectangles, the greyed preview, PSNR of the filled part, and the
picker widget driven as a learner would (menu, sliders)."""

import pytest
import torch

from diffusion_helpers.pictures import masks
from diffusion_helpers.pictures.masks import mask_preset, masked, rectangle


@pytest.mark.parametrize("size", [16, 32, 48])
def test_presets_fill_what_their_names_say(size):
    half = size // 2
    left = mask_preset("left_half", size)
    assert left.shape == (1, 1, size, size) and left.dtype == torch.float32
    assert (left[..., :half] == 0).all() and (left[..., half:] == 1).all()
    bottom = mask_preset("bottom_half", size)
    assert (bottom[..., size - half :, :] == 0).all() and (bottom[..., : size - half, :] == 1).all()
    box = mask_preset("centre_box", size)
    assert float(1 - box.mean()) == pytest.approx(0.25)
    assert box[0, 0, size // 2, size // 2] == 0 and box[0, 0, 0, 0] == 1


def test_strokes_are_seeded_and_rub_out_about_a_quarter():
    a = mask_preset("strokes", 32, seed=0)
    assert torch.equal(a, mask_preset("strokes", 32, seed=0))
    assert not torch.equal(a, mask_preset("strokes", 32, seed=1))
    assert set(a.unique().tolist()) == {0.0, 1.0}
    filled = [1 - float(mask_preset("strokes", 48, seed=s).mean()) for s in range(10)]
    assert all(0.15 < f < 0.5 for f in filled)  # the constant's comment: 18-45%


def test_rectangle_is_clipped_to_the_picture():
    m = rectangle(8, 6, -2, 5, 4)  # rows 6..10 (clipped to 7), columns -2..1 (from 0)
    expected = torch.ones(1, 1, 8, 8)
    expected[..., 6:8, 0:2] = 0
    assert torch.equal(m, expected)


def test_unknown_preset_and_bad_size_are_refused():
    with pytest.raises(ValueError, match="left_half"):
        mask_preset("top_half", 16)
    with pytest.raises(ValueError, match="size"):
        mask_preset("centre_box", 1)


def test_masked_greys_the_part_to_fill():
    picture = torch.full((2, 3, 8, 8), 0.5)
    shown = masked(picture, mask_preset("left_half", 8))
    assert (shown[..., :4] == masks.FILL_GREY).all() and (shown[..., 4:] == 0.5).all()

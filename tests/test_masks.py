"""masks.py: the named masks, rectangles, the greyed preview, PSNR of the filled part, and the
picker widget driven as a learner would (menu, sliders)."""

import pytest
import torch

from diffusion_helpers import masks


@pytest.mark.parametrize("size", [16, 32, 48])
def test_presets_fill_what_their_names_say(size):
    half = size // 2
    left = masks.mask_preset("left_half", size)
    assert left.shape == (1, 1, size, size) and left.dtype == torch.float32
    assert (left[..., :half] == 0).all() and (left[..., half:] == 1).all()
    bottom = masks.mask_preset("bottom_half", size)
    assert (bottom[..., size - half :, :] == 0).all() and (bottom[..., : size - half, :] == 1).all()
    box = masks.mask_preset("centre_box", size)
    assert float(1 - box.mean()) == pytest.approx(0.25)
    assert box[0, 0, size // 2, size // 2] == 0 and box[0, 0, 0, 0] == 1


def test_strokes_are_seeded_and_rub_out_about_a_quarter():
    a = masks.mask_preset("strokes", 32, seed=0)
    assert torch.equal(a, masks.mask_preset("strokes", 32, seed=0))
    assert not torch.equal(a, masks.mask_preset("strokes", 32, seed=1))
    assert set(a.unique().tolist()) == {0.0, 1.0}
    filled = [1 - float(masks.mask_preset("strokes", 48, seed=s).mean()) for s in range(10)]
    assert all(0.15 < f < 0.5 for f in filled)  # the constant's comment: 18-45%


def test_rectangle_is_clipped_to_the_picture():
    m = masks.rectangle(8, 6, -2, 5, 4)  # rows 6..10 (clipped to 7), columns -2..1 (from 0)
    expected = torch.ones(1, 1, 8, 8)
    expected[..., 6:8, 0:2] = 0
    assert torch.equal(m, expected)


def test_unknown_preset_and_bad_size_are_refused():
    with pytest.raises(ValueError, match="left_half"):
        masks.mask_preset("top_half", 16)
    with pytest.raises(ValueError, match="size"):
        masks.mask_preset("centre_box", 1)


def test_masked_greys_the_part_to_fill():
    picture = torch.full((2, 3, 8, 8), 0.5)
    shown = masks.masked(picture, masks.mask_preset("left_half", 8))
    assert (shown[..., :4] == masks.FILL_GREY).all() and (shown[..., 4:] == 0.5).all()


def test_region_psnr_counts_only_the_filled_part():
    reference = torch.zeros(1, 3, 8, 8)
    mask = masks.mask_preset("left_half", 8)
    image = reference.clone()
    image[..., :4] = 0.2  # filled part off by 0.1 in [0, 1] pixels: MSE 0.01, 20 dB
    image[..., 4:] = 1.0  # kept part far off: must not count
    assert float(masks.region_psnr(image, reference, mask)) == pytest.approx(20.0)
    pair = masks.region_psnr(image.repeat(2, 1, 1, 1), reference,
                             torch.cat([mask, masks.mask_preset("centre_box", 8)]))  # fmt: skip
    # the centre box: half of it in the part that is off by 0.5 (MSE 0.13, 8.9 dB)
    assert float(pair[0]) == pytest.approx(20.0) and float(pair[1]) < 10
    with pytest.raises(ValueError, match="keeps every pixel"):
        masks.region_psnr(image, reference, torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="mask"):
        masks.region_psnr(image, reference, torch.ones(1, 1, 4, 4))


def test_picker_follows_the_menu_and_the_sliders():
    picture = torch.rand(1, 3, 16, 16) * 2 - 1
    picker = masks.MaskPicker(picture)
    assert torch.equal(picker.mask(), masks.mask_preset("centre_box", 16))
    assert all(s.disabled for s in picker.sliders.values())
    first = picker.view.value
    picker.menu.value = "left_half"
    assert torch.equal(picker.mask(), masks.mask_preset("left_half", 16))
    assert picker.view.value != first and "50%" in picker.note.value
    picker.menu.value = "rectangle"
    assert not any(s.disabled for s in picker.sliders.values())
    picker.sliders["top"].value, picker.sliders["height"].value = 0, 2
    picker.sliders["left"].value, picker.sliders["width"].value = 0, 16
    assert torch.equal(picker.mask(), masks.rectangle(16, 0, 0, 2, 16))
    assert "12%" in picker.note.value or "13%" in picker.note.value  # 32 of 256 pixels

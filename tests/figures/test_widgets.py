"""Tests of widgets.py: the forward slider and the reverse explorer, their pictures and sizes."""

import io
import math

import numpy as np
import pytest
import torch
from PIL import Image
from tiny import ramp_picture

from diffusion_helpers.figures import widgets
from diffusion_helpers.figures.widgets import (
    MaskPicker,
    display_scale,
    forward_slider,
    grid_columns,
    reverse_explorer,
)
from diffusion_helpers.pictures.images import to_numpy
from diffusion_helpers.pictures.masks import mask_preset, rectangle
from diffusion_helpers.reverse import Frame
from diffusion_helpers.schedule import NoiseSchedule


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule(num_steps=50)


@pytest.fixture(scope="module")
def image():
    return ramp_picture()


def flat_frames(count, n, size, channels=3):
    """Frames from t = count-1 down to 0; in every frame sample i is flat grey at level i / n
    of the way from black to mid-grey, in x_t and in x0_pred alike, so each is recognisable."""
    levels = torch.linspace(-1, 0, n + 1)[:n]
    batch = levels[:, None, None, None].expand(n, channels, size, size).clone()
    return [Frame(t, batch, batch) for t in range(count - 1, -1, -1)]


def parts(box):
    """(play, slider, label, [image widgets]) of a widget made by widgets._explorer."""
    (play, slider), label, panels = box.children[0].children, box.children[1], box.children[2]
    return play, slider, label, [panel.children[1] for panel in panels.children]


def png_pixels(data):
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def shown_widths(box):
    """The widths of the pictures of a widget's row of panels, as PNG and as layout."""
    images = parts(box)[3]
    png = [png_pixels(image.value).shape[1] for image in images]
    assert png == [int(image.width) for image in images]  # the page shows them unscaled
    return png


# ---------------------------------------------------------------- forward slider


def test_forward_slider_moves_pictures_and_label(image, schedule):
    box = forward_slider(image, schedule, seed=0, display_size=64)
    play, slider, label, (closed, chain) = parts(box)
    assert slider.description == "t" and slider.max == play.max == schedule.num_steps - 1
    assert png_pixels(closed.value).shape == (64, 64, 3)
    # At t = 0 both pictures are the clean image up to noise of std 0.01 (1.3 grey levels);
    # the 16 px image is shown 4x with NEAREST, so every 4th pixel is one image pixel.
    clean = to_numpy(image).astype(float)
    for picture in (closed, chain):
        assert np.abs(png_pixels(picture.value)[::4, ::4] - clean).mean() < 5
    before = (closed.value, chain.value, label.value)
    slider.value = 30
    assert closed.value != before[0] and chain.value != before[1] and label.value != before[2]
    abar = float(schedule.alpha_bars[30])
    assert label.value.startswith(f"t = 30 · ᾱ_t = {abar:.4f}")
    assert f"√(1-ᾱ_t) = {math.sqrt(1 - abar):.2f}" in label.value
    play.value = 45  # the Play widget drives the slider, and the slider the pictures
    assert slider.value == 45 and label.value.startswith("t = 45 ")


def test_forward_slider_refuses_a_batch(image, schedule):
    with pytest.raises(ValueError, match="one image"):
        forward_slider(torch.stack([image, image]), schedule)


def test_forward_slider_fits_the_column_at_any_display_size(image, schedule):
    # Asked for 600 px pictures, two side by side would need 1,208 px: both shrink to the
    # largest whole scale that fits 800 // 2 - 4 = 396 px, 24 x 16 = 384 px.
    widths = shown_widths(forward_slider(image, schedule, display_size=600))
    assert widths == [384, 384]
    assert sum(w + widgets.WIDGET_MARGIN_PX for w in widths) <= widgets.WIDGET_WIDTH_PX


# ---------------------------------------------------------------- reverse explorer


def test_reverse_explorer_steps_through_frames():
    gen = torch.Generator().manual_seed(0)
    frames = [
        Frame(t, torch.randn(2, 3, 8, 8, generator=gen), torch.zeros(2, 3, 8, 8))
        for t in (4, 3, 2, 1, 0)
    ]
    box = reverse_explorer(frames, display_size=32)
    play, slider, label, (x_t, x0_pred) = parts(box)
    assert slider.max == play.max == 4
    assert label.value == f"step 1/5 · t = {frames[0].t}"
    assert png_pixels(x_t.value).shape == (32, (2 * 8 + 1) * 4, 3)  # two images side by side
    before = x_t.value
    slider.value = 4
    assert x_t.value != before
    assert label.value == "step 5/5 · t = 0 (final image)"


def test_reverse_explorer_refuses_what_is_not_frames():
    with pytest.raises(ValueError, match="every"):
        reverse_explorer([torch.zeros(1, 3, 8, 8)])


# The tutorial samples 8 images of 32 px (CPU) or 64 px (GPU), 2 of 16 px in quick mode.
# Before the grid, 8 images of 32 px were two rows 263 px x 6 = 1,578 px wide each.
# Expected width of each of the two panels at the default display_size = 192:
#   32 px: 1 -> 32 x 6 = 192; 4 (2 columns, 65 px) x 6 = 390; 8 (3 columns, 98 px) x 4 = 392;
#          16 (4 columns, 131 px) x 3 = 393.
EXPECTED_32PX = {1: 192, 4: 390, 8: 392, 16: 393}


@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("n", [1, 4, 8, 16])
def test_reverse_explorer_fits_800_px_at_any_sample_count(n, size):
    box = reverse_explorer(flat_frames(2, n, size))
    widths = shown_widths(box)
    assert len(widths) == 2  # x_t and the predicted x_0, side by side in one row
    assert sum(w + widgets.WIDGET_MARGIN_PX for w in widths) <= widgets.WIDGET_WIDTH_PX
    if size == 32:
        assert widths == [EXPECTED_32PX[n]] * 2
    ncols = grid_columns(n)
    grid_width = ncols * size + ncols - 1
    if grid_width <= 396:  # fits unshrunk: every image pixel is a whole square of screen pixels
        assert widths[0] % grid_width == 0 and widths[0] >= grid_width


@pytest.mark.parametrize("n", [1, 4, 8, 16])
def test_reverse_explorer_shows_every_sample_in_grid_order(n):
    frames = flat_frames(2, n, size=32)
    ncols = grid_columns(n)
    for image in parts(reverse_explorer(frames))[3]:
        pixels = png_pixels(image.value)
        scale = pixels.shape[1] // (ncols * 32 + ncols - 1)
        assert pixels.shape[0] == scale * (math.ceil(n / ncols) * 33 - 1)
        for i in range(n):
            r, c = divmod(i, ncols)
            centre = pixels[(r * 33 + 16) * scale, (c * 33 + 16) * scale]
            assert (centre == to_numpy(frames[0].x_t[i])[0, 0]).all(), (n, i)


def test_grid_columns_and_display_scale():
    assert [grid_columns(n) for n in (1, 2, 4, 5, 8, 9, 16)] == [1, 2, 2, 3, 3, 3, 4]
    assert display_scale(32, 32, 192, 396) == 6  # display_size decides
    assert display_scale(32, 98, 192, 396) == 4  # the width decides: 4.04 -> 4
    assert display_scale(28, 28, 192, 396) == 6  # 6.86 -> 6: whole pixels
    assert display_scale(128, 515, 192, 396) == pytest.approx(396 / 515)  # shrink


def test_picker_follows_the_menu_and_the_sliders():
    picture = torch.rand(1, 3, 16, 16) * 2 - 1
    picker = MaskPicker(picture)
    assert torch.equal(picker.mask(), mask_preset("centre_box", 16))
    assert all(s.disabled for s in picker.sliders.values())
    first = picker.view.value
    picker.menu.value = "left_half"
    assert torch.equal(picker.mask(), mask_preset("left_half", 16))
    assert picker.view.value != first and "50%" in picker.note.value
    picker.menu.value = "rectangle"
    assert not any(s.disabled for s in picker.sliders.values())
    picker.sliders["top"].value, picker.sliders["height"].value = 0, 2
    picker.sliders["left"].value, picker.sliders["width"].value = 0, 16
    assert torch.equal(picker.mask(), rectangle(16, 0, 0, 2, 16))
    assert "12%" in picker.note.value or "13%" in picker.note.value  # 32 of 256 pixels

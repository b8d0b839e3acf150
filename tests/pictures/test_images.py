"""Tests for images.py: pixels to tensors and back (decoding, modes, crop/pad, the pixel
mapping) and the bundled sample images.

File reading and sniffing are tested in test_imagefile.py, uploads in test_upload.py. Every test
image is drawn here with PIL or numpy (no binary fixtures). Pixel values are checked in model
space [-1, 1]: white is +1, black -1, and one 8-bit step is 2/255 ~ 0.0078.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_helpers.pictures import images as images_mod
from diffusion_helpers.pictures.images import (
    DEFAULT_IMAGE,
    ImageLoadError,
    load_image,
    load_image_info,
    sample_image_path,
    to_numpy,
    to_pil,
)

STEP = 2 / 255  # one uint8 step in [-1, 1]
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(img: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def check_tensor(x: torch.Tensor, size: int, channels: int = 3) -> None:
    assert x.shape == (1, channels, size, size)
    assert x.dtype == torch.float32
    assert x.min() >= -1.0 and x.max() <= 1.0


def pixel(x: torch.Tensor, row: int, col: int) -> list[float]:
    return x[0, :, row, col].tolist()


# ---------------------------------------------------------------------------------------------
# to_numpy / to_pil
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape, array_shape, mode",
    [
        ((3, 4, 6), (4, 6, 3), "RGB"),
        ((1, 3, 4, 6), (4, 6, 3), "RGB"),
        ((1, 4, 6), (4, 6), "L"),
        ((1, 1, 4, 6), (4, 6), "L"),
    ],
)
def test_to_numpy_and_to_pil_single(shape, array_shape, mode):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    array = to_numpy(x)
    assert array.shape == array_shape and array.dtype == np.uint8
    img = to_pil(x)
    assert isinstance(img, Image.Image)
    assert img.mode == mode and img.size == (6, 4)  # PIL size is (width, height)
    np.testing.assert_array_equal(np.asarray(img), array)


@pytest.mark.parametrize("channels, array_shape", [(3, (2, 4, 6, 3)), (1, (2, 4, 6))])
def test_to_numpy_and_to_pil_batch(channels, array_shape):
    x = torch.rand(2, channels, 4, 6, generator=torch.Generator().manual_seed(1)) * 2 - 1
    array = to_numpy(x)
    assert array.shape == array_shape
    imgs = to_pil(x)
    assert isinstance(imgs, list) and len(imgs) == 2
    for img, a in zip(imgs, array):
        assert img.size == (6, 4)
        np.testing.assert_array_equal(np.asarray(img), a)


def test_to_numpy_mapping_and_clamp():
    x = torch.tensor([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0]).view(1, 1, 1, 7)
    expected = np.round((np.clip(x.numpy().ravel(), -1, 1) + 1) / 2 * 255)
    np.testing.assert_array_equal(to_numpy(x).ravel(), expected.astype(np.uint8))
    assert to_numpy(x)[0, 0] == 0 and to_numpy(x)[0, -1] == 255


def test_to_numpy_rejects_bad_input():
    with pytest.raises(ValueError, match="C = 1 or 3"):
        to_numpy(torch.zeros(1, 2, 4, 4))
    with pytest.raises(ValueError, match="torch.Tensor"):
        to_numpy(np.zeros((4, 4, 3)))


# ---------------------------------------------------------------------------------------------
# Odd but valid pictures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "orientation, red_at, white_at",
    [
        # Stored 48x32 with a red 12x8 block top-left. Tag 6: shown rotated 90 deg clockwise, so
        # the block is top-right of the upright 32x48 picture; tag 8: counter-clockwise, so it
        # is bottom-left. Padded to 48x48, the picture spans columns 8..40.
        (6, (4, 36), (4, 12)),
        (8, (42, 12), (4, 12)),
    ],
)
def test_exif_orientation_is_applied(orientation, red_at, white_at):
    img = Image.new("RGB", (48, 32), (255, 255, 255))
    img.paste(RED, (0, 0, 12, 8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    data = encode(img, "JPEG", quality=95, exif=exif.tobytes())
    x, info = load_image_info(data, size=48, crop="pad")
    check_tensor(x, 48)
    assert info.original_size == (32, 48)  # upright: portrait
    r, g, b = pixel(x, *red_at)
    assert r > 0.8 and g < -0.6 and b < -0.6  # red, within JPEG error (quality 95)
    assert min(pixel(x, *white_at)) > 0.8  # where the block would be without the rotation


def test_rgba_transparency_becomes_white():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :8] = (0, 0, 255, 255)  # opaque blue left half
    rgba[:8, 8:] = (0, 0, 0, 0)  # fully transparent (black underneath) top right
    rgba[8:, 8:] = (0, 0, 0, 128)  # half-transparent black bottom right
    x = load_image(Image.fromarray(rgba, "RGBA"), size=16)
    check_tensor(x, 16)
    assert pixel(x, 4, 2) == [-1.0, -1.0, 1.0]
    assert torch.all(x[0, :, :8, 8:] == 1.0)  # white, not black
    # Compositing on white: 128/255 * 0 + 127/255 * 255 = 127 -> 127 / 127.5 - 1.
    assert torch.allclose(x[0, :, 8:, 8:], torch.tensor(127 / 127.5 - 1.0))


def test_la_transparency_becomes_white():
    la = np.zeros((16, 16, 2), np.uint8)
    la[:, :8] = (0, 255)  # opaque black
    la[:, 8:] = (0, 0)  # transparent black
    x = load_image(encode(Image.fromarray(la, "LA")), size=16)
    check_tensor(x, 16)
    assert torch.all(x[0, :, :, :8] == -1.0) and torch.all(x[0, :, :, 8:] == 1.0)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_becomes_white(fmt):
    img = Image.new("P", (16, 16), 0)
    img.putpalette([0, 0, 0] + list(RED) + [0, 0, 0] * 254)
    img.paste(1, (0, 0, 8, 16))  # left half red, right half index 0 = transparent
    x = load_image(encode(img, fmt, transparency=0), size=16)
    check_tensor(x, 16)
    assert pixel(x, 8, 2) == [1.0, -1.0, -1.0]
    assert torch.all(x[0, :, :, 8:] == 1.0)


def test_palette_gif_colours():
    img = Image.new("RGB", (16, 16), GREEN)
    img.paste(BLUE, (8, 0, 16, 16))
    data = encode(img.quantize(colors=4), "GIF")
    x = load_image(data, size=16)
    assert pixel(x, 8, 2) == [-1.0, 1.0, -1.0] and pixel(x, 8, 12) == [-1.0, -1.0, 1.0]


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    x = load_image(data, size=16)
    assert torch.all(x[0, 0] == 1.0) and torch.all(x[0, 1:] == -1.0)  # red, not green/blue


def test_16bit_png_is_rescaled_not_white():
    ramp = np.tile(np.linspace(0, 4000, 64), (64, 1)).astype(np.uint16)  # values 0..4000
    img = Image.fromarray(ramp)
    data = encode(img)
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    # The failure this guards against: Pillow's own convert("L") clips at 255, so nearly white.
    assert np.asarray(img.convert("L")).mean() > 200
    x = load_image(data, size=64, channels=1)
    check_tensor(x, 64, channels=1)
    assert x.mean() < 0.5  # not white-out (a ramp stretched to 0..255 averages ~0)
    row = x[0, 0, 0]
    assert torch.all(row[1:] >= row[:-1])  # the gradient is kept, left to right
    assert row[0] == -1.0 and row[-1] == 1.0  # stretched over the picture's own range 0..4000


@pytest.mark.parametrize(
    "values",
    [
        np.linspace(-1000, 100000, 64).astype(np.int32),  # mode "I"
        np.linspace(0.0, 1000.0, 64).astype(np.float32),  # mode "F"
    ],
)
def test_32bit_modes_are_rescaled(values):
    img = Image.fromarray(np.tile(values, (64, 1)))
    assert img.mode in ("I", "F")
    x = load_image(encode(img, "TIFF"), size=64)
    check_tensor(x, 64)
    row = x[0, 0, 0]
    assert torch.all(row[1:] >= row[:-1]) and row[0] == -1.0 and row[-1] == 1.0
    assert -0.5 < x.mean() < 0.5  # a linear ramp over its own range averages mid-gray


def test_cmyk_jpeg():
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # C=0 M=Y=100% K=0: red
    x = load_image(encode(img, "JPEG", quality=95), size=16)
    check_tensor(x, 16)
    r, g, b = x[0].mean(dim=(1, 2)).tolist()
    assert r > 0.9 and g < -0.9 and b < -0.9  # within JPEG error


def test_grayscale_to_three_channels():
    x = load_image(Image.new("L", (16, 16), 100), size=16, channels=3)
    check_tensor(x, 16, channels=3)
    assert torch.allclose(x, torch.tensor(100 / 127.5 - 1), atol=1e-6)  # float32 rounding


def test_rgb_to_one_channel_uses_luma():
    x = load_image(Image.new("RGB", (16, 16), GREEN), size=16, channels=1)
    check_tensor(x, 16, channels=1)
    luma = 0.587 * 255  # ITU-R 601-2: L = 0.299 R + 0.587 G + 0.114 B
    assert torch.allclose(x, torch.tensor(luma / 127.5 - 1), atol=STEP)  # Pillow rounds to int


def test_crop_and_pad_differ_on_non_square():
    img = Image.new("RGB", (40, 20), RED)
    cropped = load_image(img, size=20, crop="center")
    padded = load_image(img, size=20, crop="pad")
    assert torch.all(cropped[0, 0] == 1.0) and torch.all(cropped[0, 1:] == -1.0)  # all red
    # Pad: 40x40 with the picture in rows 10..30, shrunk 2x: white bars in rows 0..5, 15..20.
    # LANCZOS (3 lobes) rings beside the sharp white/red edges by up to ~15 steps (0.11), so
    # compare with a 0.15 tolerance; the green channel is +1 in the bars and -1 in the red.
    green = padded[0, 1]
    assert green[:5].min() > 0.85 and green[15:].min() > 0.85  # white bars
    assert green[5:15].max() < -0.85 and torch.all(padded[0, 0] > 0.85)  # red middle
    assert cropped[0, 1].max() < -0.85  # no bars when cropping


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_large_image_is_cropped_and_resized(fmt):
    img = Image.new("RGB", (2000, 1500), RED)
    img.paste(BLUE, (1000, 0, 2000, 1500))  # right half blue
    x, info = load_image_info(encode(img, fmt), size=32)
    check_tensor(x, 32)
    assert info.original_size == (2000, 1500)
    # The centre 1500x1500 square runs from column 250 to 1750: red then blue, half each.
    assert x[0, 0, :, :14].min() > 0.9 and x[0, 2, :, :14].max() < -0.9
    assert x[0, 2, :, 18:].min() > 0.9 and x[0, 0, :, 18:].max() < -0.9


def test_callers_pil_image_is_not_changed():
    opened = Image.open(io.BytesIO(encode(Image.new("RGB", (400, 300), RED), "JPEG")))
    load_image(opened, size=16)
    assert opened.size == (400, 300)  # no JPEG draft (reduced decode) applied to it


def test_numpy_arrays():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    x = load_image(rgb, size=16)
    np.testing.assert_array_equal(to_numpy(x), rgb)
    gray = rng.random((16, 16))
    x = load_image(gray, size=16, channels=1)
    np.testing.assert_array_equal(to_numpy(x), np.round(gray * 255).astype(np.uint8))
    x1 = load_image(gray[..., None], size=16, channels=1)
    assert torch.equal(x, x1)
    rgba = np.zeros((16, 16, 4), np.float32)  # float RGBA, fully transparent -> white
    assert torch.all(load_image(rgba, size=16) == 1.0)


def test_every_source_kind_gives_the_same_tensor(tmp_path):
    img = Image.new("RGB", (24, 16), RED)
    img.paste(GREEN, (12, 0, 24, 16))
    data = encode(img)
    path = tmp_path / "two colours.png"
    path.write_bytes(data)
    expected = load_image(img, size=16, crop="pad")
    check_tensor(expected, 16)
    sources = [data, bytearray(data), memoryview(data), io.BytesIO(data), path, str(path)]
    for source in sources:
        assert torch.equal(load_image(source, size=16, crop="pad"), expected)
    with open(path, "rb") as f:
        x, info = load_image_info(f, size=16, crop="pad")
    assert torch.equal(x, expected) and info.name == str(path)


def test_image_info_describes_the_picture(tmp_path):
    path = tmp_path / "my_cat.png"
    Image.new("RGBA", (40, 30)).save(path)
    _, info = load_image_info(path, size=16)
    assert info.describe() == f"{path} (40x30 RGBA -> 16x16)"


def test_round_trip_at_target_size():
    rgb = np.random.default_rng(1).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    back = np.asarray(to_pil(load_image(encode(Image.fromarray(rgb)), size=16)))
    # At the target size nothing is resampled; v / 127.5 - 1 and back, round((x + 1) / 2 * 255),
    # is off by float32 rounding (~1e-5), far from the 0.5 that would flip the rounding, so the
    # brief's bound (max diff <= 1) in fact holds with 0.
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 1
    np.testing.assert_array_equal(back, rgb)


def test_round_trip_after_resize_matches_block_means():
    # A linear ramp: LANCZOS is symmetric and sums to 1, so it reproduces a linear function;
    # shrinking 2x gives the mean of each 2x2 block (away from the border, where the kernel is
    # cut off). Tolerance 1: rounding of the half-integer means and of Pillow's 8-bit resize.
    ramp = np.tile(np.arange(64, dtype=np.float64) * 3 + 20, (64, 1))  # 20..209, per column
    rgb = np.repeat(ramp[..., None], 3, axis=2).astype(np.uint8)
    back = to_numpy(load_image(rgb, size=32)).astype(float)
    block_means = rgb.astype(float).reshape(32, 2, 32, 2, 3).mean(axis=(1, 3))
    assert np.abs(back - block_means)[4:-4, 4:-4].max() <= 1


# ---------------------------------------------------------------------------------------------
# Pictures that cannot be decoded
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated(fmt):
    rgb = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(rgb), fmt)
    with pytest.raises(ImageLoadError, match=f"{fmt} image.*truncated or corrupt"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize(
    "array, words",
    [
        (np.zeros((2, 8, 8, 3), np.uint8), "shape"),
        (np.zeros((8, 8, 2), np.uint8), "shape"),
        (np.zeros((3, 8, 8), np.uint8), "channels-first"),
        (np.zeros((8, 8, 3), np.int64), "dtype int64"),
        (np.zeros((8, 8), bool), "dtype bool"),
        (np.full((8, 8), np.nan), "NaN"),
        (np.full((8, 8), 2.0), r"in \[0, 1\]"),
    ],
)
def test_bad_arrays(array, words):
    with pytest.raises(ImageLoadError, match=words) as err:
        load_image(array)
    assert "the given array" in str(err.value)


def test_tensor_is_not_a_source():
    with pytest.raises(ImageLoadError, match="tensor"):
        load_image(torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize("size", [16, 15])
def test_pad_keeps_the_picture_centred_on_white(size):
    # 30x10 blue on white bars: ImageOps.pad shrinks it to size x round(size / 3) and centres it.
    x = load_image(Image.new("RGB", (30, 10), BLUE), size=size, crop="pad")
    check_tensor(x, size)
    rows = (x[0, 0] < 0).all(dim=1)  # rows where red is off everywhere: the blue picture
    height = round(size / 3)
    top = round((size - height) / 2)
    assert rows.nonzero().ravel().tolist() == list(range(top, top + height))
    assert torch.all(x[0, :, :top] == 1.0) and torch.all(x[0, :, top + height :] == 1.0)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"size": 4}, "size"),
        ({"size": 2048}, "size"),
        ({"size": 64.0}, "size"),
        ({"size": True}, "size"),
        ({"channels": 2}, "channels"),
        ({"channels": 4}, "channels"),
        ({"crop": "middle"}, "crop"),
    ],
)
def test_bad_arguments_raise_value_error_early(kwargs, name):
    with pytest.raises(ValueError, match=name) as err:
        load_image("/no/such/file.png", **kwargs)  # checked before the file is looked at
    assert type(err.value) is ValueError


# ---------------------------------------------------------------------------------------------
# Sample images
# ---------------------------------------------------------------------------------------------


def test_sample_images():
    assert sample_image_path() == DEFAULT_IMAGE and DEFAULT_IMAGE.is_file()
    for name in ("scene", "face", "pattern.png"):
        path = sample_image_path(name)
        assert Image.open(path).size == (256, 256)
        x = load_image(path, size=32)
        check_tensor(x, 32)
        assert not torch.allclose(x, x.flip(-1), atol=0.1)  # not left-right symmetric
    with pytest.raises(
        FileNotFoundError, match="available: face, landscape, pattern, pebbles, scene"
    ):
        sample_image_path("unicorn")


def test_missing_sample_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(images_mod, "IMAGES_DIR", tmp_path / "gone")
    with pytest.raises(FileNotFoundError, match="pip install -e"):
        sample_image_path()


def test_a_picture_smaller_than_the_size_asked_for_warns_that_it_will_be_blurry(tmp_path):
    tiny = tmp_path / "dot.png"
    Image.new("RGB", (1, 1), (200, 30, 30)).save(tiny)
    with pytest.warns(UserWarning, match=r"1x1 pixels, smaller than the 16x16 asked for.*blurry"):
        load_image(tiny, size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a picture large enough: not a word
        load_image(Image.new("RGB", (40, 30)), size=16)


def test_a_file_name_that_is_not_utf8_gives_a_printable_message(tmp_path):
    """b"\\xff.png" is a valid name on Linux; its message must print, not fail to encode."""
    path = tmp_path / os.fsdecode(b"\xff.png")
    path.write_bytes(b"not a picture at all")
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    message = str(info.value)
    assert "\\xff.png" in message and message.encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Saying what happened (issue 32)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", ["notes.txt", "photo.png"])
def test_a_text_file_given_by_its_path_says_what_it_is_and_what_to_do(tmp_path, file_name):
    """A text file passed as a picture (on the command line, or named like one) was told to
    "pass it as a str or Path, not as bytes", which it was: it is the file that is wrong."""
    path = tmp_path / file_name
    path.write_text("this is not a picture\n")
    for source in (path, str(path)):
        with pytest.raises(ImageLoadError) as err:
            load_image(source)
        message = str(err.value)
        assert f"{file_name}: it is a text file, not an image" in message
        assert "picture file" in message and "as bytes" not in message
    upload = io.BytesIO(path.read_bytes())
    upload.name = file_name  # an upload names its file: not bytes the caller typed either
    with pytest.raises(ImageLoadError, match="a text file, not an image") as err:
        load_image(upload)
    assert "as bytes" not in str(err.value)
    with pytest.raises(ImageLoadError, match="pass it as a str or Path, not as bytes"):
        load_image(str(path).encode())  # a path given as bytes: the hint is the fix


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_says_only_its_first_frame_is_used(fmt):
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100)
    with pytest.warns(
        UserWarning, match=r"the uploaded bytes: an animation of 3 frames.*only the first"
    ):
        x = load_image(data, size=16)
    assert torch.all(x[0, 0] > 0.9) and torch.all(x[0, 1:] < -0.9)  # the first frame: red
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one frame: not a word
        load_image(encode(frames[0], fmt), size=16)


def test_a_cameras_mpo_photo_is_not_called_an_animation():
    views = [Image.new("RGB", (16, 16), c) for c in (RED, GREEN)]  # a photo and a second view
    data = encode(views[0], "MPO", save_all=True, append_images=views[1:])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.all(load_image(data, size=16)[0, 0] > 0.9)


def test_a_fully_transparent_picture_says_it_loads_as_white(tmp_path):
    path = tmp_path / "ghost.png"
    Image.new("RGBA", (16, 16), (200, 30, 30, 0)).save(path)  # red, but invisible
    with pytest.warns(UserWarning, match=r"ghost\.png: fully transparent.*plain white"):
        x = load_image(path, size=16)
    assert torch.all(x == 1.0)
    grey = Image.new("LA", (16, 16), (90, 0))  # the variant: grey with alpha
    with pytest.warns(UserWarning, match="the given PIL image: fully transparent"):
        load_image(grey, size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # partly transparent: composited on white, no word
        load_image(Image.new("RGBA", (16, 16), (200, 30, 30, 1)), size=16)

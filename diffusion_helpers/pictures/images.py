"""Pictures in and out: load any image the learner has as a tensor in [-1, 1], and back.

``load_image`` accepts a path, raw bytes, a file object, a PIL image or a numpy array and turns
whatever the learner has (phone photos with EXIF rotation, transparent PNGs, 16-bit scans, CMYK
JPEGs, GIFs) into a square tensor [1, C, size, size] in [-1, 1]. Anything that cannot become a
picture raises ``ImageLoadError`` with the reason and the fix; never a raw Pillow traceback.

Every picture the package shows goes through ``to_numpy`` / ``to_pil`` here, so there is one
mapping from model space [-1, 1] to pixels: uint8 = round((clamp(x, -1, 1) + 1) / 2 * 255).

Reading files and bytes safely (size caps, pipes and devices, what a non-image file is) lives in
``imagefile.py``; its public names are re-exported here, so ``from diffusion_helpers.images
import ImageLoadError, IMAGE_SUFFIXES, MAX_BYTES`` keeps working.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image, ImageOps

from .imagefile import (  # noqa: F401 - some only re-exported, for `from .images import`
    AVIF_BRANDS,
    HEIC_BRANDS,
    IMAGE_MAGIC,
    IMAGE_SUFFIXES,
    MAX_ASPECT,
    MAX_BYTES,
    MAX_PIXELS,
    VIDEO_BRANDS,
    ByteSource,
    ImageLoadError,
    bomb_message,
    check_byte_size,
    check_dimensions,
    corrupt_message,
    describe_non_image,
    enable_heif,
    has_feature,
    looks_like_text,
    open_bytes,
    read_bytes,
    read_path,
)

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
DEFAULT_NAME = "scene"  # images/scene.png: the default picture (see images/README.md)
DEFAULT_IMAGE = IMAGES_DIR / f"{DEFAULT_NAME}.png"


def sample_image_path(name: Optional[str] = None) -> Path:
    """Path of a bundled sample image in ``images/`` ("scene" (default), "face", "pattern")."""
    stem = Path(name or DEFAULT_NAME).stem
    if not IMAGES_DIR.is_dir():
        raise FileNotFoundError(
            f"The sample image folder {IMAGES_DIR} is missing. The samples ship with the source "
            "checkout, not the installed package: install with `pip install -e .` from the "
            "repository, or pass your own picture to load_image('path/to/photo.jpg')."
        )
    path = IMAGES_DIR / f"{stem}.png"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in IMAGES_DIR.glob("*.png"))) or "none"
        raise FileNotFoundError(f"No sample image {stem!r} in {IMAGES_DIR} (available: {known}).")
    return path


def to_numpy(images: torch.Tensor) -> np.ndarray:
    """Tensor(s) in [-1, 1] -> uint8 pixels: uint8 = round((clamp(x, -1, 1) + 1) / 2 * 255).

    Args:
        images: one image [C, H, W] or [1, C, H, W], or a batch [B, C, H, W] with B > 1;
            C is 1 (grayscale) or 3 (RGB).

    Returns:
        one image: uint8 [H, W, C] ([H, W] when C == 1); a batch: uint8 [B, H, W, C]
        ([B, H, W] when C == 1).
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"to_numpy expects a torch.Tensor, got {type(images).__name__}.")
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        raise ValueError(
            f"to_numpy expects [C, H, W] or [B, C, H, W] with C = 1 or 3, got {list(images.shape)}."
        )
    x = images.detach().to("cpu", torch.float32).clamp(-1.0, 1.0)
    pixels = torch.round((x + 1.0) / 2.0 * 255.0).to(torch.uint8)  # [-1, 1] -> {0, ..., 255}
    array = pixels.permute(0, 2, 3, 1).numpy()  # [B, H, W, C]
    if array.shape[-1] == 1:
        array = array[..., 0]
    return array[0] if array.shape[0] == 1 else array


def to_pil(images: torch.Tensor) -> Union[Image.Image, list[Image.Image]]:
    """Tensor(s) in [-1, 1] -> one PIL image ([C, H, W] or [1, C, H, W]) or a list (B > 1).

    Uses the same pixel mapping as ``to_numpy``; 1 channel gives mode "L", 3 channels "RGB".
    """
    array = to_numpy(images)
    single = images.dim() == 3 or images.shape[0] == 1
    if single:
        return Image.fromarray(array)
    return [Image.fromarray(a) for a in array]


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

SIZE_RANGE = (8, 1024)  # 8 px is the smallest that still shows a shape; 1024 is slow on a CPU
CROPS = ("center", "pad")
WHITE = (255, 255, 255)

Source = Union[ByteSource, Image.Image, np.ndarray]

HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


@dataclass
class ImageInfo:
    """Where a loaded picture came from.

    Attributes:
        name: the file name, or "the uploaded bytes" / "the given array" / ...
        original_size: (width, height) of the picture as shown, after EXIF rotation.
        mode: the Pillow mode it was stored in ("RGB", "RGBA", "I;16", "CMYK", ...).
        size: the side of the square tensor it was turned into.
        sample: True for the bundled sample, used because nothing else was given.
    """

    name: str
    original_size: tuple[int, int]
    mode: str
    size: int
    sample: bool = False

    def describe(self) -> str:
        """One line for a notebook, e.g. "my_cat.jpg (4032x3024 RGB -> 64x64)"."""
        w, h = self.original_size
        return f"{self.name} ({w}x{h} {self.mode} -> {self.size}x{self.size})"


def check_load_args(size: int, channels: int, crop: str) -> None:
    """Raise ``ValueError`` naming the argument unless size, channels and crop are usable."""
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not lo <= size <= hi:
        raise ValueError(
            f"size must be a whole number of pixels from {lo} to {hi}, got {size!r}. "
            "Try size=64 (or size=32 to train faster on a CPU)."
        )
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (colour), got {channels!r}.")
    if crop not in CROPS:
        raise ValueError(
            f"crop must be 'center' (cut the middle square) or 'pad' (add white bars to make a "
            f"square), got {crop!r}."
        )


def load_image(
    source: Source,
    size: int = 64,
    channels: int = 3,
    crop: str = "center",
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> torch.Tensor:
    """Load a picture as a float32 tensor [1, channels, size, size] in [-1, 1].

    Args:
        source: a path (str or Path), raw bytes, a binary file object, a PIL image, or a numpy
            array [H, W], [H, W, 1|3|4] of uint8 or of floats in [0, 1].
        size: side of the square output in pixels (8 to 1024).
        channels: 3 for RGB, 1 for grayscale (ITU-R 601 luma, Pillow's "L").
        crop: "center" keeps the middle square; "pad" keeps everything and adds white bars.
        max_bytes: refuse files/bytes larger than this (default ``MAX_BYTES``, 30 MiB).
        max_pixels: refuse pictures with more pixels than this, from the header, before
            decoding (default ``MAX_PIXELS``, 64 megapixels).

    Raises:
        ImageLoadError: the source cannot become a picture (the message says why and the fix).
        ValueError: size, channels or crop are not usable.
    """
    return load_image_info(
        source, size, channels, crop, max_bytes=max_bytes, max_pixels=max_pixels
    )[0]


def load_image_info(
    source: Source,
    size: int = 64,
    channels: int = 3,
    crop: str = "center",
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> tuple[torch.Tensor, ImageInfo]:
    """Like ``load_image``, and also return an ``ImageInfo`` saying what was loaded.

    Steps: read the bytes (size limit), open lazily, check the header's width x height, decode
    the first frame fully, apply the EXIF rotation, flatten to 8-bit RGB on white, make it a
    size x size square (crop or pad, resized with LANCZOS), and map pixels v to v / 127.5 - 1.
    """
    check_load_args(size, channels, crop)
    name, img = open_image(source, max_bytes=max_bytes, max_pixels=max_pixels)
    mode, (w, h) = img.mode, img.size
    if img.format == "JPEG" and img is not source:  # (never change the caller's own image)
        img.draft(img.mode, (2 * size, 2 * size))  # libjpeg decodes at 1/2..1/8 scale: faster
    decode_fully(img, name, max_pixels)
    stored = img.size
    img = upright(img)
    turned = img.size != stored  # EXIF said the picture is stored sideways
    info = ImageInfo(name=name, original_size=(h, w) if turned else (w, h), mode=mode, size=size)
    warn_if_enlarged(img.size, size, crop)
    img = to_8bit_rgb(img, name)
    img = img.convert("L" if channels == 1 else "RGB")  # L = 0.299 R + 0.587 G + 0.114 B
    img = make_square(img, crop, size)
    pixels = np.asarray(img, dtype=np.float32).reshape(size, size, channels)
    x = torch.from_numpy(pixels / 127.5 - 1.0)  # {0..255} -> [-1, 1], the inverse of to_numpy
    return x.permute(2, 0, 1).unsqueeze(0).contiguous(), info


def warn_if_enlarged(wh: tuple[int, int], size: int, crop: str) -> None:
    """Warn (once for each size: Python shows a warning once per text) when a picture of
    ``wh`` pixels must be enlarged to ``size``: it will look blurry. A centre crop enlarges
    when the shorter side is below ``size``, a pad when the longer one is."""
    w, h = wh
    side = min(w, h) if crop == "center" else max(w, h)
    if side < size:
        warnings.warn(
            f"the picture is {w}x{h} pixels, smaller than the {size}x{size} asked for: it is "
            "enlarged and will look blurry. Use a larger picture, or a smaller size.",
            stacklevel=2,
        )


def open_image(
    source: Source, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> tuple[str, Image.Image]:
    """Return (a name for messages, the PIL image opened lazily: header read, pixels not yet
    decoded), after checking its byte size and its width x height."""
    if isinstance(source, Image.Image):  # used as it is, at its current frame
        name, img = "the given PIL image", source
    elif isinstance(source, np.ndarray):
        name, img = "the given array", array_to_pil(source)
    elif isinstance(source, torch.Tensor):
        raise ImageLoadError(
            "load_image was given a torch tensor, which is already an image in model space. "
            "Use it directly, or to_pil(tensor) to look at it."
        )
    else:
        name, data = read_bytes(source, max_bytes)
        return name, open_bytes(data, name, max_pixels)  # at the first frame of a GIF/PNG/WebP
    check_dimensions(img.size, name, max_pixels)
    return name, img


def decode_fully(img: Image.Image, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Decode all pixels now (``img.load()``), so broken data fails here with a clear message.

    Pillow's ImageFile.LOAD_TRUNCATED_IMAGES stays False: a truncated file is an error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(bomb_message(name, img.size, max_pixels)) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError...
        kind = f"a {img.format} image" if img.format else "an image"
        raise ImageLoadError(corrupt_message(name, kind, "its pixels cannot be decoded")) from err


def upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation tag (phone photos are stored sideways with a tag saying so).

    A broken EXIF block is ignored: the pixels are fine, only the rotation is unknown.
    """
    try:
        return ImageOps.exif_transpose(img)
    except Exception:  # noqa: BLE001 - malformed EXIF must not stop an otherwise good picture
        return img


def to_8bit_rgb(img: Image.Image, name: str) -> Image.Image:
    """Any Pillow mode -> 8-bit "RGB", or "L" for grayscale: high-bit modes rescaled by their
    range, transparency composited onto white, CMYK/palette/YCbCr converted."""
    if img.mode in HIGH_BIT_MODES:
        return high_bit_to_l(img)
    try:
        if img.mode in ALPHA_MODES or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", img.size, WHITE + (255,))
            return Image.alpha_composite(white, rgba).convert("RGB")  # out = a*fg + (1-a)*white
        if img.mode in ("L", "RGB"):
            return img
        if img.mode == "1":
            return img.convert("L")
        return img.convert("RGB")  # CMYK, P, YCbCr, ...
    except Exception as err:  # noqa: BLE001 - e.g. LAB/HSV, which Pillow cannot convert to RGB
        raise ImageLoadError(
            f"Could not load {name}: it uses the colour mode {img.mode!r}, which cannot be converted to RGB here. "
            "Save it as an ordinary RGB PNG or JPEG and load that."
        ) from err


def high_bit_to_l(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale (I;16*, I, F) -> 8-bit "L" by stretching the picture's own
    range to 0..255: v8 = round(255 (v - min) / (max - min)).

    Pillow's own convert("L") clips at 255, which turns a 16-bit picture (values up to 65535)
    almost all white. A constant picture has no range and becomes mid-gray (128).
    """
    values = np.asarray(img, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    if hi > lo:
        scaled = (np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo) * 255.0
    else:
        scaled = np.full(values.shape, 128.0)
    return Image.fromarray(np.round(np.clip(scaled, 0, 255)).astype(np.uint8))


def make_square(img: Image.Image, crop: str, size: int) -> Image.Image:
    """A size x size picture, resized with LANCZOS: the centred square of the shorter side
    (crop="center", ``ImageOps.fit``), or all of it centred on white bars (crop="pad",
    ``ImageOps.pad``)."""
    if crop == "center":
        return ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
    return ImageOps.pad(img, (size, size), Image.Resampling.LANCZOS, color="white")


def array_to_pil(array: np.ndarray) -> Image.Image:
    """A numpy picture [H, W] or [H, W, 1|3|4], uint8 or float in [0, 1] -> a PIL image."""
    name = "the given array"
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        raise ImageLoadError(
            f"Could not load {name}: it has shape {array.shape}, which looks channels-first. Pass [H, W, C]: "
            "np.transpose(array, (1, 2, 0))."
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        raise ImageLoadError(
            f"Could not load {name}: it has shape {array.shape}; a picture is [H, W] (gray) or [H, W, C] with "
            "C = 1, 3 (RGB) or 4 (RGBA)."
        )
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageLoadError(
                f"Could not load {name}: it contains NaN or infinite values; fix them first."
            )
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ImageLoadError(
                f"Could not load {name}: it has float values from {array.min():.3g} to {array.max():.3g}; float "
                "pictures must be in [0, 1]. For values in [-1, 1] pass (array + 1) / 2; for "
                "values in 0..255 pass array.astype(np.uint8)."
            )
        pixels = np.round(array * 255.0).astype(np.uint8)  # [0, 1] -> {0..255}
    else:
        raise ImageLoadError(
            f"Could not load {name}: it has dtype {array.dtype}; use uint8 (0..255) or float in [0, 1], "
            "e.g. array.astype(np.uint8) for integers in 0..255."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        pixels = pixels[..., 0]
    return Image.fromarray(np.ascontiguousarray(pixels))

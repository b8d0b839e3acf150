"""Pictures in and out: any picture the learner has as a tensor in [-1, 1], and back.

``load_image`` turns whatever the learner has (phone photos with EXIF rotation, transparent
PNGs, 16-bit scans, CMYK JPEGs, GIFs) into a square tensor [1, C, size, size] in [-1, 1], or
raises ``ImageLoadError`` naming the file, with the reason and the fix. Every picture the
package shows goes through ``to_numpy`` / ``to_pil``: one mapping from [-1, 1] to pixels.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from PIL import Image, ImageOps

from ..checks.values import choice, picture_size
from .imagefile import (  # noqa: F401 - IMAGE_SUFFIXES and MAX_BYTES are also read from here
    IMAGE_SUFFIXES,
    MAX_BYTES,
    MAX_PIXELS,
    ByteSource,
    ImageLoadError,
    check_dimensions,
    corrupt,
    open_bytes,
    read_bytes,
)

IMAGES_DIR = Path(__file__).resolve().parents[2] / "images"
DEFAULT_NAME = "scene"  # images/scene.png: the default picture (see images/README.md)
DEFAULT_IMAGE = IMAGES_DIR / f"{DEFAULT_NAME}.png"
CROPS = ("center", "pad")
WHITE = (255, 255, 255, 255)

Source = Union[ByteSource, Image.Image, np.ndarray]


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

    One image [C, H, W] or [1, C, H, W] gives [H, W, C]; a batch [B, C, H, W] (B > 1) gives
    [B, H, W, C]; with C = 1 (grey) the channel axis is dropped.
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
    """Tensor(s) in [-1, 1] -> one PIL image ([C, H, W] or [1, C, H, W]) or a list (B > 1),
    by the mapping of ``to_numpy``; 1 channel gives mode "L", 3 channels "RGB"."""
    array = to_numpy(images)
    if images.dim() == 3 or images.shape[0] == 1:
        return Image.fromarray(array)
    return [Image.fromarray(a) for a in array]


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
    picture_size(size)
    if isinstance(channels, bool) or channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (colour), got {channels!r}.")
    choice(crop, "crop ('center' cuts the middle square, 'pad' adds white bars)", CROPS)


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
    the first frame, apply the EXIF rotation, flatten to 8-bit on white, make it a size x size
    square (crop or pad, resized with LANCZOS), and map pixels v to v / 127.5 - 1.
    """
    check_load_args(size, channels, crop)
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
        given_bytes = isinstance(source, (bytes, bytearray, memoryview))
        img = open_bytes(data, name, max_pixels, given_bytes=given_bytes)
    check_dimensions(img.size, name, max_pixels)
    mode, (w, h) = img.mode, img.size
    if img.format == "JPEG" and img is not source:  # (never change the caller's own image)
        img.draft(img.mode, (2 * size, 2 * size))  # libjpeg decodes at 1/2..1/8 scale: faster
    try:
        img.load()  # decode now, so broken data fails here (a truncated file is an error)
    except Exception as err:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError...
        kind = f"a {img.format} image" if img.format else "a picture"
        raise ImageLoadError(
            f"Could not load {name}: it is {corrupt(kind, 'its pixels cannot be decoded')}"
        ) from err
    stored = img.size  # as decoded (a JPEG draft may have shrunk it)
    try:
        img = ImageOps.exif_transpose(img)  # phone photos are stored sideways, with a tag
    except Exception:  # noqa: BLE001 - a broken EXIF block: the pixels are fine as stored
        pass
    info = ImageInfo(name, (h, w) if img.size != stored else (w, h), mode, size)
    warn_if_enlarged(img.size, size, crop)
    try:
        img = to_8bit(img, name).convert("L" if channels == 1 else "RGB")  # L: ITU-R 601 luma
    except (ValueError, OSError) as err:  # e.g. LAB or HSV, which Pillow cannot convert
        raise ImageLoadError(
            f"Could not load {name}: it uses the colour mode {mode!r}, which cannot be "
            "converted to RGB here. Save it as an ordinary RGB PNG or JPEG and load that."
        ) from err
    if crop == "center":  # the centred square of the shorter side, or all of it on white bars
        img = ImageOps.fit(img, (size, size), Image.Resampling.LANCZOS)
    else:
        img = ImageOps.pad(img, (size, size), Image.Resampling.LANCZOS, color="white")
    pixels = np.asarray(img, dtype=np.float32).reshape(size, size, channels)
    x = torch.from_numpy(pixels / 127.5 - 1.0)  # {0..255} -> [-1, 1], the inverse of to_numpy
    return x.permute(2, 0, 1).unsqueeze(0).contiguous(), info


def warn_if_enlarged(wh: tuple[int, int], size: int, crop: str) -> None:
    """Warn when a picture of ``wh`` pixels must be enlarged to ``size``: it will look blurry.
    A centre crop enlarges when the shorter side is below ``size``, a pad when the longer is."""
    w, h = wh
    if (min(w, h) if crop == "center" else max(w, h)) < size:
        warnings.warn(
            f"the picture is {w}x{h} pixels, smaller than the {size}x{size} asked for: it is "
            "enlarged and will look blurry. Use a larger picture, or a smaller size.",
            stacklevel=3,
        )


def to_8bit(img: Image.Image, name: str) -> Image.Image:
    """16/32-bit grey stretched to 8-bit "L"; transparency composited onto white (out =
    a fg + (1 - a) white); every other mode as it is, for Pillow to convert."""
    if img.mode[0] in "IF":  # "I;16", "I;16B", "I", "F": 16-bit and 32-bit grey
        return stretch_to_8bit(img)
    if not (img.mode.endswith(("A", "a")) or "transparency" in img.info):
        return img
    rgba = img.convert("RGBA")
    if rgba.getextrema()[3][1] == 0:
        warnings.warn(
            f"{name}: fully transparent (alpha 0 everywhere), so it loads as plain white. "
            "Save it without transparency to keep its colours.",
            stacklevel=3,
        )
    return Image.alpha_composite(Image.new("RGBA", img.size, WHITE), rgba).convert("RGB")


def stretch_to_8bit(img: Image.Image) -> Image.Image:
    """16-bit and 32-bit grey -> 8-bit "L" by stretching the picture's own range to 0..255:
    v8 = round(255 (v - min) / (max - min)); a constant picture becomes mid-grey (128).

    Pillow's own convert("L") clips at 255, which turns a 16-bit picture (values up to 65535)
    almost all white.
    """
    values = np.asarray(img, dtype=np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    if hi > lo:
        scaled = (np.nan_to_num(values, nan=lo, posinf=hi, neginf=lo) - lo) / (hi - lo) * 255.0
    else:
        scaled = np.full(values.shape, 128.0)
    return Image.fromarray(np.round(np.clip(scaled, 0, 255)).astype(np.uint8))


def array_to_pil(array: np.ndarray) -> Image.Image:
    """A numpy picture [H, W] or [H, W, 1|3|4], uint8 or float in [0, 1] -> a PIL image."""
    name = "Could not load the given array"
    if array.ndim == 3 and array.shape[-1] not in (1, 3, 4) and array.shape[0] in (1, 3, 4):
        raise ImageLoadError(
            f"{name}: it has shape {array.shape}, which looks channels-first. Pass [H, W, C]: "
            "np.transpose(array, (1, 2, 0))."
        )
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (1, 3, 4)):
        raise ImageLoadError(
            f"{name}: it has shape {array.shape}; a picture is [H, W] (grey) or [H, W, C] with "
            "C = 1, 3 (RGB) or 4 (RGBA)."
        )
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageLoadError(f"{name}: it contains NaN or infinite values; fix them first.")
        if array.size and (array.min() < 0.0 or array.max() > 1.0):
            raise ImageLoadError(
                f"{name}: it has float values from {array.min():.3g} to {array.max():.3g}; float "
                "pictures must be in [0, 1]. For values in [-1, 1] pass (array + 1) / 2; for "
                "values in 0..255 pass array.astype(np.uint8)."
            )
        array = np.round(array * 255.0).astype(np.uint8)  # [0, 1] -> {0..255}
    elif array.dtype != np.uint8:
        raise ImageLoadError(
            f"{name}: it has dtype {array.dtype}; use uint8 (0..255) or float in [0, 1], e.g. "
            "array.astype(np.uint8) for integers in 0..255."
        )
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    return Image.fromarray(np.ascontiguousarray(array))

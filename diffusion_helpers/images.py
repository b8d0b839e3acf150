"""Pictures in and out: load any image the learner has as a tensor in [-1, 1], and back.

``load_image`` accepts a path, raw bytes, a file object, a PIL image or a numpy array and turns
whatever the learner has (phone photos with EXIF rotation, transparent PNGs, 16-bit scans, CMYK
JPEGs, GIFs) into a square tensor [1, C, size, size] in [-1, 1]. Anything that cannot become a
picture raises ``ImageLoadError`` with the reason and the fix; never a raw Pillow traceback.

Every picture the package shows goes through ``to_numpy`` / ``to_pil`` here, so there is one
mapping from model space [-1, 1] to pixels: uint8 = round((clamp(x, -1, 1) + 1) / 2 * 255).
"""

from __future__ import annotations

import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError, features

IMAGES_DIR = Path(__file__).resolve().parent.parent / "images"
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

# 30 MB: well above any phone photo (a 48-megapixel JPEG or HEIC is 5-15 MB) and small enough to
# upload to Colab quickly; it stops videos, archives and raw scans before we read them.
MAX_BYTES = 30 * 1024 * 1024
# 64 megapixels: above the largest phone cameras (48-50 MP). Decoding such a picture as RGB
# takes 64e6 * 3 bytes = 192 MB; beyond this a tiny compressed file can claim billions of
# pixels (a "decompression bomb"), so we refuse from the header before decoding anything.
MAX_PIXELS = 64_000_000
# Longest/shortest side above 20:1 leaves a square centre crop with under 5% of the picture.
MAX_ASPECT = 20.0
SIZE_RANGE = (8, 1024)  # 8 px is the smallest that still shows a shape; 1024 is slow on a CPU
CROPS = ("center", "pad")
WHITE = (255, 255, 255)

Source = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, Image.Image, np.ndarray]

HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
AVIF_BRANDS = (b"avif", b"avis")
VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5")
HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")
IMAGE_MAGIC = (  # file signatures, to tell a broken image from something else
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class ImageLoadError(ValueError):
    """Something given to ``load_image`` cannot become a picture; the message says why and what
    to do about it."""


@dataclass
class ImageInfo:
    """Where a loaded picture came from.

    Attributes:
        name: the file name, or "the uploaded bytes" / "the given array" / ...
        original_size: (width, height) of the picture as shown, after EXIF rotation.
        mode: the Pillow mode it was stored in ("RGB", "RGBA", "I;16", "CMYK", ...).
        size: the side of the square tensor it was turned into.
    """

    name: str
    original_size: tuple[int, int]
    mode: str
    size: int

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
        max_bytes: refuse files/bytes larger than this (default ``MAX_BYTES``, 30 MB).
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
    the first frame fully, apply the EXIF rotation, flatten to 8-bit RGB on white, make it
    square (crop or pad), resize with LANCZOS, and map pixels v to v / 127.5 - 1.
    """
    check_load_args(size, channels, crop)
    name, img = open_image(source, max_bytes=max_bytes, max_pixels=max_pixels)
    mode, (w, h) = img.mode, img.size
    if img.format == "JPEG" and img is not source:  # (never change the caller's own image)
        img.draft(img.mode, (2 * size, 2 * size))  # libjpeg decodes at 1/2..1/8 scale: faster
    decode_fully(img, name)
    stored = img.size
    img = upright(img)
    turned = img.size != stored  # EXIF said the picture is stored sideways
    info = ImageInfo(name=name, original_size=(h, w) if turned else (w, h), mode=mode, size=size)
    img = to_8bit_rgb(img, name)
    img = img.convert("L" if channels == 1 else "RGB")  # L = 0.299 R + 0.587 G + 0.114 B
    img = make_square(img, crop)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
    pixels = np.asarray(img, dtype=np.float32).reshape(size, size, channels)
    x = torch.from_numpy(pixels / 127.5 - 1.0)  # {0..255} -> [-1, 1], the inverse of to_numpy
    return x.permute(2, 0, 1).unsqueeze(0).contiguous(), info


def open_image(
    source: Source, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS
) -> tuple[str, Image.Image]:
    """Return (a name for messages, the PIL image opened lazily: header read, pixels not yet
    decoded), after checking its byte size and its width x height."""
    if isinstance(source, Image.Image):  # used as it is, at its current frame
        name, img = "the given PIL image", source
    elif isinstance(source, np.ndarray):
        name, img = "the given array", array_to_pil(source)
    else:
        name, data = read_bytes(source, max_bytes)
        img = open_bytes(data, name)  # at the first frame of an animated GIF/PNG/WebP
    check_dimensions(img.size, name, max_pixels)
    return name, img


def read_bytes(source: Source, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """Return (name, raw bytes) of a path, bytes or file object, refusing ones over
    ``max_bytes`` (checked with os.stat / len before reading everything)."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name, data = "the uploaded bytes", bytes(source)
        check_byte_size(len(data), name, max_bytes)
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        raise ImageLoadError(
            f"Could not load {source}: it is a web address and load_image reads local files "
            "only. Download the picture first (in Colab: !wget URL -O photo.jpg) and pass the "
            "file's path."
        )
    elif isinstance(source, (str, os.PathLike)):
        name, data = str(source), read_path(Path(source), max_bytes)
    elif hasattr(source, "read"):
        file_name = getattr(source, "name", None)
        name = str(file_name) if isinstance(file_name, (str, os.PathLike)) else "the given file"
        try:
            data = source.read(max_bytes + 1)
        except Exception as err:  # noqa: BLE001 - any failure to read is reported the same way
            raise ImageLoadError(f"Could not read {name}: {err}.") from err
        if not isinstance(data, (bytes, bytearray)):
            raise ImageLoadError(
                f"Could not load {name}: it gave {type(data).__name__}, not bytes: open the file in binary mode, "
                "open(path, 'rb')."
            )
        check_byte_size(len(data), name, max_bytes)
    elif isinstance(source, torch.Tensor):
        raise ImageLoadError(
            "load_image was given a torch tensor, which is already an image in model space. "
            "Use it directly, or to_pil(tensor) to look at it."
        )
    else:
        raise ImageLoadError(
            f"Cannot load a picture from a {type(source).__name__}. Pass a file path, bytes, a "
            "binary file object, a PIL image or a numpy array."
        )
    if not data:
        raise ImageLoadError(
            f"Could not load {name}: it is empty (0 bytes), so the upload or copy did not finish. "
            "Upload or save the picture again."
        )
    return name, bytes(data)


def read_path(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of an image file, with clear errors for missing files, folders and URLs."""
    text = str(path)
    if not path.exists():
        raise ImageLoadError(
            f"File not found: {text} (looked in {Path.cwd()}). Check the name and folder; "
            "in Colab, upload the picture first, e.g. with upload_image(dialog=True)."
        )
    if path.is_dir():
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        hint = f" such as {path / inside[0]}" if inside else ""
        raise ImageLoadError(
            f"Could not load {text}: it is a folder, not an image file. Pass the path of one picture{hint}."
        )
    try:
        check_byte_size(path.stat().st_size, text, max_bytes)
        return path.read_bytes()
    except OSError as err:
        raise ImageLoadError(f"Could not read {text}: {err.strerror or err}.") from err


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic")


def check_byte_size(n_bytes: int, name: str, max_bytes: int) -> None:
    """Raise ``ImageLoadError`` when a file or upload is larger than ``max_bytes``."""
    if n_bytes > max_bytes:
        raise ImageLoadError(
            f"Could not load {name}: it is {n_bytes / 1e6:.1f} MB, over the limit of {max_bytes / 1e6:.1f} MB "
            f"(max_bytes={max_bytes}). Export a smaller JPEG (a few MB is plenty: the picture "
            "is shrunk to 64 px anyway), or pass a larger max_bytes= if you mean it."
        )


def open_bytes(data: bytes, name: str) -> Image.Image:
    """Open encoded image bytes lazily (header only); explain what they are if not an image."""
    brand = data[8:12] if data[4:8] == b"ftyp" else b""  # ISO-BMFF: HEIC, AVIF, MP4, MOV
    if brand in HEIC_BRANDS and not enable_heif():
        raise ImageLoadError(
            f"Could not load {name}: it is a HEIC/HEIF photo (the iPhone's default format), which Pillow cannot "
            "read by itself. Either run `pip install pillow-heif` and re-run (it is then used "
            "automatically), or convert it to JPEG: on the iPhone set Settings > Camera > "
            "Formats > Most Compatible, or share/export it as JPEG; on a Mac open it in Preview "
            "and use File > Export > JPEG."
        )
    if brand in AVIF_BRANDS and not has_feature("avif"):
        raise ImageLoadError(
            f"Could not load {name}: it is an AVIF picture, which this Pillow cannot read. Upgrade Pillow "
            "(`pip install -U pillow`, 11.2 or newer reads AVIF) or convert it to PNG/JPEG."
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        image_kind = next((kind for magic, kind in IMAGE_MAGIC if data.startswith(magic)), None)
        if image_kind is not None:  # an image's signature, but a header Pillow rejects
            raise ImageLoadError(corrupt_message(name, image_kind, "invalid header")) from err
        what = describe_non_image(data, brand)
        raise ImageLoadError(f"Could not load {name}: it is {what}") from err
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(bomb_message(name, pillow_pixel_count(err))) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for broken headers
        raise ImageLoadError(corrupt_message(name, "an image", err)) from err


def describe_non_image(data: bytes, brand: bytes = b"") -> str:
    """What the bytes look like, and what to do, for data that is not a readable image."""
    head = data[:1024].lstrip().lower()
    if data.startswith(b"%PDF"):
        return (
            "a PDF document, not an image. Export the page as PNG or JPEG (or take a "
            "screenshot of it) and load that."
        )
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return (
            "an HTML web page, not an image: the download saved the page around the picture. "
            "Open the picture itself (right-click > Save image as...) and load that file."
        )
    if b"<svg" in head:
        return "an SVG vector drawing; only pixel images load. Export it as PNG first."
    if brand in HEIC_BRANDS + AVIF_BRANDS:
        return (
            "a HEIC/AVIF photo that could not be decoded (damaged, or a variant the installed "
            "plugin does not support). Convert it to JPEG and load that."
        )
    if data.startswith(b"PK\x03\x04"):
        return (
            "a ZIP archive (or a .docx/.xlsx/.pptx document), not an image. Unzip it and "
            "load one picture from inside."
        )
    if brand in VIDEO_BRANDS:
        return "a video (MP4/MOV), not an image. Save one frame as JPEG/PNG and load that."
    if looks_like_text(data):
        snippet = data[:40].decode("utf-8", "replace").strip().splitlines()[0]
        return (
            f'plain text ("{snippet[:40]}..."), not an image. If this text is a file path, '
            "pass it as a str or Path, not as bytes."
        )
    return (
        f"not an image format Pillow can read (it starts with bytes {data[:8].hex(' ')}). "
        "Save the picture as PNG or JPEG and try again."
    )


def looks_like_text(data: bytes) -> bool:
    """True when the first bytes decode as UTF-8 and are nearly all printable characters."""
    try:
        text = data[:512].decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return len(text) > 0 and printable >= 0.95 * len(text)


def enable_heif() -> bool:
    """Register pillow-heif's HEIC opener with Pillow if it is installed; True if available."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:
        return False
    register_heif_opener()
    return True


def has_feature(feature: str) -> bool:
    """True when this Pillow was built with ``feature`` (False for features it does not know)."""
    try:
        return bool(features.check(feature))
    except (ValueError, KeyError):
        return False


def check_dimensions(wh: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse empty, extreme-aspect and oversized pictures from their header size alone."""
    w, h = wh
    if w <= 0 or h <= 0:
        raise ImageLoadError(
            f"Could not load {name}: it is {w}x{h} pixels and has no pixels to show. Check the file is a real "
            "picture (re-export it) and load that."
        )
    if w * h > max_pixels:
        raise ImageLoadError(bomb_message(name, f"{w}x{h} = {w * h:,} pixels", max_pixels))
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_ASPECT:
        raise ImageLoadError(
            f"Could not load {name}: it is {w}x{h} pixels, an aspect ratio of {ratio:.0f}:1 (more than "
            f"{MAX_ASPECT:.0f}:1): a square crop would keep only a thin slice, almost nothing "
            "of the picture. Crop the part you want to a squarer picture first."
        )


def bomb_message(name: str, what: str, max_pixels: int = MAX_PIXELS) -> str:
    """The message for a picture with too many pixels to decode safely."""
    return (
        f"Could not load {name}: it is too large to decode safely: {what}, over the limit of {max_pixels:,} "
        f"pixels (max_pixels={max_pixels}). Shrink it first (e.g. export it at 2000 pixels on "
        "the long side; it is resized to 64 px anyway), or pass a larger max_pixels= if you "
        "trust the file."
    )


def pillow_pixel_count(err: BaseException) -> str:
    """ "N pixels" from Pillow's own decompression-bomb message (its text if that fails)."""
    found = re.search(r"\((\d+) pixels\)", str(err))
    return f"{int(found.group(1)):,} pixels" if found else str(err)


def corrupt_message(name: str, kind: str, err: Union[BaseException, str]) -> str:
    """The message for data that starts like an image but cannot be decoded."""
    return (
        f"Could not load {name}: it looks like {kind} but its data is truncated or corrupt ({err}). Download or "
        "export it again, or open it in an image viewer and save a fresh copy."
    )


def decode_fully(img: Image.Image, name: str) -> None:
    """Decode all pixels now (``img.load()``), so broken data fails here with a clear message.

    Pillow's ImageFile.LOAD_TRUNCATED_IMAGES stays False: a truncated file is an error.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageLoadError(bomb_message(name, pillow_pixel_count(err))) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises OSError, SyntaxError, ValueError...
        kind = f"a {img.format} image" if img.format else "an image"
        raise ImageLoadError(corrupt_message(name, kind, err)) from err


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


def make_square(img: Image.Image, crop: str) -> Image.Image:
    """Centre-crop to the shorter side (crop="center") or pad with white to the longer side
    (crop="pad"), keeping the picture centred."""
    w, h = img.size
    if w == h:
        return img
    if crop == "center":
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        return img.crop((left, top, left + side, top + side))
    side = max(w, h)
    fill = WHITE if img.mode == "RGB" else 255
    square = Image.new(img.mode, (side, side), fill)
    square.paste(img, ((side - w) // 2, (side - h) // 2))
    return square


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

"""Image files and bytes: read them safely and say what they are when they are not a picture.

``read_bytes`` turns a path, raw bytes or a binary file object into at most ``max_bytes`` bytes:
a path is checked with ``os.stat`` first (pipes, devices and sockets are refused before they are
opened, since reading them can block or never end) and every read is capped, whatever the file
system says its size is. ``open_bytes`` opens the bytes with Pillow, header only, and refuses
pictures with more pixels than ``max_pixels`` before decoding them. Anything else raises
``ImageLoadError`` with the reason and the fix; messages describe what a file is ("a PDF
document", "a text file") and never quote what is inside it.

This module needs only the standard library, Pillow and :func:`.checks.paths.shown_path` (which
names a path in a message, whatever bytes its name holds); turning pixels into tensors is in
``images.py``.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Optional, Union

from PIL import Image, UnidentifiedImageError, features

from ..checks.paths import shown_path

# 30 MiB (31.5 MB): well above any phone photo (a 48-megapixel JPEG or HEIC is 5-15 MB) and small
# enough to upload to Colab quickly; it stops videos, archives and raw scans before we read them.
MAX_BYTES = 30 * 1024 * 1024
# 64 megapixels: above the largest phone cameras (48-50 MP). Decoding such a picture as RGB
# takes 64e6 * 3 bytes = 192 MB; beyond this a tiny compressed file can claim billions of
# pixels (a "decompression bomb"), so we refuse from the header before decoding anything.
MAX_PIXELS = 64_000_000
# Longest/shortest side above 20:1 leaves a square centre crop with under 5% of the picture.
MAX_ASPECT = 20.0
# The suffixes of the picture files we look for in a folder (.heic needs pillow-heif).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".heic")

ByteSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]

HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
AVIF_BRANDS = (b"avif", b"avis")
VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5")
IMAGE_MAGIC = (  # file signatures, to tell a broken image from something else
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
)
SPECIAL_FILES = (  # (test of st_mode, what such a path is): never opened, reading can block
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device (like /dev/zero or a terminal)"),
    (stat.S_ISBLK, "a block device (a disk)"),
    (stat.S_ISSOCK, "a socket"),
)
# Opening a FIFO for reading waits for a writer unless O_NONBLOCK is set (not on Windows).
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


class ImageLoadError(ValueError):
    """Something given to ``load_image`` cannot become a picture; the message says why and what
    to do about it."""


# ---------------------------------------------------------------------------------------------
# Reading bytes
# ---------------------------------------------------------------------------------------------


def read_bytes(source: ByteSource, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """Return (a name for messages, the raw bytes) of a path, bytes or binary file object.

    Sizes are checked before anything is copied or read in full: ``len`` for bytes, ``os.stat``
    and a read of at most ``max_bytes + 1`` bytes for paths and file objects.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = "the uploaded bytes"
        n_bytes = source.nbytes if isinstance(source, memoryview) else len(source)
        check_byte_size(n_bytes, name, max_bytes)
        data = bytes(source)
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        raise ImageLoadError(
            f"Could not load {shown_path(source)}: it is a web address and load_image reads "
            "local files only. Download the picture first (in Colab: !wget URL -O photo.jpg) "
            "and pass the file's path."
        )
    elif isinstance(source, (str, os.PathLike)):
        name, data = shown_path(source), read_path(Path(source), max_bytes)
    elif hasattr(source, "read"):
        file_name = getattr(source, "name", None)
        name = (
            shown_path(file_name) if isinstance(file_name, (str, os.PathLike)) else "the given file"
        )
        data = read_file_object(source, name, max_bytes)
    else:
        raise ImageLoadError(
            f"Cannot load a picture from a {type(source).__name__}. Pass a file path, bytes, a "
            "binary file object, a PIL image or a numpy array."
        )
    if not data:
        raise ImageLoadError(
            f"Could not load {name}: it is empty (0 bytes), so the upload or copy did not "
            "finish. Upload or save the picture again."
        )
    return name, data


def read_file_object(source: BinaryIO, name: str, max_bytes: int) -> bytes:
    """At most ``max_bytes`` bytes from an open binary file; more is an ``ImageLoadError``."""
    try:
        data = source.read(max_bytes + 1)  # one byte more than allowed tells "too large"
    except Exception as err:  # noqa: BLE001 - any failure to read is reported the same way
        raise ImageLoadError(f"Could not read {name}: {err}.") from err
    if not isinstance(data, (bytes, bytearray)):
        raise ImageLoadError(
            f"Could not load {name}: it gave {type(data).__name__}, not bytes: open the file "
            "in binary mode, open(path, 'rb')."
        )
    check_byte_size(len(data), name, max_bytes, exact=False)
    return bytes(data)


def read_path(path: Path, max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of an image file, at most ``max_bytes``.

    ``os.stat`` first: folders, pipes, devices and sockets are refused before they are opened,
    and a file whose size is over the limit before it is read. Then one read of at most
    ``max_bytes + 1`` bytes, since st_size can be wrong (0 for files in /proc).
    """
    text = shown_path(path)
    try:
        info = os.stat(path)
    except OSError as err:
        raise ImageLoadError(os_error_message(path, err)) from err
    if stat.S_ISDIR(info.st_mode):
        raise ImageLoadError(folder_message(path))
    check_regular_file(info.st_mode, text)
    check_byte_size(info.st_size, text, max_bytes)
    try:
        # O_NONBLOCK: should the path turn into a pipe after the stat, opening it cannot wait.
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | O_NONBLOCK)) as file:
            check_regular_file(os.fstat(file.fileno()).st_mode, text)  # what we opened
            data = file.read(max_bytes + 1)
    except OSError as err:
        raise ImageLoadError(os_error_message(path, err)) from err
    check_byte_size(len(data), text, max_bytes, exact=False)
    return data


def check_regular_file(mode: int, name: str) -> None:
    """Refuse pipes, devices, sockets and anything else that is not a regular file."""
    kind = next((kind for is_kind, kind in SPECIAL_FILES if is_kind(mode)), None)
    if kind is None and not stat.S_ISREG(mode):
        kind = "a special file"
    if kind is not None:
        raise ImageLoadError(
            f"Could not load {name}: it is {kind}, not a file, so it has no picture to read "
            "(reading it could wait forever or never end). Pass the path of a picture file."
        )


def os_error_message(path: Path, err: OSError) -> str:
    """Say why the operating system would not let us look at or read ``path``."""
    text = shown_path(path)
    if err.errno == errno.ENOENT and os.path.islink(path):
        return (
            f"Could not load {text}: it is a symbolic link to {shown_path(os.readlink(path))}, "
            "which does not exist (a broken link). Pass the path of the picture itself."
        )
    if err.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.lexists(path):
        return (
            f"File not found: {text} (looked in {shown_path(Path.cwd())}). Check the name and "
            "folder; in Colab, upload the picture first, e.g. with upload_image(dialog=True)."
        )
    if err.errno == errno.ELOOP:
        return (
            f"Could not load {text}: it is a symbolic link loop (a link that leads back to "
            "itself, directly or through other links), so no file is at its end. Fix the link "
            "(ls -l shows where it points) or pass the picture's real path."
        )
    if err.errno in (errno.EACCES, errno.EPERM):
        return (
            f"Could not load {text}: permission denied, this user may not read it (or may not "
            "open a folder on its way). Copy the picture to a folder of yours, or make it "
            "readable (chmod +r)."
        )
    return f"Could not read {text}: {err.strerror or err}."


def folder_message(path: Path) -> str:
    """The message for a folder given where one picture is expected, naming one inside."""
    try:
        inside = sorted(p.name for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError:  # e.g. a folder we may not list
        inside = []
    hint = f" such as {shown_path(path / inside[0])}" if inside else ""
    return (
        f"Could not load {shown_path(path)}: it is a folder, not an image file. Pass the path "
        f"of one picture{hint}."
    )


def check_byte_size(n_bytes: int, name: str, max_bytes: int, exact: bool = True) -> None:
    """Raise ``ImageLoadError`` when a file or upload has more than ``max_bytes`` bytes.

    ``exact=False`` when reading stopped at the limit, so only "more than" is known.
    """
    if n_bytes <= max_bytes:
        return
    size, limit = f"{n_bytes / 1e6:.1f} MB", f"{max_bytes / 1e6:.1f} MB"
    if size == limit or max_bytes < 100_000:  # e.g. one byte over: show the exact counts
        size, limit = f"{n_bytes:,} bytes", f"{max_bytes:,} bytes"
    what = f"it is {size}, over" if exact else "it is over"
    raise ImageLoadError(
        f"Could not load {name}: {what} the limit of {limit} (max_bytes={max_bytes}). Export a "
        "smaller JPEG (a few MB is plenty: the picture is shrunk to 64 px anyway), or pass a "
        "larger max_bytes= if you mean it."
    )


# ---------------------------------------------------------------------------------------------
# Opening bytes with Pillow, or saying what they are
# ---------------------------------------------------------------------------------------------


def open_bytes(data: bytes, name: str, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Open encoded image bytes lazily (header read, pixels not decoded yet) and check their
    width x height; explain what the bytes are if they are not an image."""
    brand = data[8:12] if data[4:8] == b"ftyp" else b""  # ISO-BMFF: HEIC, AVIF, MP4, MOV
    if brand in HEIC_BRANDS and not enable_heif():
        raise ImageLoadError(
            f"Could not load {name}: it is a HEIC/HEIF photo (the iPhone's default format), "
            "which Pillow cannot read by itself. Either run `pip install pillow-heif` and "
            "re-run (it is then used automatically), or convert it to JPEG: on the iPhone set "
            "Settings > Camera > Formats > Most Compatible, or share/export it as JPEG; on a "
            "Mac open it in Preview and use File > Export > JPEG."
        )
    if brand in AVIF_BRANDS and not has_feature("avif"):
        raise ImageLoadError(
            f"Could not load {name}: it is an AVIF picture, which this Pillow cannot read. "
            "Upgrade Pillow (`pip install -U pillow`, 11.2 or newer reads AVIF) or convert it "
            "to PNG/JPEG."
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours, max_pixels, is checked right below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as err:
        image_kind = next((kind for magic, kind in IMAGE_MAGIC if data.startswith(magic)), None)
        if image_kind is not None:  # an image's signature, but a header Pillow rejects
            raise ImageLoadError(corrupt_message(name, image_kind, "invalid header")) from err
        raise ImageLoadError(f"Could not load {name}: it is {describe_non_image(data)}") from err
    except Image.DecompressionBombError as err:  # over twice Image.MAX_IMAGE_PIXELS
        raise ImageLoadError(bomb_message(name, header_size(data), max_pixels)) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for broken headers
        raise ImageLoadError(corrupt_message(name, "an image", "invalid header")) from err
    check_dimensions(img.size, name, max_pixels)
    return img


def header_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) as the header says, read by the Pillow plugin that accepts the data, as
    ``Image.open`` does but without its pixel limit (which raises before telling the size)."""
    Image.init()  # registers every plugin in Image.OPEN, in the order of Image.ID
    for fmt in Image.ID:
        factory, accept = Image.OPEN[fmt]
        accepted = accept is None or accept(data[:16])  # a str is a warning: not accepted
        if not accepted or isinstance(accepted, str):
            continue
        try:
            return factory(io.BytesIO(data)).size
        except Exception:  # noqa: BLE001 - not this plugin's format after all: try the next
            continue
    return None


def describe_non_image(data: bytes) -> str:
    """What the bytes are (their kind only, never their text) and what to do instead."""
    head = data[:1024].lstrip().lower()
    brand = data[8:12] if data[4:8] == b"ftyp" else b""
    if data.startswith(b"%PDF"):
        return (
            "a PDF document, not an image. Export the page as PNG or JPEG (or take a "
            "screenshot of it) and load that."
        )
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return (
            "an HTML page, not an image: the download saved the web page around the picture. "
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
        return (
            "a text file, not an image. If this text is a file path, pass it as a str or Path, "
            "not as bytes."
        )
    return "not an image format Pillow can read. Save the picture as PNG or JPEG and try again."


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


# ---------------------------------------------------------------------------------------------
# Width x height, and the messages for pictures that cannot be decoded
# ---------------------------------------------------------------------------------------------


def check_dimensions(wh: tuple[int, int], name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse empty, extreme-aspect and oversized pictures from their header size alone."""
    w, h = wh
    if w <= 0 or h <= 0:
        raise ImageLoadError(
            f"Could not load {name}: it is {w}x{h} pixels and has no pixels to show. Check the "
            "file is a real picture (re-export it) and load that."
        )
    if w * h > max_pixels:
        raise ImageLoadError(bomb_message(name, (w, h), max_pixels))
    ratio = max(w, h) / min(w, h)
    if ratio > MAX_ASPECT:
        raise ImageLoadError(
            f"Could not load {name}: it is {w}x{h} pixels, an aspect ratio of {ratio:.0f}:1 "
            f"(more than {MAX_ASPECT:.0f}:1): a square crop would keep only a thin slice, "
            "almost nothing of the picture. Crop the part you want to a squarer picture first."
        )


def bomb_message(name: str, wh: Optional[tuple[int, int]], max_pixels: int = MAX_PIXELS) -> str:
    """The message for a picture with too many pixels to decode safely.

    ``wh`` is (width, height) from the header, or None if unknown. When it is within
    ``max_pixels``, the limit that refused it is Pillow's own (2 x ``Image.MAX_IMAGE_PIXELS``).
    """
    what = f"{wh[0]}x{wh[1]} = {wh[0] * wh[1]:,} pixels" if wh else "its header's width x height"
    if wh is None or wh[0] * wh[1] > max_pixels:
        limit = f"the limit of {max_pixels:,} pixels (max_pixels={max_pixels})"
        fix = "pass a larger max_pixels= if you trust the file"
    else:
        limit = f"Pillow's own limit of {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels"
        fix = "raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file"
    return (
        f"Could not load {name}: it is too large to decode safely: {what}, over {limit}. "
        "Shrink it first (e.g. export it at 2000 pixels on the long side; it is resized to "
        f"64 px anyway), or {fix}."
    )


def corrupt_message(name: str, kind: str, reason: str) -> str:
    """The message for data that starts like an image but cannot be decoded.

    ``reason`` is in our own words, never Pillow's message, which can quote bytes of the file
    (e.g. a token of a PPM header).
    """
    return (
        f"Could not load {name}: it looks like {kind} but its data is truncated or corrupt "
        f"({reason}). Download or export it again, or open it in an image viewer and save a "
        "fresh copy."
    )

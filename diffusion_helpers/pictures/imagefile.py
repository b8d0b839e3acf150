"""Picture files: read their bytes safely, let Pillow open them, and say in one line what a
file is when it is not a picture.

:func:`read_bytes` reads at most ``max_bytes`` of a path, bytes or file object, and refuses a
path that is not a regular file before opening it (reading a pipe can wait forever).
:func:`open_bytes` lets Pillow read the header and refuses more than ``max_pixels`` before
anything is decoded. What goes wrong is one :class:`ImageLoadError` that names the file and
says what it is and what to do, in our own words (Pillow's can quote bytes of the file).
Needs only the standard library, Pillow and :mod:`..checks.paths`.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Optional, Union

from PIL import Image, features

from ..checks.paths import bytes_kind, file_kind, shown_path, special_kind

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
# Brands of ISO media files (bytes 8..12 after "ftyp"), which Pillow may not read by itself.
HEIC_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")
AVIF_BRANDS = (b"avif", b"avis")
VIDEO_BRANDS = (b"isom", b"iso2", b"mp41", b"mp42", b"qt  ", b"M4V ", b"3gp4", b"3gp5")
ADVICE = {  # what to do with a file that is not a picture, by what it is (checks.paths)
    "a PDF document": "Export the page as PNG or JPEG (or take a screenshot of it) and load that.",
    "an HTML page": "The download saved the web page around the picture: open the picture "
    "itself (right-click > Save image as...) and load that file.",
    "an SVG drawing": "Only pixel pictures load: export it as PNG first.",
    "a zip archive": "Unzip it and load one picture from inside (Word and Excel files are ZIP "
    "archives too).",
    "a text file": "Pass the path of a picture file (PNG or JPEG) instead.",
}
# Opening a FIFO for reading waits for a writer unless O_NONBLOCK is set (not on Windows).
O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)

ByteSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO]


class ImageLoadError(ValueError):
    """Something given to ``load_image`` cannot become a picture; the message says why and what
    to do about it."""


def read_bytes(source: ByteSource, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """(a name for messages, the raw bytes) of a path, bytes or binary file object, checked
    against ``max_bytes`` before anything is copied or read in full."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        name = "the uploaded bytes"
        check_byte_size(memoryview(source).nbytes, name, max_bytes)
        data = bytes(source)
    elif isinstance(source, str) and source.startswith(("http://", "https://")):
        raise ImageLoadError(
            f"Could not load {shown_path(source)}: it is a web address and load_image reads "
            "local files only. Download the picture first (in Colab: !wget URL -O photo.jpg) "
            "and pass the file's path."
        )
    elif isinstance(source, (str, os.PathLike)):
        name, data = shown_path(source), read_path(source, max_bytes)
    elif hasattr(source, "read"):
        own = getattr(source, "name", None)
        name = shown_path(own) if isinstance(own, (str, os.PathLike)) else "the given file"
        try:
            data = source.read(max_bytes + 1)  # one byte more than allowed tells "too large"
        except Exception as err:  # noqa: BLE001 - any failure to read is reported the same way
            raise ImageLoadError(f"Could not read {name}: {err}.") from err
        if not isinstance(data, (bytes, bytearray)):
            raise ImageLoadError(
                f"Could not load {name}: it gave {type(data).__name__}, not bytes: open the "
                "file in binary mode, open(path, 'rb')."
            )
        check_byte_size(len(data), name, max_bytes, exact=False)
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
    return name, bytes(data)


def read_path(path: Union[str, os.PathLike], max_bytes: int = MAX_BYTES) -> bytes:
    """The bytes of a picture file, at most ``max_bytes``: ``os.stat`` first (folders, pipes and
    devices are refused before they are opened), then one read of at most ``max_bytes + 1``
    bytes, since st_size can be wrong (0 for files in /proc)."""
    name = shown_path(path)
    try:
        info = os.stat(path)
        if stat.S_ISDIR(info.st_mode):
            raise ImageLoadError(folder_message(Path(path)))
        check_regular_file(info.st_mode, name)
        check_byte_size(info.st_size, name, max_bytes)
        # O_NONBLOCK: should the path turn into a pipe after the stat, opening it cannot wait.
        with open(path, "rb", opener=lambda p, flags: os.open(p, flags | O_NONBLOCK)) as file:
            check_regular_file(os.fstat(file.fileno()).st_mode, name)  # what we opened
            data = file.read(max_bytes + 1)
    except OSError as err:
        raise ImageLoadError(os_error_message(path, err)) from err
    check_byte_size(len(data), name, max_bytes, exact=False)
    return data


def check_regular_file(mode: int, name: str) -> None:
    """Refuse pipes, devices, sockets and anything else that is not a regular file."""
    if not stat.S_ISREG(mode):
        raise ImageLoadError(
            f"Could not load {name}: it is {special_kind(mode)}, not a file, so it has no "
            "picture to read (reading it could wait forever or never end). Pass the path of a "
            "picture file."
        )


def os_error_message(path: Union[str, os.PathLike], err: OSError) -> str:
    """Why the operating system would not let us look at or read ``path``."""
    name = shown_path(path)
    if err.errno in (errno.ENOENT, errno.ENOTDIR) and not os.path.lexists(path):
        return (
            f"File not found: {name} (looked in {shown_path(Path.cwd())}). Check the name and "
            "folder; in Colab, upload the picture first, e.g. with upload_image(dialog=True)."
        )
    if err.errno == errno.ENOENT:  # the path is there: a link to nothing
        why = f"it is {file_kind(path)} (a broken link). Pass the path of the picture itself"
    elif err.errno == errno.ELOOP:
        why = (
            "it is a symbolic link loop (a link that leads back to itself, directly or through "
            "other links), so no file is at its end. Fix the link (ls -l shows where it points) "
            "or pass the picture's real path"
        )
    elif err.errno in (errno.EACCES, errno.EPERM):
        why = (
            "permission denied, this user may not read it (or may not open a folder on its "
            "way). Copy the picture to a folder of yours, or make it readable (chmod +r)"
        )
    else:
        return f"Could not read {name}: {err.strerror or err}."
    return f"Could not load {name}: {why}."


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
    """Raise ``ImageLoadError`` when a file or upload has more than ``max_bytes`` bytes
    (``exact=False`` when reading stopped at the limit, so only "more than" is known)."""
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


def open_bytes(
    data: bytes, name: str, max_pixels: int = MAX_PIXELS, *, given_bytes: bool = False
) -> Image.Image:
    """Open encoded picture bytes with Pillow, header only (pixels not decoded yet), and check
    its width x height; ``given_bytes``: the caller passed the bytes themselves (not a file)."""
    if data[8:12] in HEIC_BRANDS and data[4:8] == b"ftyp":
        enable_heif()  # pillow-heif, where installed, teaches Pillow to read HEIC
    try:
        with warnings.catch_warnings():
            # Pillow warns above its own limit; ours, max_pixels, is checked right below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as err:  # over twice Image.MAX_IMAGE_PIXELS
        raise ImageLoadError(bomb_message(name, header_size(data), max_pixels)) from err
    except Exception as err:  # noqa: BLE001 - Pillow raises many types for what it cannot read
        raise ImageLoadError(
            f"Could not load {name}: it is {what_it_is(data, given_bytes)}"
        ) from err
    check_dimensions(img.size, name, max_pixels)
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and img.format != "MPO":  # a camera's MPO holds more views of one photo
        warnings.warn(
            f"{name}: an animation of {frames} frames (or pages); only the first is used.",
            stacklevel=3,
        )
    return img


def what_it_is(data: bytes, given_bytes: bool = False) -> str:
    """What bytes Pillow could not open are, and what to do (their kind only, never their
    text): a picture whose data is damaged, or something else."""
    brand = data[8:12] if data[4:8] == b"ftyp" else b""  # ISO media: HEIC, AVIF, MP4, MOV
    if brand in HEIC_BRANDS and not enable_heif():
        return (
            "a HEIC/HEIF photo (the iPhone's default format), which Pillow cannot read by "
            "itself. Run `pip install pillow-heif` and re-run, or export it as JPEG (on the "
            "iPhone: Settings > Camera > Formats > Most Compatible; on a Mac: Preview, File > "
            "Export)."
        )
    if brand in AVIF_BRANDS and not has_feature("avif"):
        return (
            "an AVIF picture, which this Pillow cannot read. Upgrade Pillow (`pip install -U "
            "pillow`: 11.2 and newer read AVIF) or convert it to PNG or JPEG."
        )
    if brand in HEIC_BRANDS + AVIF_BRANDS:
        return (
            "a HEIC/AVIF photo that could not be decoded (damaged, or a variant the installed "
            "plugin does not support). Convert it to JPEG and load that."
        )
    if brand in VIDEO_BRANDS:
        return "a video (MP4/MOV), not an image. Save one frame as JPEG/PNG and load that."
    fmt = signature_format(data)
    if fmt is not None:  # a picture's signature, but a header Pillow rejects
        return corrupt(f"a {fmt} image", "invalid header")
    kind = bytes_kind(data[:4096])
    if kind not in ADVICE:  # a pickle, bytes of another kind
        return f"{kind}, not an image format Pillow can read. Save the picture as PNG or JPEG."
    advice = ADVICE[kind]
    if given_bytes and kind == "a text file":
        advice = "If this text is a file path, pass it as a str or Path, not as bytes."
    return f"{kind}, not an image. {advice}"


def signature_format(data: bytes) -> Optional[str]:
    """The Pillow format whose signature ``data`` starts with ("PNG", "JPEG", "PPM", ...)."""
    Image.init()  # registers every plugin, in the order Image.open tries them
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        accepted = accept is not None and accept(data[:16])
        if accepted and not isinstance(accepted, str):  # a str is Pillow's warning, not a yes
            return fmt
    return None


def header_size(data: bytes) -> Optional[tuple[int, int]]:
    """(width, height) as the header says, read by the plugin of the data's format without
    Pillow's pixel limit (which refuses before telling the size); None if unknown."""
    fmt = signature_format(data)
    try:
        return Image.OPEN[fmt][0](io.BytesIO(data)).size if fmt else None
    except Exception:  # noqa: BLE001 - a header the plugin cannot read: the size is unknown
        return None


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
            f"Could not load {name}: it is {w}x{h} pixels and has no pixels to show. Check the "
            "file is a real picture (re-export it) and load that."
        )
    if w * h > max_pixels:
        raise ImageLoadError(bomb_message(name, (w, h), max_pixels))
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageLoadError(
            f"Could not load {name}: it is {w}x{h} pixels, an aspect ratio of "
            f"{max(w, h) / min(w, h):.0f}:1 (more than {MAX_ASPECT:.0f}:1): a square crop would "
            "keep only a thin slice of the picture. Crop the part you want to a squarer "
            "picture first."
        )


def bomb_message(name: str, wh: Optional[tuple[int, int]], max_pixels: int = MAX_PIXELS) -> str:
    """The message for a picture with too many pixels to decode safely; ``wh`` is (width,
    height) from the header, or None. Within ``max_pixels``, the limit that refused it is
    Pillow's own (2 x ``Image.MAX_IMAGE_PIXELS``)."""
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


def corrupt(kind: str, reason: str) -> str:
    """What a file is that starts like a picture of ``kind`` ("a PNG image") but cannot be
    decoded; ``reason`` in our words, never Pillow's (which can quote bytes of the file)."""
    return (
        f"{kind} whose data is truncated or corrupt "
        f"({reason}). Download or export it again, or open it in an image viewer and save a "
        "fresh copy."
    )

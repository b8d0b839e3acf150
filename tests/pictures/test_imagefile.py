"""Tests for imagefile.py: reading paths, bytes and file objects safely, and saying what a file
is when it is not a picture.

Special files (pipes, devices) are read where a regression would hang or fill the memory, so
those tests run the read in a child process or thread with a timeout: a regression fails the
test instead of stopping the suite. Test pictures are drawn with PIL (no binary fixtures).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tempfile
import threading
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from diffusion_helpers.pictures import imagefile
from diffusion_helpers.pictures.imagefile import (
    MAX_BYTES,
    ImageLoadError,
    check_byte_size,
    read_bytes,
)
from diffusion_helpers.pictures.images import load_image

SECRET = "sk-test-DO-NOT-ECHO-4f9a2c"  # looks like an API key; must never appear in a message


def png_bytes(size: tuple[int, int] = (16, 16)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (255, 0, 0)).save(buf, "PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC-32 of type + data (PNG spec section 5.3)."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def fake_png(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height RGB pixels but whose IDAT holds no pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b""))
        + png_chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ImageLoadError, match="File not found") as err:
        load_image(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(err.value)


def test_directory(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "inside.png")
    with pytest.raises(ImageLoadError, match="folder") as err:
        load_image(tmp_path)
    assert "inside.png" in str(err.value)  # suggests a picture in it


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="the uploaded bytes.*empty"):
        load_image(b"")


def test_named_file_is_named_in_the_message(tmp_path):
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7\n")
    with pytest.raises(ImageLoadError, match="report.pdf: it is a PDF"):
        load_image(path)


# A child process that reads one path with read_bytes, capped at 1,000 bytes, and prints the
# message. imagefile needs only the standard library, Pillow and checks/paths.py, so the child
# loads those two files under stand-in packages (0.1 s, no torch). Its address space is capped
# at 1 GiB, so a regression that reads /dev/zero without a cap dies of MemoryError quickly; the
# timeout turns a blocking read into a failure.
CHILD = """
import importlib.util, resource, sys, types
from pathlib import Path
resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))
package = Path(sys.argv[1]).parents[1]
for name, folder in [("dh", package), ("dh.checks", package / "checks"),
                     ("dh.pictures", package / "pictures")]:
    sys.modules[name] = types.ModuleType(name)
    sys.modules[name].__path__ = [str(folder)]
spec = importlib.util.spec_from_file_location("dh.pictures.imagefile", sys.argv[1])
imagefile = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = imagefile
spec.loader.exec_module(imagefile)
try:
    imagefile.read_bytes(sys.argv[2], max_bytes=1000)
    print("read without an error")
except imagefile.ImageLoadError as err:
    print(err)
"""


def read_in_child(path: str) -> str:
    try:
        done = subprocess.run(
            [sys.executable, "-c", CHILD, imagefile.__file__, path],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not return within 30 s")
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_character_devices_are_refused_before_reading(device):
    if not os.path.exists(device) or sys.platform == "win32":
        pytest.skip(f"no {device} here")
    message = read_in_child(device)
    assert f"Could not load {device}: it is a character device" in message
    assert "not a file" in message


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX only")
def test_named_pipe_without_a_writer_is_refused_promptly(tmp_path):
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    result = {}

    def load() -> None:
        try:
            load_image(fifo)
        except ImageLoadError as err:
            result["message"] = str(err)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    thread.join(timeout=30)
    if thread.is_alive():  # the regression: open() waits for a writer. Be one, to free it.
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(timeout=5)
        pytest.fail("load_image blocked on a named pipe that has no writer")
    assert "it is a named pipe (FIFO), not a file" in result["message"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_read_is_capped_when_st_size_is_wrong():
    path = "/proc/self/status"  # a regular file whose st_size is 0 but which holds ~1 kB
    assert os.stat(path).st_size == 0 and len(Path(path).read_bytes()) > 100
    with pytest.raises(ImageLoadError, match="it is over the limit of 100 bytes"):
        read_bytes(path, max_bytes=100)


def test_file_object_read_is_capped():
    with pytest.raises(ImageLoadError, match="it is over the limit of 1,000 bytes"):
        load_image(io.BytesIO(bytes(5000)), max_bytes=1000)


def test_symlink_loop_names_the_loop(tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(ImageLoadError, match="symbolic link loop") as err:
        load_image(a)
    assert "not found" not in str(err.value)


def test_broken_symlink_names_the_link(tmp_path):
    link = tmp_path / "photo.png"
    link.symlink_to(tmp_path / "moved_away.png")
    with pytest.raises(ImageLoadError, match="symbolic link to .*moved_away.png.*broken link"):
        load_image(link)


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_file_says_permission_denied():
    # chmod 000 alone does not stop root (these tests often run as root in containers): root
    # reads any file. So as root the read runs with the effective user id of "nobody" (65534),
    # restored right after; as any other user chmod 000 is enough. The folder is made
    # world-searchable (pytest's tmp_path is not) so that only the file itself is locked.
    with tempfile.TemporaryDirectory() as folder:
        os.chmod(folder, 0o755)
        path = Path(folder) / "locked.png"
        path.write_bytes(png_bytes())
        path.chmod(0)
        as_root = os.geteuid() == 0
        try:
            if as_root:
                os.seteuid(65534)
            with pytest.raises(ImageLoadError, match="permission denied") as err:
                load_image(path)
        finally:
            if as_root:
                os.seteuid(0)
    assert "not found" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# Sizes and sources
# ---------------------------------------------------------------------------------------------


def test_over_the_byte_limit(tmp_path):
    data = png_bytes((64, 64))
    path = tmp_path / "big.png"
    path.write_bytes(data)
    for source in (data, path, io.BytesIO(data)):
        with pytest.raises(ImageLoadError, match="over the limit.*max_bytes=50"):
            load_image(source, max_bytes=50)
    assert load_image(data, size=8, max_bytes=len(data)).shape == (1, 3, 8, 8)


def test_size_message_shows_different_numbers():
    with pytest.raises(ImageLoadError) as err:
        check_byte_size(MAX_BYTES + 1, "big.jpg", MAX_BYTES)  # both round to 31.5 MB
    assert "it is 31,457,281 bytes, over the limit of 31,457,280 bytes" in str(err.value)
    with pytest.raises(ImageLoadError) as err:
        check_byte_size(40_000_000, "big.jpg", MAX_BYTES)
    assert "it is 40.0 MB, over the limit of 31.5 MB (max_bytes=31457280)" in str(err.value)
    with pytest.raises(ImageLoadError, match="200,001 bytes, over the limit of 200,000 bytes"):
        load_image(bytes(200_001), max_bytes=200_000)


def test_memoryview_size_is_counted_in_bytes():
    pixels = np.zeros(300, np.float64)  # 300 items, 2,400 bytes
    with pytest.raises(ImageLoadError, match="2,400 bytes"):
        read_bytes(memoryview(pixels), max_bytes=1000)


@pytest.mark.parametrize(
    "source, words",
    [
        ([1, 2, 3], "list"),
        ("https://example.com/cat.jpg", "web address"),
        (io.StringIO("text"), "binary mode"),
    ],
)
def test_unsupported_sources(source, words):
    with pytest.raises(ImageLoadError, match=words):
        load_image(source)


def test_image_load_error_is_a_value_error():
    assert issubclass(ImageLoadError, ValueError)


# ---------------------------------------------------------------------------------------------
# Files that are not pictures
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, words",
    [
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n", "PDF"),
        (b"<!DOCTYPE html>\n<html><head><title>cat</title></head></html>", "HTML"),
        (b"<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg'></svg>", "SVG"),
        (b"my cat photo, see attachment\nthanks!\n", "a text file"),
        (b"PK\x03\x04" + bytes(40), "ZIP"),
        (b"\x00\x00\x00\x18ftypmp42" + bytes(40), "video"),
        (np.random.default_rng(2).integers(0, 256, 1000, dtype=np.uint8).tobytes(), "not an image"),
    ],
)
def test_not_an_image(data, words):
    with pytest.raises(ImageLoadError, match=words) as err:
        load_image(data)
    assert "the uploaded bytes" in str(err.value)


@pytest.mark.parametrize(
    "content, kind",
    [
        (f"login: learner\npassword token {SECRET}\n", "a text file"),
        (f"<!DOCTYPE html><html><head><title>{SECRET}</title></head></html>", "an HTML page"),
        (f"P6\n{SECRET}\n", "corrupt"),  # a PPM header: Pillow's own error quotes the token
        (f"%PDF-1.4\n% {SECRET}\n", "a PDF document"),
    ],
)
def test_messages_never_quote_the_file(tmp_path, content, kind):
    path = tmp_path / "notes.png"
    path.write_text(content)
    for source in (path, content.encode()):
        with pytest.raises(ImageLoadError, match=kind) as err:
            load_image(source)
        assert SECRET[:8] not in str(err.value)  # not even the start of it


def test_heic_without_pillow_heif(monkeypatch):
    monkeypatch.setattr(imagefile, "enable_heif", lambda: False)
    data = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(100)
    with pytest.raises(ImageLoadError, match="HEIC") as err:
        load_image(data)
    assert "pillow-heif" in str(err.value) and "JPEG" in str(err.value)


def test_broken_heic_with_a_heif_plugin(monkeypatch):
    monkeypatch.setattr(imagefile, "enable_heif", lambda: True)  # as if pillow-heif were there
    with pytest.raises(ImageLoadError, match="HEIC/AVIF photo that could not be decoded"):
        load_image(b"\x00\x00\x00\x18ftypheic" + bytes(100))


def test_avif_without_support(monkeypatch):
    monkeypatch.setattr(imagefile, "has_feature", lambda feature: False)
    with pytest.raises(ImageLoadError, match="AVIF"):
        load_image(b"\x00\x00\x00\x1cftypavif" + bytes(100))


# ---------------------------------------------------------------------------------------------
# Width x height from the header
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "width, height, pixels",
    [
        (100_000, 100_000, "10,000,000,000 pixels"),  # beyond Pillow's own bomb limit
        (9_000, 9_000, "81,000,000 pixels"),  # under Pillow's limit, over ours (64 MP)
    ],
)
def test_decompression_bomb_refused_from_the_header(width, height, pixels):
    data = fake_png(width, height)
    assert len(data) < 100  # a tiny file that claims a huge picture
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match="too large") as err:
            load_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert pixels in str(err.value) and "64,000,000" in str(err.value)
    # Decoding would need width * height * 3 bytes (243 MB for the smaller one); refusing from
    # the header stays far below. 10 MB leaves room for Pillow's and pytest's bookkeeping.
    assert peak < 10_000_000 < width * height * 3


def test_pillow_limit_is_named_when_max_pixels_allows_more():
    # 20,000 x 20,000 = 400 MP: within max_pixels=10**9 but over Pillow's own refusal limit
    # (2 x Image.MAX_IMAGE_PIXELS = 178,956,970), which therefore is the one to name.
    with pytest.raises(ImageLoadError, match="400,000,000 pixels, over Pillow's own limit"):
        load_image(fake_png(20_000, 20_000), max_pixels=10**9)


def test_max_pixels_keyword():
    with pytest.raises(ImageLoadError, match="max_pixels=100"):
        load_image(Image.new("RGB", (20, 20)), max_pixels=100)


@pytest.mark.parametrize(
    "source",
    [Image.new("RGB", (0, 10)), np.zeros((10, 0, 3), np.uint8)],
    ids=["pil", "array"],
)
def test_zero_sized(source):
    with pytest.raises(ImageLoadError, match="no pixels"):
        load_image(source)


def test_zero_width_png_header():
    with pytest.raises(ImageLoadError, match="PNG image.*corrupt"):
        load_image(fake_png(0, 10))


def test_extreme_aspect_ratio():
    with pytest.raises(ImageLoadError, match="aspect ratio of 21:1"):
        load_image(Image.new("RGB", (2100, 100)))
    assert load_image(Image.new("RGB", (1900, 100)), size=8).shape == (1, 3, 8, 8)  # 19:1 ok

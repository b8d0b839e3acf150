"""How a message names a file: any path a file system allows, printable everywhere.

A file name is bytes on Linux and macOS, and need not be valid UTF-8 (a name copied from an old
camera card, a zip made on another system). Python keeps such bytes in a ``str`` as lone
"surrogates" (``b"\\xff.png"`` becomes ``"\\udcff.png"``), which print() cannot encode: a
message that names the file would fail with "'utf-8' codec can't encode ...", even a message
that only says the file was skipped. Every message in this package names a path through
:func:`shown_path`, and says what a file is through :func:`file_kind` ("a text file, not a
checkpoint"), never calling a file of the user's a damaged one of ours.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Union


def shown_path(path: Union[str, bytes, os.PathLike]) -> str:
    """``path`` as a message shows it: the name as it is, with the bytes that are not UTF-8
    written as ``\\xff`` escapes, so the text encodes (and prints) as UTF-8 everywhere."""
    try:
        raw = os.fsencode(path)  # the bytes the file system holds (str: by surrogateescape)
    except UnicodeEncodeError:  # a str no file system produced (other lone surrogates)
        return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


# The first bytes of the files a user may give where a checkpoint or a picture is expected.
MAGIC = (
    (b"PK\x03\x04", "a zip archive"),  # torch.save's format, and every .zip
    (b"\x80", "a Python pickle"),  # protocol 2 and later begin with the PROTO opcode
    (b"\x89PNG", "a PNG picture"),
    (b"\xff\xd8\xff", "a JPEG picture"),
    (b"GIF8", "a GIF picture"),
    (b"%PDF", "a PDF document"),
)
SPECIAL_FILES = (  # (test of st_mode, what such a path is): reading one can block or never end
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a character device (like /dev/zero or a terminal)"),
    (stat.S_ISBLK, "a block device (a disk)"),
    (stat.S_ISSOCK, "a socket"),
)


def file_kind(path: Union[str, os.PathLike]) -> str:
    """What is at ``path``, in a few words for a message: "a folder", "a text file", "a zip
    archive", "a Python pickle", "an empty file", "nothing", ... (from its first bytes)."""
    if os.path.islink(path) and not os.path.exists(path):
        try:
            os.stat(path)
        except OSError as err:
            if err.errno == errno.ELOOP:
                return "a symbolic link that loops back on itself"
        return f"a symbolic link to {shown_path(os.readlink(path))}, which does not exist"
    if os.path.isdir(path):
        return "a folder"
    if not os.path.lexists(path):
        return "nothing"
    if not os.path.isfile(path):  # opening a pipe would wait for a writer
        return special_kind(os.stat(path).st_mode)
    try:
        with open(path, "rb") as f:
            return bytes_kind(f.read(4096))
    except OSError as err:
        return f"a file that cannot be read ({os.strerror(err.errno) if err.errno else err})"


def special_kind(mode: int) -> str:
    """What a path that is not a regular file is, from its ``st_mode``: "a named pipe (FIFO)",
    "a character device (like /dev/zero or a terminal)", ..."""
    return next((kind for is_kind, kind in SPECIAL_FILES if is_kind(mode)), "a special file")


def bytes_kind(head: bytes) -> str:
    """What a file is from its first bytes, in a few words: "a PDF document", "an HTML page",
    "an SVG drawing", "a text file", "an empty file", ... (its kind only, never its text)."""
    if not head:
        return "an empty file"
    kind = next((kind for magic, kind in MAGIC if head.startswith(magic)), None)
    start = head[:1024].lower()
    if kind is None and b"<svg" in start:
        kind = "an SVG drawing"
    if kind is None and (b"<html" in start or b"<!doctype html" in start):
        kind = "an HTML page"
    return kind or ("a text file" if is_text(head) else "a file of another kind")


def is_text(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) reads as UTF-8 text: no control
    characters but tabs and line ends, and at most a character cut at the end."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 3:
            return False
        text = head[: err.start].decode("utf-8")
    return all(c.isprintable() or c in "\t\n\r\f" for c in text)

"""How a message names a file: any path a file system allows, printable everywhere.

A file name is bytes on Linux and macOS, and need not be valid UTF-8 (a name copied from an old
camera card, a zip made on another system). Python keeps such bytes in a ``str`` as lone
"surrogates" (``b"\\xff.png"`` becomes ``"\\udcff.png"``), which print() cannot encode: a
message that names the file would fail with "'utf-8' codec can't encode ...", even a message
that only says the file was skipped. Every message in this package names a path through
:func:`shown_path`.
"""

from __future__ import annotations

import os
from typing import Union


def shown_path(path: Union[str, bytes, os.PathLike]) -> str:
    """``path`` as a message shows it: the name as it is, with the bytes that are not UTF-8
    written as ``\\xff`` escapes, so the text encodes (and prints) as UTF-8 everywhere."""
    try:
        raw = os.fsencode(path)  # the bytes the file system holds (str: by surrogateescape)
    except UnicodeEncodeError:  # a str no file system produced (other lone surrogates)
        return os.fspath(path).encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")

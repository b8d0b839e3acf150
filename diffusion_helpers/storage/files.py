"""Writing a file so that a failure cannot cost what was there: every file this package writes
(checkpoints, pictures, GIFs) goes through :func:`write_atomically`.

The bytes go to a temporary file in the same folder, named ``<name>.<pid>.<8 characters>.tmp``,
which then replaces the target in one ``os.replace``: a reader sees the old file or the new
one, never half of one, and a full disk leaves the old file (or none), never a 0-byte file. A
symlink at the target is replaced, never written through. The temporary files a killed writer
left (only those names, and only when their process is gone) are removed by the next write.

However the write fails (an ``OSError`` of any kind, or the ``RuntimeError`` that torch's zip
writer makes of a full disk), it ends in one :class:`WriteError` that names the file and why.
"""

from __future__ import annotations

import glob
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from ..checks.paths import shown_path


class WriteError(OSError):
    """A file could not be written (a full disk, a folder that went read-only or away); the
    message names the file, why, and what to do. ``reason`` is the why alone."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


# What torch's zip writer (caffe2's inline_container.cc) says when a write inside torch.save
# fails: it makes a RuntimeError of the OSError, e.g. "[enforce fail at inline_container.cc:595]
# . PytorchStreamWriter failed writing file data/0: file write failed" on a full disk.
TORCH_WRITER = ("inline_container", "PytorchStreamWriter")


def is_write_failure(err: BaseException) -> bool:
    """True for the ways writing a file fails: any ``OSError``, and torch's zip writer's
    ``RuntimeError`` (:data:`TORCH_WRITER`); other errors are bugs and pass through."""
    if isinstance(err, OSError):
        return True
    return isinstance(err, RuntimeError) and any(word in str(err) for word in TORCH_WRITER)


def write_failure(err: BaseException) -> str:
    """Why a write failed, in a few words: the system's text for an ``OSError``
    ("No space left on device"), the end of torch's message for its zip writer's
    ``RuntimeError`` ("file write failed (is the disk full?)")."""
    if isinstance(err, WriteError):
        return err.reason
    if isinstance(err, OSError) and err.errno:
        return os.strerror(err.errno)
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    text = lines[0] if lines else type(err).__name__
    if isinstance(err, RuntimeError):
        return f"{text.rsplit(': ', 1)[-1][:120]} (is the disk full?)"
    return text[:200]


def write_atomically(path: Path, write: Callable[[BinaryIO], None], what: str) -> Path:
    """Write ``path`` by calling ``write(f)`` on a temporary file beside it, then move it into
    place with ``os.replace``; return ``path``. ``what`` names the file in the error
    ("checkpoint", "picture"). Any failure removes the temporary file and raises
    :class:`WriteError`; an interrupt (Ctrl-C) does the same and is raised as it is."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        # The pid in the name tells a later write whether this writer is still alive.
        fd, tmp = tempfile.mkstemp(prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp",
                                   dir=path.parent)  # fmt: skip
        with os.fdopen(fd, "wb") as f:
            write(f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private (0600); use the usual mode
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers see old or new, never half
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if is_write_failure(err) and not isinstance(err, WriteError):
            reason = write_failure(err)
            raise WriteError(
                f"could not write the {what} {shown_path(path)}: {reason}. Free some space or "
                "choose another place.",
                reason,
            ) from err
        raise
    return path


def pid_alive(pid: int) -> bool:
    """True if a process with this id runs on this machine (``kill(pid, 0)`` probes it)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of writes into ``path`` that were killed: exactly the names
    :func:`write_atomically` makes (``<name>.<pid>.<8 characters>.tmp``) whose process is gone.
    A file of the user's that merely starts with the name (``unet.pt.notes.tmp``) is kept."""
    ours = re.compile(re.escape(path.name) + r"\.(\d+)\.[A-Za-z0-9_]{8}\.tmp")
    removed = []
    for tmp in path.parent.glob(f"{glob.escape(path.name)}.*.tmp"):
        match = ours.fullmatch(tmp.name)
        if match and not pid_alive(int(match.group(1))) and tmp.is_file() and not tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed

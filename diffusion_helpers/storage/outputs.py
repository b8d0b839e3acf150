"""Where files go: every output is checked before the work starts, and nothing that is not
ours is overwritten.

- :func:`.outputs.check_checkpoint_target`: a training checkpoint path must be writable and either
  absent or one of our checkpoints (which is then resumed).
- :func:`.outputs.check_export_target`: a sampling-only copy never replaces the training checkpoint,
  a folder, or a file that is not ours.
- :func:`check_output_folder`: a folder of pictures must be a folder we can write into.
- :func:`write_output`: every picture and GIF is written by one rule: a name that holds a file
  we did not write, or a symlink, is never written; the output goes to a fresh name beside it.
- :class:`CheckpointLock`: one training run at a time per checkpoint.
"""

from __future__ import annotations

import itertools
import json
import os
import stat
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Union

from filelock import FileLock, Timeout

from ..checks.paths import shown_path
from .checkpoint import CheckpointError, is_our_checkpoint, read_checkpoint
from .files import write_atomically

PathLike = Union[str, os.PathLike]


def check_output_folder(folder: PathLike, what: str = "pictures") -> Path:
    """Before the work: ``folder`` must be (or become) a folder we can write ``what`` into."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(
            f"the output folder {shown_path(folder)} is a file: give a folder name for the {what}."
        )
    check_writable_folder(folder, what)
    return folder


def check_writable_folder(folder: Path, what: str) -> None:
    """Make ``folder`` if needed and prove a file can be written there, before any work is done;
    ``ValueError`` (one line: what, where, why) otherwise."""
    folder = Path(folder)
    for parent in [folder, *folder.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(
                    f"cannot write the {what} under {shown_path(folder)}: {shown_path(parent)} "
                    "is a file."
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        reason = os.strerror(err.errno) if err.errno else str(err)
        raise ValueError(
            f"cannot write the {what} in {shown_path(folder)}: {reason.lower()}."
        ) from err


def check_checkpoint_target(path: PathLike) -> Path:
    """Before training: ``path`` must be writable, and either absent or one of our training
    checkpoints (which is then resumed). Anything else is refused, never overwritten."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(
            f"the checkpoint path {shown_path(path)} is a folder: give a file name like "
            f"{shown_path(path / 'unet.pt')}."
        )
    check_writable_folder(path.parent, "checkpoint")
    if path.exists() or path.is_symlink():
        if not path.is_file():
            raise ValueError(
                f"{shown_path(path)} exists and is not a regular file; choose another "
                "checkpoint path."
            )
        try:
            state = read_checkpoint(path)
        except CheckpointError as err:
            raise CheckpointError(
                f"{err} Refusing to overwrite {shown_path(path)}: choose another checkpoint "
                "path or move the file away."
            ) from err
        if "optimizer" not in state:
            raise CheckpointError(
                f"{shown_path(path)} is a sampling-only copy (made by --export): it cannot "
                "resume training, and it is not replaced. Train into another checkpoint path."
            )
    return path


def check_export_target(path: PathLike, checkpoint: Optional[PathLike]) -> Path:
    """Before training: the sampling-only copy may go to ``path`` only if it is not the training
    checkpoint itself, not a folder, writable, and absent or one of our checkpoints."""
    path = Path(path)
    if checkpoint is not None and path.resolve() == Path(checkpoint).resolve():
        raise ValueError(
            f"--export {shown_path(path)} is the training checkpoint itself: the sampling-only "
            "copy would replace it and training could no longer resume. Give the copy another "
            "name."
        )
    if path.is_dir():
        raise ValueError(
            f"--export {shown_path(path)} is a folder: give a file name like "
            f"{shown_path(path / 'unet_small.pt')}."
        )
    check_writable_folder(path.parent, "exported weights")
    if path.exists() and not is_our_checkpoint(path):
        raise ValueError(
            f"--export {shown_path(path)} exists and is not a diffusion_helpers checkpoint: "
            "refusing to overwrite it. Choose another file name."
        )
    return path


# Which files in a folder of pictures we wrote: their names with the size and modification time
# each had when written (see write_output).
MANIFEST = ".diffusion_helpers-outputs.json"


def write_output(path: PathLike, write: Callable[[BinaryIO], None], what: str = "picture") -> Path:
    """Write a picture or GIF by ``write(f)`` at ``path``, or at a fresh name beside it
    (``samples-2.png``, ``samples-3.png``, ...) when ``path`` holds a file we did not write
    or is a symlink; return the path written. Written atomically (:func:`.files.write_atomically`):
    a full disk is a :class:`.files.WriteError` and leaves no 0-byte file.

    A file we wrote is one the folder's manifest (:data:`MANIFEST`, a small JSON file) lists
    with the size and modification time it still has. Why a manifest and not a mark inside the
    PNG or GIF: a picture the learner opened and saved again, or replaced with their own, is
    theirs now, and most editors copy a PNG's text chunks, so a mark would still say it is
    ours; any such change alters the size or the time, and one rule then serves every format.
    """
    path = Path(path)
    written = write_atomically(free_name(path), write, what)
    remember(written)
    return written


def free_name(path: Path) -> Path:
    """``path`` if nothing is there or it holds a file we wrote, else the first such name of
    ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, ... beside it."""
    ours = written_here(path.parent)
    for k in itertools.count(1):
        candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not os.path.lexists(candidate) or is_ours(candidate, ours):
            return candidate
    raise AssertionError("unreachable")  # itertools.count never ends


def is_ours(path: Path, ours: dict) -> bool:
    """True when ``path`` is a regular file (not a symlink) that the manifest ``ours`` lists
    with the size and modification time it has now."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and ours.get(path.name) == [info.st_size, info.st_mtime_ns]


def written_here(folder: Path) -> dict:
    """The manifest of ``folder``: {name: [size, mtime_ns]} of the files we wrote there; empty
    when there is none, or it is a symlink or not ours to read."""
    manifest = folder / MANIFEST
    try:
        if manifest.is_symlink() or not manifest.is_file():
            return {}
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def remember(path: Path) -> None:
    """Add ``path`` (just written) to its folder's manifest, with its size and time now. A
    manifest name that holds something else (a symlink, a folder) is left alone."""
    manifest = path.parent / MANIFEST
    if manifest.is_symlink() or (manifest.exists() and not manifest.is_file()):
        return
    info = os.lstat(path)
    entries = {**written_here(path.parent), path.name: [info.st_size, info.st_mtime_ns]}
    text = json.dumps(entries, indent=1, sort_keys=True, ensure_ascii=True).encode("ascii")
    write_atomically(manifest, lambda f: f.write(text), "list of pictures written")


class CheckpointLock:
    """An OS-level lock on ``<checkpoint>.lock`` while a run trains into the checkpoint (the
    ``filelock`` package: ``flock`` on Linux and macOS, ``msvcrt`` on Windows). The kernel lets
    go of it when its process ends, however it ends, so a killed run never leaves a lock to take
    over. The file holds the owner's pid, for the message a second run gets. A file system that
    cannot lock (some network mounts) trains unlocked, with one line saying so."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(str(path) + ".lock")
        self.lock = FileLock(self.path, timeout=0)
        self.owned = False

    def __enter__(self) -> CheckpointLock:  # noqa: D105
        try:
            self.lock.acquire()
        except Timeout:
            raise CheckpointError(
                f"another training run{self._owner()} is writing to "
                f"{shown_path(self.path.with_suffix(''))}: "
                "wait for it to finish, stop it, or choose another checkpoint path."
            ) from None
        except OSError as err:  # no locks on this file system: train, but say so
            print(f"Note: cannot lock {shown_path(self.path)} "
                  f"({os.strerror(err.errno) if err.errno else err}); "
                  "make sure no other run trains into the same checkpoint.")  # fmt: skip
            return self
        self.owned = True
        try:
            self.path.write_text(f"{os.getpid()}\n")
        except OSError:  # the lock holds without the note
            pass
        return self

    def _owner(self) -> str:
        """ " (pid N)" from the lock file, or "" when it cannot be read."""
        try:
            return f" (pid {int(self.path.read_text().split()[0])})"
        except (OSError, ValueError, IndexError):
            return ""

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        if self.owned:
            self.lock.release()
            self.owned = False
            try:
                self.path.unlink(missing_ok=True)  # tidy; the lock itself was the kernel's
            except OSError:  # its folder is gone or read-only now: nothing left to tidy
                pass


def claim_checkpoint(path: Union[str, Path], stack: ExitStack) -> tuple[Path, bool]:
    """Check the checkpoint target, lock it for the run in ``stack``, and say whether it exists
    (then the run resumes from it)."""
    path = check_checkpoint_target(path)
    stack.enter_context(CheckpointLock(path))
    return path, path.exists()

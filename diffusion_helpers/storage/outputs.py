"""Where files go: every output is checked before the work starts, and nothing that is not
ours is overwritten.

- :func:`.outputs.check_checkpoint_target`: a training checkpoint path must be writable and either
  absent or one of our checkpoints (which is then resumed).
- :func:`.outputs.check_export_target`: a sampling-only copy never replaces the training checkpoint,
  a folder, or a file that is not ours.
- :func:`check_output_folder`: a folder of pictures must be a folder we can write into.
- :func:`write_output`: every picture, GIF and note is written by one rule: a name that holds
  anything we did not write (a file of the user's, a symlink, a folder) is never written; the
  output goes to a fresh name beside it.
- :func:`keep_previous_checkpoint`: a fresh run moves our checkpoint aside to a name where
  nothing is, never onto a file.
- :class:`CheckpointLock`: one training run at a time per checkpoint.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import BinaryIO, Callable, Optional, Union

from filelock import FileLock, Timeout

from ..checks.paths import file_kind, shown_path
from .checkpoint import LOAD_ADVICE, CheckpointError, is_our_checkpoint, read_checkpoint
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
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise ValueError(
                    f"cannot write the {what} under {shown_path(folder)}: {shown_path(parent)} "
                    f"is {'a file' if parent.is_file() else file_kind(parent)}."
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
                f"{shown_path(path)} is {file_kind(path)}, not a checkpoint file; choose another "
                "checkpoint path."
            )
        try:
            state = read_checkpoint(path)
        except CheckpointError as err:  # what the file is, then what to do here instead
            raise CheckpointError(
                f"{str(err).removesuffix(' ' + LOAD_ADVICE)} Refusing to overwrite it: choose "
                "another checkpoint path."
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


# Which files in a folder we wrote: {name: SHA-256 of the bytes we wrote} (see write_output).
MANIFEST = ".diffusion_helpers-outputs.json"


def write_output(path: PathLike, write: Callable[[BinaryIO], None], what: str = "picture") -> Path:
    """Write a picture, GIF or note by ``write(f)`` at ``path``, or at a fresh name beside it
    (``samples-2.png``, ``samples-3.png``, ...) when ``path`` holds anything we did not write (a
    file of the user's, a symlink, a folder); return the path written. Written atomically
    (:func:`.files.write_atomically`): a full disk is a :class:`.files.WriteError` and leaves no
    0-byte file.

    A file we wrote is one whose bytes the folder's manifest (:data:`MANIFEST`) lists under
    its name: the next run replaces it, while a file the learner edited or replaced is theirs.
    Why a record that outlives the process, and not "whatever this process wrote": a notebook
    run again, or the demo into the same folder, should replace its own pictures, not leave
    ``reverse-2.gif``, ``reverse-3.gif``, ... behind. Why the bytes and not the size and time: a
    synced folder (Google Drive) may give back another time for the same file.
    """
    path = Path(path)
    ours = written_here(path.parent)
    target = fresh_name(path, lambda p: p.name in ours and ours[p.name] == digest(p))
    written = write_atomically(target, write, what)
    manifest = path.parent / MANIFEST
    if not os.path.lexists(manifest) or (manifest.is_file() and not manifest.is_symlink()):
        ours = {**written_here(path.parent), written.name: digest(written)}
        text = json.dumps(ours, indent=1, sort_keys=True).encode("ascii")
        write_atomically(manifest, lambda f: f.write(text), "list of files written")
    return written


def fresh_name(path: Path, reusable: Callable[[Path], bool] = lambda p: False) -> Path:
    """The first of ``path``, ``<stem>-2<suffix>``, ``<stem>-3<suffix>``, ... where nothing is,
    or whose file ``reusable`` accepts."""
    for k in itertools.count(1):
        candidate = path if k == 1 else path.with_name(f"{path.stem}-{k}{path.suffix}")
        if not os.path.lexists(candidate) or reusable(candidate):
            return candidate
    raise AssertionError("unreachable")  # itertools.count never ends


def digest(path: Path) -> str:
    """The SHA-256 of the regular file at ``path``; "" for a symlink, a folder or nothing."""
    if path.is_symlink() or not path.is_file():
        return ""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def written_here(folder: Path) -> dict:
    """The manifest of ``folder``: {name: SHA-256} of the files we wrote there; empty when there
    is none, or it is a symlink or cannot be read."""
    manifest = folder / MANIFEST
    try:
        if manifest.is_symlink():
            return {}
        entries = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def keep_previous_checkpoint(path: PathLike) -> Path:
    """Move our checkpoint at ``path`` aside for a run that starts afresh, to the first free
    name of ``unet.previous.pt``, ``unet.previous-2.pt``, ... (nothing there is replaced, so
    every earlier run's checkpoint stays); return where it went. A file that is not one of our
    checkpoints is refused (:func:`check_checkpoint_target`), and so is a checkpoint another
    run is training into (:class:`CheckpointLock`)."""
    path = check_checkpoint_target(path)
    with CheckpointLock(path):
        previous = fresh_name(path.with_name(f"{path.stem}.previous{path.suffix}"))
        os.replace(path, previous)  # a rename: atomic, and a symlink moves as a link
    return previous


class CheckpointLock:
    """An OS-level lock on ``<checkpoint>.lock`` while a run trains into the checkpoint (the
    ``filelock`` package: ``flock`` on Linux and macOS, ``msvcrt`` on Windows). The kernel lets
    go of it when its process ends, however it ends, so a killed run never leaves a lock to take
    over. The file holds the owner's pid, for the message a second run gets; a file of the
    user's that has the lock's name is locked but neither written nor removed. A file system
    that cannot lock (some network mounts) trains unlocked, with one line saying so."""

    def __init__(self, path: PathLike) -> None:
        self.path = Path(str(path) + ".lock")
        self.lock = FileLock(self.path, timeout=0)
        self.owned = False
        self.ours = False  # whether the lock file is ours to write the pid into and remove

    def __enter__(self) -> CheckpointLock:  # noqa: D105
        self.ours = not os.path.lexists(self.path) or self._owner() != ""
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
        try:  # in place, not atomically: the lock is on this very file (filelock opens no link)
            if self.ours:
                self.path.write_text(f"{os.getpid()}\n")
        except OSError:  # the lock holds without the note
            pass
        return self

    def _owner(self) -> str:
        """ " (pid N)" from a lock file that holds only a pid, else ""."""
        try:
            note = self.path.read_text()
        except (OSError, ValueError):
            return ""
        return f" (pid {note.strip()})" if re.fullmatch(r"\d+\n?", note) else ""

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        if self.owned:
            self.lock.release()
            self.owned = False
            if not self.ours:
                return
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

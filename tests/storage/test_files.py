"""Atomic writes (files.py): a failed write keeps what was there, names the file and why."""

import os

import pytest

from diffusion_helpers.storage.files import (
    WriteError,
    remove_stale_temporaries,
    write_atomically,
    write_failure,
)

# What torch's zip writer raises inside torch.save when the disk fills up.
TORCH_FULL_DISK = (
    "[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)


def test_killed_writes_leave_temporaries_the_next_write_removes(tmp_path):
    """Only the names a write makes (<name>.<pid>.<8 characters>.tmp) of a dead process go; a
    user's file that merely starts with the target's name stays."""
    path = tmp_path / "unet.pt"
    dead = tmp_path / "unet.pt.999999999.abcd1234.tmp"  # a pid that cannot exist
    mine = tmp_path / f"unet.pt.{os.getpid()}.live1234.tmp"  # a write in progress here
    users = [tmp_path / "unet.pt.notes.tmp", tmp_path / "unet.pt.k3j4h5.tmp",
             tmp_path / "unet.pt.999999999.my notes.tmp"]  # fmt: skip
    for f in (dead, mine, *users):
        f.write_bytes(b"partial")
    write_atomically(path, lambda f: f.write(b"new"), "checkpoint")
    assert not dead.exists() and mine.exists() and all(f.exists() for f in users)
    assert remove_stale_temporaries(path) == []


@pytest.mark.parametrize(
    "failure, words",
    [
        (OSError(28, "No space left on device"), "No space left on device"),
        (OSError(5, "Input/output error"), "Input/output error"),
        (RuntimeError(TORCH_FULL_DISK), "file write failed (is the disk full?)"),
    ],
)
def test_every_way_a_write_fails_is_one_write_error_and_the_old_file_stays(
    tmp_path, failure, words
):
    path = tmp_path / "samples.png"
    path.write_bytes(b"the old picture")

    def write(f):
        f.write(b"half a pict")
        raise failure

    with pytest.raises(WriteError, match="could not write the picture") as info:
        write_atomically(path, write, "picture")
    message = str(info.value)
    assert words in message and str(path) in message and len(message.splitlines()) == 1
    assert info.value.reason == write_failure(failure)
    assert path.read_bytes() == b"the old picture"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.png"]  # no temporary left


def raises(error):
    """A stand-in that raises ``error`` whatever it is called with."""

    def stand_in(*args, **kwargs):
        raise error

    return stand_in


def test_a_failing_replace_is_a_write_error_and_a_bug_passes_through(tmp_path, monkeypatch):
    """os.replace failing (a folder gone read-only) is a WriteError; an error that is not a
    write's (a bug in the writer) passes through as it is. Either way no temporary file stays."""
    monkeypatch.setattr(os, "replace", raises(PermissionError(13, "Permission denied")))
    with pytest.raises(WriteError, match="Permission denied"):
        write_atomically(tmp_path / "a.gif", lambda f: f.write(b"GIF89a"), "GIF")
    monkeypatch.undo()
    with pytest.raises(RuntimeError, match="a bug"):
        write_atomically(tmp_path / "b.gif", raises(RuntimeError("a bug")), "GIF")
    assert list(tmp_path.iterdir()) == []

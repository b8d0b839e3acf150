"""Outputs checked before the work (outputs.py): nothing that is not ours is overwritten."""

import os
import pickle
import subprocess
import sys
import warnings

import pytest
from tiny import FAST, SCHEDULE, images, tiny_model

from diffusion_helpers.storage.checkpoint import (
    CheckpointError,
    export_weights,
    read_checkpoint,
    save_checkpoint,
)
from diffusion_helpers.storage.files import WriteError
from diffusion_helpers.storage.outputs import (
    MANIFEST,
    CheckpointLock,
    check_checkpoint_target,
    check_export_target,
    check_output_folder,
    keep_previous_checkpoint,
    write_output,
)
from diffusion_helpers.training import train

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("out") / "unet.pt"
    train(tiny_model(), images(1), SCHEDULE, steps=1, batch_size=2, checkpoint=path, **FAST)
    return path


def test_a_photo_at_the_checkpoint_path_is_refused_and_kept(tmp_path):
    photo = tmp_path / "holiday.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 my photo")
    with pytest.raises(CheckpointError, match="Refusing to overwrite"):
        train(tiny_model(), images(1), SCHEDULE, steps=1, checkpoint=photo, **FAST)
    assert photo.read_bytes() == b"\xff\xd8\xff\xe0 my photo"


def test_checkpoint_paths_that_cannot_work_fail_before_training(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_checkpoint_target(a_file / "unet.pt")
    with pytest.raises(ValueError, match="is a folder"):
        check_checkpoint_target(tmp_path)
    assert check_checkpoint_target(tmp_path / "new" / "unet.pt").parent.is_dir()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only folder")
def test_unwritable_folder_fails_before_training(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ValueError, match="cannot write the checkpoint"):
        check_checkpoint_target(locked / "unet.pt")


def test_unwritable_place_fails_before_training_even_as_root():
    """/proc refuses new files to everyone, root included (the read-only-folder test above is
    skipped for root, who may write anywhere else)."""
    with pytest.raises(ValueError, match="cannot write the checkpoint in /proc"):
        check_checkpoint_target("/proc/unet.pt")


def test_export_targets(checkpoint, tmp_path):
    with pytest.raises(ValueError, match="is the training checkpoint itself"):
        check_export_target(checkpoint, checkpoint)
    with pytest.raises(ValueError, match="is a folder"):
        check_export_target(tmp_path, checkpoint)
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n...")
    with pytest.raises(ValueError, match="not a diffusion_helpers checkpoint"):
        check_export_target(photo, checkpoint)
    ours = export_weights(checkpoint, tmp_path / "small.pt")
    assert check_export_target(ours, checkpoint) == ours  # our own export may be replaced


def test_output_folder(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        check_output_folder(tmp_path / "f")
    assert check_output_folder(tmp_path / "new" / "pictures").is_dir()


def test_second_run_on_one_checkpoint_is_refused(tmp_path):
    path = tmp_path / "unet.pt"
    with CheckpointLock(path):
        with pytest.raises(CheckpointError, match=rf"another training run \(pid {os.getpid()}\)"):
            with CheckpointLock(path):
                pass
    assert not (tmp_path / "unet.pt.lock").exists()


HOLD = """
import sys, time
from diffusion_helpers.storage.outputs import CheckpointLock
with CheckpointLock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_lock_is_the_kernel_s_held_while_its_process_lives(tmp_path):
    """Another process holding the lock is respected (its pid named); once it is killed, with
    no chance to clean up, the kernel has let go and the next run trains. A lock file left on
    disk without a lock behind it (a killed run's) stops nobody."""
    path = tmp_path / "unet.pt"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE,
                              text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(CheckpointError, match=f"pid {holder.pid}"):
            train(tiny_model(), images(1), SCHEDULE, steps=1, checkpoint=path, **FAST)
    finally:
        holder.kill()
        holder.wait()
    assert (tmp_path / "unet.pt.lock").exists()  # killed: the file stays, the lock does not
    train(tiny_model(), images(1), SCHEDULE, steps=1, batch_size=2, checkpoint=path, **FAST)
    assert path.exists() and not (tmp_path / "unet.pt.lock").exists()


def write_text(text):
    """A writer for write_output: the bytes of ``text``."""
    return lambda f: f.write(text.encode())


def test_a_picture_never_replaces_a_file_that_is_not_ours(tmp_path):
    """The user's samples.png stays; ours goes beside it, and the next run replaces ours."""
    mine = tmp_path / "samples.png"
    mine.write_bytes(b"the user's own picture")
    first = write_output(mine, write_text("ours 1"))
    assert first == tmp_path / "samples-2.png" and first.read_text() == "ours 1"
    assert write_output(mine, write_text("ours 2")) == first and first.read_text() == "ours 2"
    assert mine.read_bytes() == b"the user's own picture"
    first.write_text("edited by the user")  # now theirs: kept too
    assert write_output(mine, write_text("ours 3")) == tmp_path / "samples-3.png"
    assert first.read_text() == "edited by the user"
    fresh = write_output(tmp_path / "new.png", write_text("x"))  # a free name is used as it is
    assert fresh == tmp_path / "new.png"


def test_a_symlink_is_never_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("a file elsewhere")
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "reverse.gif").symlink_to(outside)
    written = write_output(folder / "reverse.gif", write_text("GIF89a"), "GIF")
    assert written == folder / "reverse-2.gif" and written.read_text() == "GIF89a"
    assert outside.read_text() == "a file elsewhere" and (folder / "reverse.gif").is_symlink()


def test_a_full_disk_while_writing_a_picture_leaves_nothing(tmp_path):
    def full(f):
        f.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    with pytest.raises(WriteError) as info:
        write_output(tmp_path / "samples.png", full)
    assert str(info.value) == (
        f"could not write the picture {tmp_path / 'samples.png'}: No space left on device. "
        "Free some space or choose another place."
    )
    assert list(tmp_path.iterdir()) == []  # no 0-byte picture, no temporary, no manifest


def test_a_picture_stays_ours_when_its_time_changes(tmp_path):
    """A synced folder (Google Drive) may give back another modification time for the same
    bytes: the file is still ours and the next run replaces it, with no samples-2.png."""
    first = write_output(tmp_path / "samples.png", write_text("ours 1"))
    os.utime(first, (1_000_000_000, 1_000_000_000))
    assert write_output(tmp_path / "samples.png", write_text("ours 2")) == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != MANIFEST) == ["samples.png"]


def small_checkpoint(path, step):
    """One of our checkpoints of a training run, at ``path``."""
    return save_checkpoint(path, {"model_config": {}, "model": {}, "step": step, "optimizer": {}})


def test_a_rotated_checkpoint_never_replaces_anything(tmp_path):
    """A fresh run moves our checkpoint aside to a free name: a user's unet.previous.pt stays,
    and an earlier run's copy is never dropped (a third run used to replace the first's)."""
    users = tmp_path / "unet.previous.pt"
    users.write_text("the user's own notes")
    path = tmp_path / "unet.pt"
    kept = []
    for step in (1, 2, 3):
        small_checkpoint(path, step)
        kept.append(keep_previous_checkpoint(path))
        assert not path.exists()
    assert [p.name for p in kept] == ["unet.previous-2.pt", "unet.previous-3.pt",
                                      "unet.previous-4.pt"]  # fmt: skip
    assert [read_checkpoint(p)["step"] for p in kept] == [1, 2, 3]
    assert users.read_text() == "the user's own notes"
    # a symlink at the free name is left as it is, and so is the file it leads to
    (tmp_path / "digits.previous.pt").symlink_to(users)
    small_checkpoint(tmp_path / "digits.pt", 9)
    assert keep_previous_checkpoint(tmp_path / "digits.pt").name == "digits.previous-2.pt"
    assert (tmp_path / "digits.previous.pt").is_symlink()
    assert users.read_text() == "the user's own notes"
    # only one of our checkpoints is moved
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="a text file"):
        keep_previous_checkpoint(path)
    assert path.read_text() == "not a checkpoint"


def test_a_file_that_is_not_a_checkpoint_is_named_and_never_to_be_deleted(tmp_path):
    """train --out notes.txt, sample --checkpoint notes.txt: the message says what the file
    is and to use another path, in one line, never to delete it; torch's warnings stay out."""
    notes = tmp_path / "notes.txt"
    notes.write_text("Shopping list: eggs, milk\n")
    pickled = tmp_path / "list.pt"
    pickled.write_bytes(pickle.dumps([1, 2, 3], protocol=4))
    for path, kind in ((notes, "a text file"), (pickled, "a Python pickle")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # torch's "Detected pickle protocol 4" among them
            for check in (read_checkpoint, check_checkpoint_target):
                with pytest.raises(CheckpointError) as info:
                    check(path)
                message = str(info.value)
                assert kind in message and "another" in message, message
                assert "elete" not in message and len(message.splitlines()) == 1, message
    assert notes.read_text() == "Shopping list: eggs, milk\n"
    with pytest.raises(CheckpointError, match="Refusing to overwrite"):
        check_checkpoint_target(notes)
    with pytest.raises(CheckpointError, match=r"is a folder, not a checkpoint file"):
        read_checkpoint(tmp_path)  # sample --checkpoint <folder>


def test_a_truncated_checkpoint_is_named_in_whole_sentences(tmp_path):
    whole = small_checkpoint(tmp_path / "unet.pt", 1).read_bytes()
    for cut in (len(whole) // 2, 40):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(whole[:cut])
        with pytest.raises(CheckpointError, match="not a readable checkpoint") as info:
            read_checkpoint(path)
        message = str(info.value)
        assert message.endswith(".") and "cut short" in message and "elete" not in message
        assert "likelihood that your checkpoint file is." not in message, message


def test_a_symlink_loop_as_the_output_folder_is_named(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    for folder in (loop, loop / "ddpm"):
        with pytest.raises(ValueError, match="symbolic link that loops back") as info:
            check_output_folder(folder)
        assert "file exists" not in str(info.value).lower()
    (tmp_path / "gone").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="which does not exist"):
        check_output_folder(tmp_path / "gone")


def test_a_user_s_file_named_like_the_lock_is_kept(tmp_path):
    notes = tmp_path / "unet.pt.lock"
    notes.write_text("my notes about the lock")
    with CheckpointLock(tmp_path / "unet.pt"):
        assert notes.read_text() == "my notes about the lock"
    assert notes.read_text() == "my notes about the lock"

"""Checkpoints (checkpoint.py): round trip, safe loading, bad files, exports, leftovers."""

import os
import pickle

import pytest
import torch
from tiny import FAST, SCHEDULE, flat, images, tiny_model

from diffusion_helpers.sampling import load_for_sampling
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.storage.checkpoint import (
    CheckpointError,
    export_weights,
    read_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    save_or_rescue,
)
from diffusion_helpers.train import train
from diffusion_helpers.unet import load_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest.py


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint of 3 steps, and the result that wrote it."""
    path = tmp_path_factory.mktemp("ckpt") / "unet.pt"
    result = train(
        tiny_model(), images(1), SCHEDULE, steps=3, batch_size=2, seed=0, checkpoint=path, **FAST
    )
    return path, result


def test_checkpoint_round_trip(trained):
    path, result = trained
    loaded, info = load_checkpoint(path)
    assert info["step"] == 3 and info["losses"] == result.losses
    assert info["model_config"] == result.model.config.to_dict()
    assert info["schedule_config"] == SCHEDULE.config()
    assert torch.equal(flat(loaded), flat(result.model))  # EMA weights by default
    raw, _ = load_checkpoint(path, weights="raw")
    assert torch.equal(flat(raw), flat(result.raw_model))
    ready, _, _ = load_for_sampling(path, device="cpu")
    assert not ready.training and torch.equal(flat(ready), flat(result.model))


def test_mismatched_config_names_the_key(trained, tmp_path):
    path, _ = trained
    other = tiny_model(base_channels=16)
    with pytest.raises(CheckpointError, match="base_channels is 8 in the checkpoint but 16"):
        load_checkpoint(path, model=other)
    copy = tmp_path / "copy.pt"
    copy.write_bytes(path.read_bytes())
    with pytest.raises(CheckpointError, match="base_channels is 8 in the checkpoint but 16"):
        train(other, images(1), SCHEDULE, steps=4, batch_size=2, checkpoint=copy, **FAST)
    with pytest.raises(CheckpointError, match="num_steps is 1000 in the checkpoint but 500"):
        train(tiny_model(), images(1), NoiseSchedule(500), steps=4, checkpoint=copy, **FAST)


def test_old_checkpoints_without_num_classes_still_load(trained, tmp_path):
    """Checkpoints written before conditioning existed lack num_classes: it means None."""
    path, _ = trained
    state = read_checkpoint(path)
    del state["model_config"]["num_classes"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    model, _ = load_checkpoint(old)
    assert model.config.num_classes is None
    load_checkpoint(old, model=tiny_model())  # and the configs compare equal


@pytest.mark.parametrize(
    "content, words",
    [
        (b"", "empty"),
        (b"this is not a checkpoint at all", "not a readable checkpoint"),
        ("half", "not a readable checkpoint"),
        ("foreign", "not a diffusion_helpers checkpoint"),
        ("pickle", "not written by diffusion_helpers"),
        ("missing", "no checkpoint file"),
    ],
)
def test_bad_files_raise_checkpoint_error(trained, tmp_path, content, words):
    good, _ = trained
    path = tmp_path / "bad.pt"
    if content == "half":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif content == "foreign":
        torch.save({"weights": torch.zeros(2)}, path)
    elif content == "pickle":  # an object torch's safe loader refuses to build
        path.write_bytes(
            pickle.dumps({"format": "x", "obj": os.stat_result((0,) * 10)}, protocol=2)
        )
    elif content != "missing":
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=words) as info:
        load_checkpoint(path)
    assert "weights_only=False" not in str(info.value)  # never advise running the file's code


def test_crafted_schedule_config_is_a_checkpoint_error(trained, tmp_path):
    path, _ = trained
    state = read_checkpoint(path)
    state["schedule_config"] = {"num_steps": 1000, "evil": 1}
    crafted = tmp_path / "crafted.pt"
    torch.save(state, crafted)
    with pytest.raises(CheckpointError, match="schedule config .* is not valid"):
        load_for_sampling(crafted, device="cpu")
    state["model_config"]["image_channels"] = 7
    torch.save(state, crafted)
    with pytest.raises(CheckpointError, match="model config .* is not valid"):
        load_checkpoint(crafted)


def test_export_is_small_samples_the_same_and_cannot_resume(trained, tmp_path):
    path, result = trained
    small = export_weights(path, tmp_path / "small.pt")
    model, schedule, state = load_for_sampling(small, device="cpu")
    torch.testing.assert_close(flat(model), flat(result.model), atol=1e-3, rtol=1e-3)  # fp16
    assert schedule.config() == SCHEDULE.config() and state["step"] == 3
    with pytest.raises(CheckpointError, match="sampling-only copy"):
        train(tiny_model(), images(1), SCHEDULE, steps=5, checkpoint=small, **FAST)


def test_killed_saves_leave_temporaries_the_next_save_removes(tmp_path):
    """Only the names a save makes (<name>.<pid>.<8 characters>.tmp) of a dead process go; a
    user's file that merely starts with the checkpoint's name stays."""
    path = tmp_path / "unet.pt"
    dead = tmp_path / "unet.pt.999999999.abcd1234.tmp"  # a pid that cannot exist
    mine = tmp_path / f"unet.pt.{os.getpid()}.live1234.tmp"  # a save in progress here
    users = [tmp_path / "unet.pt.notes.tmp", tmp_path / "unet.pt.k3j4h5.tmp",
             tmp_path / "unet.pt.999999999.my notes.tmp"]  # fmt: skip
    for f in (dead, mine, *users):
        f.write_bytes(b"partial")
    save_checkpoint(path, {"model_config": {}, "model": {}, "step": 0})
    assert not dead.exists() and mine.exists() and all(f.exists() for f in users)
    assert remove_stale_temporaries(path) == []


def test_a_folder_that_refuses_the_save_sends_it_to_the_rescue_path(tmp_path, monkeypatch):
    state = {"model_config": {}, "model": {}, "step": 1}
    blocked = tmp_path / "not_a_folder"
    blocked.write_text("a file where the folder should be")
    where, reason = save_or_rescue(blocked / "unet.pt", state)
    try:
        assert where != blocked / "unet.pt" and reason
        assert read_checkpoint(where)["step"] == 1
    finally:
        where.unlink()

"""Checkpoints (checkpoint.py): round trip, safe loading, bad files, exports, leftovers."""

import os
import pickle
import struct
import tempfile

import pytest
import torch
from tiny import FAST, SCHEDULE, flat, images, tiny_model

from diffusion_helpers.sampling import load_for_sampling
from diffusion_helpers.schedule import NoiseSchedule
from diffusion_helpers.storage.checkpoint import (
    CheckpointError,
    check_config,
    export_weights,
    load_checkpoint,
    read_checkpoint,
    rescue_path,
    save_checkpoint,
    save_or_rescue,
)
from diffusion_helpers.storage.files import WriteError
from diffusion_helpers.training import train

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


# What torch's zip writer raises inside torch.save when the disk fills up.
TORCH_FULL_DISK = (
    "[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
    "data/0: file write failed"
)
STATE = {"model_config": {}, "model": {"w": torch.ones(4)}, "step": 1}


def failing_saves(monkeypatch, failures):
    """Make torch.save raise the given errors, one per call (None: save as usual)."""
    real, left = torch.save, list(failures)

    def save(obj, f, *args, **kwargs):
        failure = left.pop(0) if left else None
        if failure is not None:
            f.write(b"half a checkpoint")
            raise failure
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


@pytest.mark.parametrize(
    "failure, reason",
    [
        (RuntimeError(TORCH_FULL_DISK), "file write failed (is the disk full?)"),
        (OSError(5, "Input/output error"), "Input/output error"),  # any errno, said plainly
    ],
)
def test_every_failed_save_goes_to_the_rescue_path(tmp_path, monkeypatch, failure, reason):
    """A full disk inside torch.save is torch's RuntimeError, not an OSError: it is rescued too."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    failing_saves(monkeypatch, [failure])
    path = tmp_path / "out" / "unet.pt"
    where, why = save_or_rescue(path, STATE)
    assert where == rescue_path(path) and where.parent == tmp_path / "tmp" and why == reason
    assert read_checkpoint(where)["step"] == 1
    assert list((tmp_path / "out").iterdir()) == []  # no half-written file, no temporary


def test_when_the_rescue_fails_too_one_line_names_both_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    failing_saves(monkeypatch, [RuntimeError(TORCH_FULL_DISK), OSError(28, "No space")])
    path = tmp_path / "unet.pt"
    with pytest.raises(WriteError) as info:
        save_or_rescue(path, STATE)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert f"to {path} (file write failed (is the disk full?))" in message
    assert f"nor to {rescue_path(path)} (No space left on device)" in message


def test_a_flipped_bit_is_a_damaged_checkpoint(tmp_path):
    """torch.load does not check the zip's CRCs: a weight of 1.0 that became 3.4e38 (the bits
    of its exponent flipped) would load and sample silently."""
    path = save_checkpoint(tmp_path / "unet.pt", {**STATE, "model": {"w": torch.ones(64)}})
    data = bytearray(path.read_bytes())
    at = data.find(struct.pack("<f", 1.0) * 64)
    data[at : at + 4] = struct.pack("<f", 3.4e38)
    path.write_bytes(bytes(data))
    assert torch.load(path, weights_only=True)["model"]["w"][0] == torch.tensor(3.4e38)
    with pytest.raises(CheckpointError, match="is damaged: the bytes of .* do not match") as info:
        read_checkpoint(path)
    assert "train afresh" in str(info.value)


def test_nan_weights_are_a_damaged_checkpoint_not_a_diverged_run(trained, tmp_path):
    good, _ = trained
    state = read_checkpoint(good)
    first = next(iter(state["ema"]))
    state["ema"][first] = torch.full_like(state["ema"][first], float("nan"))
    bad = tmp_path / "nan.pt"
    torch.save(state, bad)
    with pytest.raises(CheckpointError, match=rf"damaged: ema\.{first} holds NaN or infinite"):
        load_checkpoint(bad)
    with pytest.raises(CheckpointError, match="damaged") as info:  # a resume from it
        train(tiny_model(), images(1), SCHEDULE, steps=4, batch_size=2, checkpoint=bad, **FAST)
    assert "diverged" not in str(info.value)


def test_a_size_change_is_named_by_the_size_not_a_derived_key(tmp_path):
    stored = {"attention_resolutions": (8,), "base_channels": 8, "image_size": 16}
    given = {"attention_resolutions": (16,), "base_channels": 8, "image_size": 32}
    with pytest.raises(CheckpointError) as info:
        check_config(stored, given, "model", tmp_path / "unet.pt")
    message = str(info.value)
    assert "image_size is 16 in the checkpoint but 32 here" in message
    assert "(also different: attention_resolutions)" in message


def test_messages_name_a_path_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"\xff.pt")
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(tmp_path / name)
    message = str(info.value)
    assert "\\xff.pt" in message and message.encode("utf-8")  # printable everywhere


@pytest.mark.parametrize("version", [999, "two", None])
def test_a_version_we_do_not_know_is_refused_naming_it(trained, tmp_path, version):
    path, _ = trained
    state = read_checkpoint(path)
    state["version"] = version
    other = tmp_path / "other.pt"
    torch.save(state, other)
    with pytest.raises(CheckpointError, match=f"version {version!r}, which this package"):
        load_for_sampling(other, device="cpu")


@pytest.mark.parametrize(
    "where, change, words",
    [
        ("schedule_config", {"num_steps": 10**9}, "num_steps must be a whole number from 1"),
        ("model_config", {"base_channels": 160000}, "base_channels must be a whole number"),
        ("model_config", {"channel_mults": [1, 2, 400]}, "1,047 M parameters"),
        ("model_config", {"image_size": "16"}, "image_size must be a whole number"),
        ("model_config", {"num_classes": 10**9}, "num_classes must be a whole number"),
    ],
)
def test_a_hostile_stored_config_is_refused_before_anything_is_allocated(
    trained, tmp_path, where, change, words
):
    """A config read from a file is bounded by the checks of a config made in code: 10^9
    schedule steps (8 GB) or 160,000 base channels (409 GB) are one line, not a crash."""
    path, _ = trained
    state = read_checkpoint(path)
    state[where] = {**state[where], **change}
    crafted = tmp_path / "crafted.pt"
    torch.save(state, crafted)
    with pytest.raises(CheckpointError, match=words) as info:
        load_for_sampling(crafted, device="cpu")
    assert len(str(info.value).splitlines()) == 1

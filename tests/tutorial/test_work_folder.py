"""What the notebooks share: settings per machine, the learner's picture, the model to sample."""

import importlib
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

import diffusion_helpers as dh
from diffusion_helpers.tutorial.derivations import noise_prediction_examples
from diffusion_helpers.tutorial.work_folder import choose_my_image, my_image_name


def test_my_image_falls_back_to_the_sample_then_uses_the_saved_one(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    sample = dh.my_image(16)
    assert "sample" in capsys.readouterr().out
    torch.testing.assert_close(sample, dh.load_image(dh.sample_image_path(), size=16))
    mine = torch.full((1, 3, 64, 64), -1.0)
    mine[..., :32] = 1.0  # left half white, right half black
    path = dh.save_my_image(mine)
    assert path == tmp_path / "my_image.png"
    loaded = dh.my_image(16)
    assert "notebook 01" in capsys.readouterr().out
    assert loaded[..., :7].min() > 0.95 and loaded[..., 9:].max() < -0.95


def test_load_tutorial_model_prefers_the_learners_checkpoint(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    model, schedule, x0 = dh.load_tutorial_model("cpu")
    assert "shipped with the package, trained on the sample picture" in capsys.readouterr().out
    assert x0.shape[-1] == model.config.image_size and schedule.num_steps == 1000
    assert not model.training
    # Once notebook 03 has saved a checkpoint, that one is used.
    small = dh.UNet.preset("tiny", image_size=16)
    dh.train(
        small,
        torch.zeros(1, 3, 16, 16),
        dh.NoiseSchedule(50),
        steps=2,
        checkpoint=dh.checkpoint_path(),
        progress=False,
        seed=0,
    )
    model, schedule, x0 = dh.load_tutorial_model("cpu")
    out = capsys.readouterr().out
    assert "Using the model notebook 03 trained" in out and "another picture" in out
    assert model.config.image_size == 16 and schedule.num_steps == 50 and x0.shape[-1] == 16
    assert torch.equal(x0, torch.zeros(1, 3, 16, 16))  # compared with what it learned


def test_shipped_model_denoises_the_sample_picture():
    """The pretrained weights are real: from x_t at t = 300 (abar = 0.39, picture and noise
    about equal) the predicted x_0 is far closer to the sample than x_t is."""
    model, schedule, x0 = dh.load_tutorial_model("cpu")
    x_t, eps, predicted, t = noise_prediction_examples(model, x0, schedule, [300], seed=0)
    x0_hat = dh.predict_x0(x_t, t, predicted, schedule)
    assert dh.psnr(x0_hat.clamp(-1, 1), x0) > dh.psnr(x_t.clamp(-1, 1), x0) + 10
    assert float(((predicted - eps) ** 2).mean()) < 0.05  # an untrained net scores ~1


def test_a_fresh_run_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    from diffusion_helpers.storage.checkpoint import save_checkpoint

    first = dh.checkpoint_path()
    save_checkpoint(first, {"model_config": {}, "model": {}, "step": 7, "optimizer": {}})
    earlier = first.read_bytes()
    path = dh.fresh_checkpoint_path()
    assert path == first and not path.exists()
    assert (tmp_path / "unet.previous.pt").read_bytes() == earlier
    # a file that is not one of our checkpoints is neither moved nor replaced
    first.write_bytes(b"somebody's file")
    with pytest.raises(ValueError, match="Refusing to overwrite"):
        dh.fresh_checkpoint_path()
    assert first.read_bytes() == b"somebody's file"
    assert (tmp_path / "unet.previous.pt").read_bytes() == earlier
    # another name (notebook 05's digits model) keeps its own previous copy
    digits = tmp_path / "digits.pt"
    save_checkpoint(digits, {"model_config": {}, "model": {}, "step": 3, "optimizer": {}})
    before = digits.read_bytes()
    assert dh.fresh_checkpoint_path("digits.pt") == digits and not digits.exists()
    assert (tmp_path / "digits.previous.pt").read_bytes() == before
    assert (tmp_path / "unet.previous.pt").read_bytes() == earlier


STANDIN = Path(__file__).resolve().parents[1] / "colab"


@pytest.fixture
def in_colab(monkeypatch, tmp_path):
    """This process as a Colab runtime: the stand-in google.colab imported, the working folder
    a fresh /content, no work folder chosen yet."""
    monkeypatch.syspath_prepend(str(STANDIN))
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab.files", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab.drive", raising=False)
    importlib.import_module("google.colab")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIFFUSION_WORKDIR", raising=False)
    yield tmp_path
    for name in ("google.colab", "google.colab.files", "google.colab.drive"):
        sys.modules.pop(name, None)


def test_in_colab_start_keeps_the_work_folder_on_drive(in_colab, monkeypatch, capsys):
    drive = in_colab / "shared"
    drive.mkdir()
    monkeypatch.setenv("COLAB_STANDIN_DRIVE", str(drive))
    dh.start(keep_on_drive=True, device="cpu")
    out = capsys.readouterr().out
    assert "on your Google Drive" in out
    assert dh.work_dir().resolve() == (drive / "ddpm-on-your-picture").resolve()


def test_in_colab_without_drive_a_notebook_asks_for_the_picture(in_colab, monkeypatch, capsys):
    """Drive declined: the work folder is this runtime's, and a notebook that finds no picture
    opens the file dialog; what the learner chooses is kept for the next cells."""
    photo = in_colab / "cat.jpg"
    Image.new("RGB", (400, 300), (10, 200, 30)).save(photo)
    monkeypatch.setenv("COLAB_STANDIN_UPLOAD", str(photo))
    monkeypatch.delenv("COLAB_STANDIN_DRIVE", raising=False)
    dh.start(keep_on_drive=True, device="cpu")
    assert "Google Drive was not mounted" in capsys.readouterr().out
    picture = dh.my_image(16)
    out = capsys.readouterr().out
    assert "choose yours in the dialog below" in out
    assert "Using the picture chosen in notebook 01: cat.jpg" in out
    assert picture[0, 1].mean() > 0.5 > picture[0, 0].mean()  # green, not the sample
    monkeypatch.delenv("COLAB_STANDIN_UPLOAD")  # a second call does not ask again
    dh.my_image(16)
    assert "dialog" not in capsys.readouterr().out


def test_a_cancelled_dialog_uses_the_sample_and_says_so(in_colab, monkeypatch, capsys):
    monkeypatch.delenv("COLAB_STANDIN_UPLOAD", raising=False)
    monkeypatch.delenv("COLAB_STANDIN_DRIVE", raising=False)
    picture = dh.my_image(16)
    assert "scene.png (the sample)" in capsys.readouterr().out
    torch.testing.assert_close(picture, dh.load_image(dh.sample_image_path(), size=16))


def test_the_model_knows_which_picture_it_learned(tmp_path, monkeypatch, capsys):
    """A checkpoint of one picture keeps it: the tutorial names the learner's picture when the
    model learned it, and compares with what it learned when the work folder's differs."""
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    mine = torch.full((1, 3, 16, 16), 0.5)
    info = dh.ImageInfo("dog.jpg", (16, 16), "RGB", 16)
    dh.save_my_image(mine, info)
    x0 = dh.my_image(16, verbose=False)
    dh.train(dh.UNet.preset("tiny", image_size=16), x0, dh.NoiseSchedule(50), steps=1,
             checkpoint=dh.checkpoint_path(), progress=False, seed=0)  # fmt: skip
    capsys.readouterr()
    _, _, got = dh.load_tutorial_model("cpu")
    assert "on dog.jpg" in capsys.readouterr().out and torch.equal(got, x0)


def half_white(size=64):
    """A picture [1, 3, size, size]: left half white, right half black."""
    picture = torch.full((1, 3, size, size), -1.0)
    picture[..., : size // 2] = 1.0
    return picture


def test_the_stored_picture_never_writes_through_a_link(tmp_path, monkeypatch):
    """my_image.png a link to the learner's cat.png: cat.png stays as it was, the picture is
    stored beside it and the later notebooks use it."""
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    cat = tmp_path / "cat.png"
    Image.new("RGB", (80, 60), (10, 200, 30)).save(cat)
    before = cat.read_bytes()
    (tmp_path / "my_image.png").symlink_to(cat)
    saved = dh.save_my_image(half_white(), dh.ImageInfo("dog.jpg", (64, 64), "RGB", 64))
    assert cat.read_bytes() == before and (tmp_path / "my_image.png").is_symlink()
    assert saved == tmp_path / "my_image-2.png"
    loaded = dh.my_image(16, verbose=False)
    assert loaded[..., :7].min() > 0.95 and loaded[..., 9:].max() < -0.95
    assert my_image_name() == "dog.jpg"


def test_the_stored_picture_goes_beside_a_folder_of_its_name(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    (tmp_path / "my_image.png").mkdir()
    saved = dh.save_my_image(half_white(), dh.ImageInfo("dog.jpg", (64, 64), "RGB", 64))
    assert saved == tmp_path / "my_image-2.png" and (tmp_path / "my_image.png").is_dir()
    assert dh.my_image(16, verbose=False)[..., :7].min() > 0.95
    # saved again: our own stored picture is replaced, not a third name
    assert dh.save_my_image(-half_white(), dh.ImageInfo("cat.jpg", (64, 64), "RGB", 64)) == saved
    assert dh.my_image(16, verbose=False)[..., :7].max() < -0.95 and my_image_name() == "cat.jpg"


def test_a_re_run_with_nothing_chosen_keeps_the_stored_picture(tmp_path, monkeypatch, capsys):
    """Notebook 01 run again (Run all) with nothing uploaded: the learner's picture stays, and
    one line says so; the sample comes only when nothing is stored or when asked for by path."""
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    picture, info = choose_my_image()  # nothing stored yet: the sample, stored
    assert info.sample and my_image_name() == "scene.png (the sample)"
    capsys.readouterr()
    dh.save_my_image(half_white(256), dh.ImageInfo("cat.png", (800, 600), "RGB", 256))
    picture, info = choose_my_image()
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "keeping your picture cat.png" in out, out
    assert info.name == "cat.png" and picture[..., :100].min() > 0.95
    assert my_image_name() == "cat.png"
    picture, info = choose_my_image(path=dh.sample_image_path())  # asked for: used
    assert Path(info.name).name == "scene.png" and my_image_name().startswith("scene.png")


def test_a_cancelled_dialog_keeps_the_stored_picture(in_colab, monkeypatch, capsys):
    monkeypatch.delenv("COLAB_STANDIN_UPLOAD", raising=False)
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(in_colab / "work"))
    dh.save_my_image(half_white(256), dh.ImageInfo("cat.png", (800, 600), "RGB", 256))
    capsys.readouterr()
    picture, info = choose_my_image(dialog=True)
    assert "keeping your picture cat.png" in capsys.readouterr().out
    assert my_image_name() == "cat.png" and picture[..., :100].min() > 0.95


def test_fresh_runs_keep_every_earlier_checkpoint(tmp_path, monkeypatch, capsys):
    """A user's unet.previous.pt is never replaced, and a third run keeps the first run's."""
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    from diffusion_helpers.storage.checkpoint import read_checkpoint, save_checkpoint

    users = tmp_path / "unet.previous.pt"
    users.write_text("the user's own notes")
    for step in (1, 2, 3):
        save_checkpoint(dh.fresh_checkpoint_path(),
                        {"model_config": {}, "model": {}, "step": step, "optimizer": {}})  # fmt: skip
    dh.fresh_checkpoint_path()
    assert users.read_text() == "the user's own notes"
    steps = [read_checkpoint(tmp_path / f"unet.previous-{k}.pt")["step"] for k in (2, 3, 4)]
    assert steps == [1, 2, 3]
    last = capsys.readouterr().out.splitlines()[-1]  # and one line says where it went
    assert last == f"The earlier checkpoint is kept as {tmp_path / 'unet.previous-4.pt'}."


def test_a_foreign_unet_pt_is_named_not_to_be_deleted(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path))
    (tmp_path / "unet.pt").write_text("my notes, not a model")
    with pytest.raises(dh.CheckpointError) as info:
        dh.load_tutorial_model("cpu")
    message = str(info.value)
    assert "a text file" in message and "elete" not in message and "overwrit" not in message
    assert "out of the work folder" in message and len(message.splitlines()) == 1
    assert (tmp_path / "unet.pt").read_text() == "my notes, not a model"
    (tmp_path / "digits.pt").write_bytes(b"\x80\x04K\x01.")  # a pickle of the number 1
    words = "digits.pt is not a readable checkpoint: it is a Python pickle"
    with pytest.raises(dh.CheckpointError, match=words) as info:
        dh.load_digits_model("cpu")
    assert "elete" not in str(info.value) and "out of the work folder" in str(info.value)


def test_the_work_folder_setting_is_read_as_a_shell_would(tmp_path, monkeypatch):
    """~ is the home folder (never a folder named "~"); an empty value is refused, not taken
    for the current folder; a link that loops is named as such."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFFUSION_WORKDIR", "~/ddpm")
    assert dh.work_dir() == tmp_path / "home" / "ddpm" and not (tmp_path / "~").exists()
    for empty in ("", "  "):
        monkeypatch.setenv("DIFFUSION_WORKDIR", empty)
        with pytest.raises(ValueError, match="DIFFUSION_WORKDIR is set but empty"):
            dh.work_dir()
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    monkeypatch.setenv("DIFFUSION_WORKDIR", str(tmp_path / "loop"))
    with pytest.raises(ValueError, match="loops back") as info:
        dh.work_dir()
    assert "file exists" not in str(info.value).lower()

"""The command line and the headless demo (quick mode: tiny sizes, a few training steps)."""

import os
import subprocess
import sys
import tempfile
import time

import pytest
import torch
from matplotlib.figure import Figure
from PIL import Image

from diffusion_helpers.cli.main import main
from diffusion_helpers.storage.checkpoint import read_checkpoint, rescue_path


def run_cli(*args, env_quick=True, cwd=None):
    env = {"DIFFUSION_QUICK": "1"} if env_quick else {}
    return subprocess.run(
        [sys.executable, "-m", "diffusion_helpers", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=600,
    )


def test_help_lists_the_three_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("demo", "train", "sample"):
        assert command in out.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["demo", "--minutes", "abc"], "--minutes"),
        (["demo", "--steps", "0"], "--steps"),
        (["demo", "--size", "-3"], "--size"),
        (["demo", "--bogus"], "--bogus"),
        (["frobnicate"], "frobnicate"),
        (["train", "--cuda-graphs", "sometimes"], "--cuda-graphs"),
    ],
)
def test_bad_options_give_one_line_and_exit_2(args, words, capsys):
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


def test_bad_image_gives_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "notes.txt"
    bad.write_text("this is not a picture\n")
    assert main(["demo", "--image", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notes.txt" in err and "not an image" in err
    assert not (tmp_path / "o").exists()  # bad input leaves no empty folder behind
    (tmp_path / "o").mkdir()  # a folder that was there before stays
    assert main(["demo", "--image", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert (tmp_path / "o").is_dir()


def test_cuda_graphs_on_a_cpu_is_one_line_before_training(tmp_path, capsys):
    out = tmp_path / "unet.pt"
    assert main(["train", "--cuda-graphs", "on", "--device", "cpu", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cuda_graphs='on'" in err and "CPU" in err, err
    assert not out.exists()


def test_missing_image_and_impossible_size(tmp_path, capsys):
    assert main(["demo", "--image", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    # 30 px cannot be halved twice by the tiny U-Net's three levels (the CPU's preset: the
    # device is pinned, since a GPU picks the small preset and other valid sides).
    assert main(["demo", "--size", "30", "--device", "cpu", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "30" in err and "divisible" in err and "28 or 32" in err


@pytest.mark.slow
def test_demo_writes_every_picture(tmp_path):
    """The README's main job, in quick mode on a picture of our own."""
    picture = tmp_path / "red_square.png"
    Image.new("RGB", (40, 30), (200, 30, 30)).save(picture)
    out = run_cli("demo", "--image", str(picture), "--out", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ("forward_grid.png", "schedules.png", "loss.png", "samples.png"):
        with Image.open(tmp_path / "demo" / name) as img:
            assert img.width > 100 and img.height > 50, name
    with Image.open(tmp_path / "demo" / "reverse.gif") as gif:
        assert gif.n_frames > 10 and gif.info.get("loop") == 0
    assert (tmp_path / "demo" / "unet.pt").stat().st_size > 0
    assert "mean PSNR" in out.stdout and str(tmp_path / "demo") in out.stdout
    assert "Trained 40 steps in" in out.stdout  # quick mode's budget, this run's own count
    # again into the same folder: afresh by default (the old model kept), or --resume
    again = run_cli(
        "demo", "--image", str(picture), "--out", str(tmp_path / "demo"), "--steps", "2"
    )
    assert again.returncode == 0 and "Starting afresh" in again.stdout
    assert (tmp_path / "demo" / "unet.previous.pt").exists()
    resumed = run_cli(
        "demo", "--image", str(picture), "--out", str(tmp_path / "demo"), "--steps", "3", "--resume"
    )
    assert resumed.returncode == 0 and "resumed at step 2, now 3" in resumed.stdout


@pytest.mark.slow
def test_train_export_then_sample(tmp_path):
    ckpt, small = tmp_path / "unet.pt", tmp_path / "small.pt"
    out = run_cli("train", "--steps", "3", "--out", str(ckpt), "--export", str(small))
    assert out.returncode == 0, out.stderr[-2000:]
    # The sampling-only copy keeps float16 EMA weights and no optimiser: under a third the size.
    assert small.stat().st_size < ckpt.stat().st_size / 3
    from diffusion_helpers.storage.checkpoint import load_checkpoint

    full_model, _ = load_checkpoint(ckpt)
    small_model, _ = load_checkpoint(small)
    for a, b in zip(full_model.state_dict().values(), small_model.state_dict().values()):
        # float16 keeps 11 significant bits: relative error at most 2^-11.
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    out = run_cli(
        "sample", "--checkpoint", str(small), "-n", "2", "--method", "ddim", "--ddim-steps", "5",
        "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "s" / "samples.png").exists() and (tmp_path / "s" / "reverse.gif").exists()
    # the same checkpoint again: it resumes; the sampling-only copy cannot and is refused
    out = run_cli("train", "--steps", "4", "--out", str(ckpt))
    assert out.returncode == 0 and "resumed at step 3, now 4" in out.stdout, out.stdout
    out = run_cli("train", "--steps", "5", "--out", str(small))
    assert out.returncode == 2 and "sampling-only copy" in out.stderr


@pytest.mark.parametrize(
    "make, args, words",
    [
        (None, ["--export", "{out}"], "is the training checkpoint itself"),
        ("photo", ["--export", "{tmp}/photo.jpg"], "not a diffusion_helpers checkpoint"),
        (None, ["--export", "{tmp}"], "is a folder"),
        ("photo", ["--out", "{tmp}/photo.jpg"], "Refusing to overwrite"),
        ("photo", ["--out", "{tmp}/photo.jpg/unet.pt"], "is a file"),
        (None, ["--out", "/proc/unet.pt"], "cannot write the checkpoint"),
    ],
)
def test_train_outputs_are_checked_before_training(tmp_path, capsys, make, args, words):
    photo = tmp_path / "photo.jpg"
    if make:
        photo.write_bytes(b"\xff\xd8\xff my photo")
    out = tmp_path / "unet.pt"
    args = [a.format(out=out, tmp=tmp_path) for a in args]
    if "--out" not in args:
        args += ["--out", str(out)]
    started = time.perf_counter()
    assert main(["train", "--steps", "1000", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert time.perf_counter() - started < 60  # refused up front, not after 1000 steps
    assert not out.exists() or "--export" in args
    if make:
        assert photo.read_bytes() == b"\xff\xd8\xff my photo"


def test_a_few_step_sampler_animates_every_step(tmp_path):
    """The GIF's frames follow the run, not T: 12 DPM-Solver steps give 12 frames and the
    finished pictures (one frame every T / 100 = 10 steps gave 3)."""
    out = tmp_path / "s"
    args = ["sample", "--method", "dpm_solver", "--steps", "12", "--eta", "1", "-n", "1"]
    assert main([*args, "--device", "cpu", "--out", str(out)]) == 0
    with Image.open(out / "reverse.gif") as gif:
        assert gif.n_frames == 13


def test_sample_outputs_and_labels_are_checked(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file, not a folder")
    assert main(["sample", "--out", str(tmp_path / "taken"), "-n", "1"]) == 2
    assert "is a file" in capsys.readouterr().err
    # the shipped model is unconditional: asking for a class is a one-line error
    assert main(["sample", "--label", "3", "-n", "1", "--out", str(tmp_path / "s")]) == 2
    assert "labels" in capsys.readouterr().err
    # DPM-Solver's noise is at most the SDE's: a one-line error before any sampling
    args = ["sample", "--method", "dpm_solver", "--eta", "2", "-n", "1", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "eta must be a number >= 0 and <= 1, got 2.0" in capsys.readouterr().err


@pytest.mark.slow
def test_train_on_digits_then_sample_a_class(tmp_path):
    ckpt = tmp_path / "digits.pt"
    out = run_cli(
        "train", "--data", "digits", "--steps", "3", "--device", "cpu", "--out", str(ckpt)
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "digits: 1,797 images" in out.stdout
    from diffusion_helpers.storage.checkpoint import read_checkpoint

    assert read_checkpoint(ckpt)["model_config"]["num_classes"] == 10
    out = run_cli(
        "sample", "--checkpoint", str(ckpt), "--label", "7", "--guidance", "2", "-n", "2",
        "--method", "dpm_solver", "--steps", "5", "--device", "cpu", "--out", str(tmp_path / "s"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "s" / "samples.png").exists()


@pytest.mark.slow
def test_edit_inpaint_and_vary_write_their_pictures(tmp_path):
    """Notebook 06 headless, on the shipped model and a few-step sampler."""
    fast = ["-n", "2", "--method", "ddim", "--steps", "4", "--device", "cpu"]
    out = run_cli("edit", "--strength", "0.4", *fast, "--out", str(tmp_path / "e"))
    assert out.returncode == 0, out.stderr[-2000:]
    out = run_cli(
        "inpaint", "--mask", "left_half", "--eta", "1", *fast, "--out", str(tmp_path / "i")
    )
    assert out.returncode == 0, out.stderr[-2000:]
    out = run_cli(
        "vary", "--steps", "2", "-n", "2", "--method", "ddim", "--sampler-steps", "3",
        "--device", "cpu", "--out", str(tmp_path / "v"),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    for path in ("e/edits.png", "i/inpainted.png", "v/variations.png", "v/variations_larger.png"):
        with Image.open(tmp_path / path) as img:
            assert img.width > 200, path
    assert (tmp_path / "v" / "vary.pt").exists()


@pytest.mark.parametrize(
    "args, words",
    [
        (["edit", "--strength", "1.5"], "strength"),
        (["inpaint", "--mask", "everything"], "--mask"),
        (["edit", "--label", "2"], "labels"),  # the shipped model has no classes
    ],
)
def test_edit_and_inpaint_errors_are_one_line(tmp_path, capsys, args, words):
    code = None
    try:
        code = main([*args, "-n", "1", "--out", str(tmp_path / "o")])
    except SystemExit as stop:  # argparse's own choices
        code = stop.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err


FEW_STEPS = ["-n", "1", "--method", "dpm_solver", "--steps", "2", "--device", "cpu"]


def error_line(err: str) -> str:
    """The error of a run's stderr: one line, the last, after the progress bars' lines."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    return errors[0]


@pytest.mark.parametrize("seed", [str(2**70), "-1"])  # 1.5 and "a": argparse's int refuses them
@pytest.mark.parametrize("command", ["demo", "train", "sample", "edit", "inpaint", "vary"])
def test_a_seed_that_is_not_a_seed_is_one_line_before_any_work(command, seed, capsys):
    with pytest.raises(SystemExit) as stop:
        main([command, "--seed", seed])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--seed" in err and "from 0 to" in err, err


def test_sample_keeps_the_user_s_files_and_names_what_it_wrote(tmp_path, capsys):
    """samples.png of the user's and a symlink named reverse.gif (to a file outside) stay as
    they are; the pictures go beside them and the printed lines name where."""
    out = tmp_path / "s"
    out.mkdir()
    (out / "samples.png").write_bytes(b"my own picture")
    outside = tmp_path / "notes.txt"
    outside.write_text("my notes")
    (out / "reverse.gif").symlink_to(outside)
    assert main(["sample", *FEW_STEPS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "against the picture it learned" in printed  # the shipped model keeps its picture
    assert f"samples       {out / 'samples-2.png'}" in printed
    assert f"reverse_gif   {out / 'reverse-2.gif'}" in printed
    assert (out / "samples.png").read_bytes() == b"my own picture"
    assert outside.read_text() == "my notes" and (out / "reverse.gif").is_symlink()
    with Image.open(out / "samples-2.png") as img:
        assert img.width > 10


def test_a_full_disk_while_writing_pictures_is_one_line_and_leaves_no_file(
    tmp_path, capsys, monkeypatch
):
    def full(self, fname, **kwargs):
        if hasattr(fname, "write"):
            fname.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full)
    out = tmp_path / "s"
    assert main(["sample", *FEW_STEPS, "--out", str(out)]) == 2
    err = error_line(capsys.readouterr().err)
    assert "No space left on device" in err and str(out / "samples.png") in err, err
    assert [p.name for p in out.iterdir()] == []  # no 0-byte picture, no temporary


def test_an_edit_of_strength_0_writes_the_picture_and_says_there_is_no_gif(tmp_path, capsys):
    out = tmp_path / "e"
    assert main(["edit", "--strength", "0", *FEW_STEPS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "edits.png").is_file() and not (out / "reverse.gif").exists()
    assert "reverse_gif       not written: no reverse step was taken" in printed


def failing_saves(monkeypatch, failures):
    """Make torch.save raise the given errors, one per call (None: save as usual)."""
    real, left = torch.save, list(failures)

    def save(obj, f, *args, **kwargs):
        failure = left.pop(0) if left else None
        if failure is not None:
            raise failure
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)


def test_a_rescued_checkpoint_is_the_one_exported_and_named(tmp_path, capsys, monkeypatch):
    """--out refuses the save (a full disk): the checkpoint goes to the rescue path, and the
    export and the last lines follow it there."""
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    failing_saves(monkeypatch, [OSError(28, "No space left on device")])
    ckpt, small = tmp_path / "out" / "unet.pt", tmp_path / "small.pt"
    args = ["train", "--steps", "1", "--device", "cpu", "--out", str(ckpt), "--export", str(small)]
    assert main(args) == 0, capsys.readouterr().err
    rescued = rescue_path(ckpt)
    lines = capsys.readouterr().out.strip().splitlines()
    assert f"could not write {ckpt}: No space left on device; saved to {rescued}" in lines[-3]
    assert lines[-2].endswith(f"; checkpoint: {rescued}")
    assert lines[-1].startswith(f"Sampling-only copy: {small}")
    assert not ckpt.exists() and read_checkpoint(small)["step"] == 1


def test_export_onto_a_full_disk_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DIFFUSION_QUICK", "1")
    failing_saves(monkeypatch, [None, OSError(28, "No space left on device")])
    ckpt, small = tmp_path / "unet.pt", tmp_path / "small.pt"
    args = ["train", "--steps", "1", "--device", "cpu", "--out", str(ckpt), "--export", str(small)]
    assert main(args) == 2
    err = error_line(capsys.readouterr().err)
    assert str(small) in err and "No space left" in err, err
    assert ckpt.exists() and not small.exists()


def test_names_that_are_not_utf8_print(tmp_path, capsys):
    """A message naming such a file, and the lines naming pictures written into such a
    folder, print instead of failing with "'utf-8' codec can't encode"."""
    missing = tmp_path / os.fsdecode(b"\xff.pt")
    assert main(["sample", "--checkpoint", str(missing), "--out", str(tmp_path / "s")]) == 2
    assert "\\xff.pt" in capsys.readouterr().err
    out = tmp_path / os.fsdecode(b"\xfepictures")
    assert main(["sample", *FEW_STEPS, "--out", str(out)]) == 0
    assert "pictures/samples.png" in capsys.readouterr().out
    assert (out / "samples.png").is_file()


def test_an_interrupted_sample_leaves_no_empty_folder(tmp_path, monkeypatch, capsys):
    """Ctrl-C during sampling: the folder made for the pictures goes again; a folder that was
    there before stays."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("diffusion_helpers.cli.demo.sample", interrupted)
    out = tmp_path / "samples"
    assert main(["sample", "--out", str(out), "--device", "cpu"]) == 130
    assert not out.exists() and "no new pictures were written" in capsys.readouterr().err
    out.mkdir()
    assert main(["sample", "--out", str(out), "--device", "cpu"]) == 130
    assert out.is_dir()


@pytest.mark.parametrize("crop", ["1", "7", "4096"])
def test_a_crop_the_patch_model_cannot_take_names_the_flag(tmp_path, capsys, crop):
    assert main(["vary", "--crop", crop, "--steps", "1", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert f"--crop {crop}" in err and "even side" in err and len(err.strip().splitlines()) == 1


def test_a_step_budget_prints_no_minutes_and_no_notebook_advice(tmp_path, capsys):
    """Issue 32: train --steps 5 printed a minutes budget and "Change S.train_minutes"."""
    out = tmp_path / "unet.pt"
    assert (
        main(["train", "--size", "32", "--steps", "1", "--device", "cpu", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "minute" not in printed and "S." not in printed and "Trained 1 steps" in printed


def test_a_run_that_cannot_fit_under_ulimit_is_one_line_before_any_file(tmp_path):
    """Issue 32: under ulimit -v 4 GB, train --size 512 died inside the memory check's own
    forward pass; the estimate now comes from the shapes, and the limit is honoured."""
    import resource

    def four_gigabytes():
        resource.setrlimit(resource.RLIMIT_AS, (4 * 10**9, 4 * 10**9))

    out = tmp_path / "o.pt"
    done = subprocess.run(
        [sys.executable, "-m", "diffusion_helpers", "train", "--size", "512", "--steps", "1",
         "--out", str(out), "--device", "cpu"],
        capture_output=True, text=True, preexec_fn=four_gigabytes, timeout=300,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "needs about" in errors[0] and "free on the CPU" in errors[0]
    assert "Traceback" not in done.stderr and list(tmp_path.iterdir()) == []

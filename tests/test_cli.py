"""The command line and the headless demo (quick mode: tiny sizes, a few training steps)."""

import subprocess
import sys

import pytest
import torch
from PIL import Image

from diffusion_helpers.__main__ import main


def run_cli(*args, env_quick=True, cwd=None):
    env = {"DIFFUSION_QUICK": "1"} if env_quick else {}
    import os

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


def test_missing_image_and_impossible_size(tmp_path, capsys):
    assert main(["demo", "--image", str(tmp_path / "nope.jpg"), "--out", str(tmp_path)]) == 2
    assert "nope.jpg" in capsys.readouterr().err
    # 30 px cannot be halved twice by the tiny U-Net's three levels.
    assert main(["demo", "--size", "30", "--out", str(tmp_path / "o")]) == 2
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


@pytest.mark.slow
def test_train_export_then_sample(tmp_path):
    ckpt, small = tmp_path / "unet.pt", tmp_path / "small.pt"
    out = run_cli("train", "--steps", "3", "--out", str(ckpt), "--export", str(small))
    assert out.returncode == 0, out.stderr[-2000:]
    # The sampling-only copy keeps float16 EMA weights and no optimiser: under a third the size.
    assert small.stat().st_size < ckpt.stat().st_size / 3
    from diffusion_helpers.checkpoint import load_checkpoint

    full_model, _ = load_checkpoint(ckpt)
    small_model, _ = load_checkpoint(small)
    for a, b in zip(full_model.state_dict().values(), small_model.state_dict().values()):
        # float16 keeps 11 significant bits: relative error at most 2^-11.
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)
    out = run_cli(
        "sample",
        "--checkpoint",
        str(small),
        "-n",
        "2",
        "--method",
        "ddim",
        "--ddim-steps",
        "5",
        "--out",
        str(tmp_path / "s"),
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "s" / "samples.png").exists() and (tmp_path / "s" / "reverse.gif").exists()

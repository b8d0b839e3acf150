"""The files the notebooks pass on: the learner's picture (chosen in notebook 01), the model of
notebook 03 and the digits model of notebook 05, in one work folder.

Locally the work folder is ``outputs/`` beside the notebooks (or ``DIFFUSION_WORKDIR``), so the
notebooks find each other's files however they are run. In Colab every notebook runs on a
machine of its own, which forgets its files when it stops: :func:`start` keeps the work folder
on the learner's Google Drive (``MyDrive/ddpm-on-your-picture``; Colab asks once per notebook
for permission), so each notebook finds the picture and the models there. Without Drive, a
notebook that finds no picture asks for it again in Colab's file dialog (:func:`my_image`), and
one that finds no trained model says so and uses the one shipped with the package
(:func:`load_tutorial_model`), never the sample silently.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

import torch

from ..pictures.images import ImageInfo, load_image, sample_image_path, to_pil
from ..pictures.training_data import fingerprint
from ..pictures.upload import pick_image
from ..runtime.device import describe_device
from ..runtime.environment import WORKDIR_ENV, in_colab, work_dir_path
from ..sampling import load_for_sampling
from ..schedule import NoiseSchedule
from ..storage.outputs import check_checkpoint_target, check_output_folder
from ..unet import UNet
from .settings import TutorialSettings, dataset_settings, settings

MY_IMAGE_NAME = "my_image.png"
MY_IMAGE_NOTE = "my_image.json"  # where the picture came from: {"name": ..., "sample": bool}
CHECKPOINT_NAME = "unet.pt"
DIGITS_NAME = "digits.pt"
# Small models trained on images/scene.png and on the digits by the commands in
# diffusion_helpers/data/README.md: what notebooks 04-06 use before 03 and 05 have run.
DATA = Path(__file__).resolve().parents[1] / "data"
PRETRAINED = DATA / "pretrained_tiny.pt"
PRETRAINED_DIGITS = DATA / "pretrained_digits.pt"
# The learner's picture is kept at this side, so later notebooks can resize it as they need.
STORED_IMAGE_SIZE = 256
# The tiny net passed 25 dB on one 32 px picture after about 280 steps of batch 16 (train.py).
ENOUGH_STEPS = 250
# In Colab: where Drive is mounted (Colab's own /content/drive) and the work folder in it.
DRIVE_MOUNT = "drive"  # below the working folder, /content in Colab
DRIVE_FOLDER = "ddpm-on-your-picture"


def start(
    keep_on_drive: bool = True,
    datasets: bool = False,
    device: Optional[Union[str, torch.device]] = None,
) -> TutorialSettings:
    """The first call of every notebook: the work folder, then the sizes for this machine.

    In Colab, with ``keep_on_drive``, Google Drive is mounted (Colab shows its permission
    dialog once per notebook) and the work folder is ``MyDrive/ddpm-on-your-picture``; if
    Drive cannot be mounted (declined, no account), the work folder stays on this runtime and
    one line says what that means. Elsewhere ``keep_on_drive`` does nothing. Prints where the
    work folder is and which device runs the notebook.

    Args:
        datasets: the sizes for learning a dataset (notebook 05) instead of one picture.
    Returns:
        :func:`.settings.settings` (or :func:`.settings.dataset_settings`) for this machine.
    """
    if in_colab() and keep_on_drive and WORKDIR_ENV not in os.environ:
        folder = mount_drive()
        if folder is not None:
            os.environ[WORKDIR_ENV] = str(folder)
    folder = work_dir()
    if in_colab() and WORKDIR_ENV in os.environ:
        where = "on your Google Drive: every notebook finds your picture and models there"
    elif in_colab():
        where = "on this Colab runtime only (set KEEP_ON_DRIVE = True to keep it on Drive)"
    else:
        where = f"set {WORKDIR_ENV} to use another folder"
    print(f"Work folder: {folder.resolve()} ({where}).")
    chosen = dataset_settings(device) if datasets else settings(device)
    print(describe_device(chosen.device))
    return chosen


def mount_drive() -> Optional[Path]:
    """Mount Google Drive (Colab only) and return the work folder in it, created; None, after
    one line saying so, when Drive cannot be mounted."""
    from google.colab import drive  # only in Colab

    mount = Path.cwd() / DRIVE_MOUNT
    try:
        drive.mount(str(mount))
        folder = mount / "MyDrive" / DRIVE_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
    except Exception as err:  # noqa: BLE001 - declined, timed out, no Drive: work on without
        line = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        print(
            f"Google Drive was not mounted ({line}): your picture and models stay on this "
            "runtime, and the next notebooks will ask for your picture again."
        )
        return None
    return folder


def work_dir() -> Path:
    """The folder where the notebooks and the demo keep what they pass on (created and checked
    writable, so a read-only folder fails here and not after training)."""
    return check_output_folder(work_dir_path(), "tutorial's files")


def my_image_path() -> Path:
    """Where notebook 01 stores the learner's picture."""
    return work_dir() / MY_IMAGE_NAME


def checkpoint_path() -> Path:
    """Where notebook 03 (and ``python -m diffusion_helpers train``) saves the trained model."""
    return work_dir() / CHECKPOINT_NAME


def fresh_checkpoint_path(name: str = CHECKPOINT_NAME) -> Path:
    """The checkpoint path (``name`` in the work folder) for a training run that starts afresh:
    an earlier checkpoint is kept as ``unet.previous.pt`` (for ``name="digits.pt"``:
    ``digits.previous.pt``), replacing an older one there, never deleted."""
    path = work_dir() / name
    if path.exists():
        check_checkpoint_target(path)  # only one of our checkpoints is moved aside
        path.replace(path.with_name(f"{path.stem}.previous{path.suffix}"))
    return path


def save_my_image(picture: torch.Tensor, info: Optional[ImageInfo] = None) -> Path:
    """Store the learner's picture (a tensor [1, C, H, W] in [-1, 1]) for the later notebooks,
    with where it came from (``info`` from :func:`.pictures.upload.pick_image`)."""
    path = my_image_path()
    to_pil(picture).save(path)
    sample = info is None or info.sample
    note = {"name": sample_image_path().name if sample else info.name, "sample": sample}
    (path.parent / MY_IMAGE_NOTE).write_text(json.dumps(note))
    return path


def my_image_name() -> Optional[str]:
    """The file name of the picture in the work folder ("cat.jpg", or "scene.png (the sample)"),
    or None when there is none."""
    path = my_image_path()
    if not path.exists():
        return None
    try:
        note = json.loads((path.parent / MY_IMAGE_NOTE).read_text())
        return f"{note['name']}{' (the sample)' if note.get('sample') else ''}"
    except (OSError, ValueError, KeyError, TypeError):
        return path.name


def my_image(size: int, channels: int = 3, verbose: bool = True, ask: bool = True) -> torch.Tensor:
    """The learner's picture at ``size`` px: the one chosen in notebook 01 (from the work
    folder); if there is none, in Colab (with ``ask``) the picture chosen now in Colab's file
    dialog (kept in the work folder for the next cells and notebooks); else the bundled sample.
    One line says which, and how to change it."""
    path = my_image_path()
    if not path.exists() and in_colab() and ask:
        print(
            f"No picture from notebook 01 in the work folder ({path.parent}): choose yours in "
            "the dialog below, or press Cancel to use the sample."
        )
        picture, info = pick_image(dialog=True, size=STORED_IMAGE_SIZE, verbose=False)
        save_my_image(picture, info)
    name = my_image_name()
    if name is not None:
        note = f"Using the picture chosen in notebook 01: {name} (in {path.parent})."
        source = path
    else:
        source = sample_image_path()
        note = (
            f"Using the sample picture {source.name}: no picture from notebook 01 in "
            f"{path.parent}. Run 01_your_image to choose yours"
            f"{' (with KEEP_ON_DRIVE = True, so that this notebook finds it)' if in_colab() else ''}."
        )
    if verbose:
        print(note)
    return load_image(source, size=size, channels=channels)


def load_tutorial_model(
    device: Optional[Union[str, torch.device]] = None,
) -> tuple[UNet, NoiseSchedule, torch.Tensor]:
    """The model notebook 03 trained, or the shipped one (trained on the sample picture) when
    the work folder has none. One line says which, on which picture, and how to change that.

    Returns:
        ``(model, schedule, x0)``: the U-Net in eval mode on ``device``, the schedule it was
        trained with, and the picture it was trained on [1, C, S, S] (to compare samples with).
    """
    path = checkpoint_path()
    mine = path.exists()
    model, schedule, state = load_for_sampling(path if mine else PRETRAINED, device)
    cfg = model.config
    if not mine:
        print(
            f"No model from notebook 03 in the work folder ({path.parent}): using the one shipped "
            f"with the package, trained on the sample picture {sample_image_path().name} "
            f"({state['step']} steps). To see your own picture come back, run "
            f"03_training_the_unet first{' with KEEP_ON_DRIVE = True' if in_colab() else ''}."
        )
        x0 = load_image(sample_image_path(), size=cfg.image_size, channels=cfg.image_channels)
        return model, schedule, x0
    trained_on = state.get("picture")
    x0 = my_image(cfg.image_size, cfg.image_channels, verbose=False, ask=False)
    same = state.get("data") in (None, fingerprint(lambda i: x0[i], 1))
    name = my_image_name() if same else "another picture than the one in the work folder"
    print(f"Using the model notebook 03 trained ({path}, {state['step']} steps) on {name}.")
    if state["step"] < ENOUGH_STEPS:
        print(
            f"Warning: {state['step']} training steps are too few for a picture (it takes "
            f"about {ENOUGH_STEPS}): the samples below will look like noise. Run notebook 03 "
            "with DIFFUSION_QUICK unset and its full budget, then come back."
        )
    if not same and isinstance(trained_on, torch.Tensor):
        x0 = trained_on.float()  # compare samples with what it learned
    return model, schedule, x0


def load_digits_model(
    device: Optional[Union[str, torch.device]] = None,
) -> tuple[UNet, NoiseSchedule, dict]:
    """The digits model notebook 05 trained (``digits.pt`` in the work folder), or the one
    shipped with the package when there is none; one line says which."""
    path = work_dir() / DIGITS_NAME
    mine = path.exists()
    model, schedule, state = load_for_sampling(path if mine else PRETRAINED_DIGITS, device)
    if mine:
        print(f"Using notebook 05's digits model ({path}, {state['step']} steps).")
    else:
        print(
            f"No digits model from notebook 05 in the work folder ({path.parent}): using the one "
            f"shipped with the package ({state['step']} steps on the same digits)."
        )
    return model, schedule, state

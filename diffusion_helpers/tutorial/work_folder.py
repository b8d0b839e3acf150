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
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..pictures.images import (
    ImageInfo,
    Source,
    load_image,
    load_image_info,
    sample_image_path,
    to_pil,
)
from ..pictures.data import fingerprint
from ..pictures.upload import pick_image
from ..runtime.device import describe_device
from ..runtime.environment import WORKDIR_ENV, in_colab, work_dir_path
from ..sampling import load_for_sampling
from ..schedule import NoiseSchedule
from ..storage.checkpoint import LOAD_ADVICE, CheckpointError
from ..storage.outputs import check_output_folder, keep_previous_checkpoint, write_output
from ..unet import UNet
from .settings import TutorialSettings, dataset_settings, settings

MY_IMAGE_NAME = "my_image.png"
# Where the picture came from, and the file it is in ("my_image-2.png" when my_image.png held
# something not ours): {"name": ..., "sample": bool, "file": ...}
MY_IMAGE_NOTE = "my_image.json"
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
    writable, so a read-only folder fails here and not after training). ``~`` in
    ``DIFFUSION_WORKDIR`` is the home folder, as in a shell; an empty value is refused."""
    if WORKDIR_ENV in os.environ and not os.environ[WORKDIR_ENV].strip():
        raise ValueError(
            f"{WORKDIR_ENV} is set but empty: set it to a folder (such as ~/ddpm), or unset it "
            "to use outputs/ here."
        )
    return check_output_folder(work_dir_path().expanduser(), "tutorial's files")


def my_image_note() -> dict:
    """The note notebook 01 left beside the learner's picture (:data:`MY_IMAGE_NOTE`), or {}."""
    try:
        note = json.loads((work_dir() / MY_IMAGE_NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return note if isinstance(note, dict) else {}


def my_image_path() -> Path:
    """Where notebook 01 stored the learner's picture: ``my_image.png`` in the work folder, or
    the fresh name it took when that name held something not ours (the note says which)."""
    name = my_image_note().get("file")
    return work_dir() / (Path(name).name if isinstance(name, str) and name else MY_IMAGE_NAME)


def checkpoint_path() -> Path:
    """Where notebook 03 (and ``python -m diffusion_helpers train``) saves the trained model."""
    return work_dir() / CHECKPOINT_NAME


def fresh_checkpoint_path(name: str = CHECKPOINT_NAME) -> Path:
    """The checkpoint path (``name`` in the work folder) for a training run that starts afresh:
    an earlier checkpoint is moved aside to ``unet.previous.pt``, or ``unet.previous-2.pt``, ...
    when that is taken (:func:`.storage.outputs.keep_previous_checkpoint`), and one line says
    where. Nothing is replaced or deleted."""
    path = work_dir() / name
    if os.path.lexists(path):
        print(f"The earlier checkpoint is kept as {keep_previous_checkpoint(path)}.")
    return path


def save_my_image(picture: torch.Tensor, info: Optional[ImageInfo] = None) -> Path:
    """Store the learner's picture (a tensor [1, C, H, W] in [-1, 1]) for the later notebooks,
    with where it came from (``info`` from :func:`.pictures.upload.pick_image`); return the file.
    Written by :func:`.storage.outputs.write_output`: atomically, never through a symlink, and
    beside anything at ``my_image.png`` that we did not write."""
    folder = work_dir()
    path = write_output(folder / MY_IMAGE_NAME, lambda f: to_pil(picture).save(f, format="PNG"))
    sample = info is None or info.sample
    name = sample_image_path().name if sample else Path(info.name).name
    note = {"name": name, "sample": sample, "file": path.name}
    write_output(folder / MY_IMAGE_NOTE, lambda f: f.write(json.dumps(note).encode()), "note")
    return path


def my_image_name() -> Optional[str]:
    """The file name of the picture in the work folder ("cat.jpg", or "scene.png (the sample)"),
    or None when there is none."""
    path = my_image_path()
    if not path.is_file():
        return None
    note = my_image_note()
    if not isinstance(note.get("name"), str):
        return path.name
    return f"{note['name']}{' (the sample)' if note.get('sample') else ''}"


def choose_my_image(
    widget: Any = None, *, path: Optional[Source] = None, dialog: bool = False
) -> tuple[torch.Tensor, ImageInfo]:
    """Notebook 01's choice: the picture chosen now (``path``, the upload in ``widget``, or
    Colab's file dialog with ``dialog``; see :func:`.pictures.upload.pick_image`), stored for
    the later notebooks. With nothing chosen (Run all, or Cancel in the dialog), a picture of
    the learner's stored before is kept; the sample is used only when none is stored, or when
    asked for (``path=sample_image_path()``). One line says which.

    Returns:
        the picture [1, 3, S, S] in [-1, 1] at :data:`STORED_IMAGE_SIZE`, and its ``ImageInfo``.
    """
    picture, info = pick_image(widget, path=path, dialog=dialog, size=STORED_IMAGE_SIZE,
                               verbose=False)  # fmt: skip
    stored = my_image_path()
    if info.sample and stored.is_file() and not my_image_note().get("sample"):
        name = my_image_name()
        print(
            f"Nothing chosen now, so keeping your picture {name} from before (in "
            f"{stored.parent}). To change it, choose another and run this cell again."
        )
        picture, info = load_image_info(stored, size=STORED_IMAGE_SIZE)
        return picture, replace(info, name=name)
    saved = save_my_image(picture, info)
    hint = " To use yours, choose it above and run this cell again." if info.sample else ""
    print(f"Using {info.describe()}, kept for the next notebooks as {saved}.{hint}")
    return picture, info


def my_image(size: int, channels: int = 3, verbose: bool = True, ask: bool = True) -> torch.Tensor:
    """The learner's picture at ``size`` px: the one chosen in notebook 01 (from the work
    folder); if there is none, in Colab (with ``ask``) the picture chosen now in Colab's file
    dialog (kept in the work folder for the next cells and notebooks); else the bundled sample.
    One line says which, and how to change it."""
    path = my_image_path()
    if not path.is_file() and in_colab() and ask:
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
    model, schedule, state = load_or_shipped(path, PRETRAINED, device)
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
    model, schedule, state = load_or_shipped(path, PRETRAINED_DIGITS, device)
    if mine:
        print(f"Using notebook 05's digits model ({path}, {state['step']} steps).")
    else:
        print(
            f"No digits model from notebook 05 in the work folder ({path.parent}): using the one "
            f"shipped with the package ({state['step']} steps on the same digits)."
        )
    return model, schedule, state


def load_or_shipped(
    path: Path, shipped: Path, device: Optional[Union[str, torch.device]]
) -> tuple[UNet, NoiseSchedule, dict]:
    """:func:`.sampling.load_for_sampling` of ``path`` in the work folder when there is one,
    else of the ``shipped`` model. A file there that is not a checkpoint we can read is named
    for what it is, with what to do: never to delete it."""
    if not path.exists():
        return load_for_sampling(shipped, device)
    try:
        return load_for_sampling(path, device)
    except CheckpointError as err:
        raise CheckpointError(
            f"{str(err).removesuffix(' ' + LOAD_ADVICE)} Move it out of the work folder: the "
            "notebooks then use the model shipped with the package, or train a new one there."
        ) from err

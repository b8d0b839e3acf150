"""The files the notebooks pass on, in one work folder: the learner's picture (notebook 01), the
model of notebook 03 and the digits model of 05.

Locally it is ``outputs/`` beside the notebooks (or ``DIFFUSION_WORKDIR``). In Colab, where each
notebook runs on a machine that forgets its files, :func:`start` keeps it on the learner's
Google Drive. Without Drive, a notebook that finds no picture asks for one (:func:`my_image`),
and one that finds no model says so and uses the one shipped with the package.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional, Union

import torch

from ..pictures.data import fingerprint
from ..pictures.images import (
    ImageInfo,
    Source,
    load_image,
    load_image_info,
    sample_image_path,
    to_pil,
)
from ..pictures.upload import pick_image
from ..runtime.device import describe_device
from ..runtime.environment import WORKDIR_ENV, in_colab, quick_mode, work_dir_path
from ..runtime.threads import pick_threads
from ..sampling import load_for_sampling
from ..schedule import NoiseSchedule
from ..storage.checkpoint import LOAD_ADVICE, CheckpointError
from ..storage.outputs import check_output_folder, keep_previous_checkpoint, write_output
from ..unet import UNet
from .settings import TutorialSettings, dataset_settings, settings

MY_IMAGE_NAME = "my_image.png"
# Beside the picture: {"name": where it came from, "sample": bool, "file": the file it is in,
# "my_image-2.png" when my_image.png held something not ours}
MY_IMAGE_NOTE = "my_image.json"
CHECKPOINT_NAME = "unet.pt"
DIGITS_NAME = "digits.pt"
# The models for notebooks 04-06 before 03 and 05 have run (diffusion_helpers/data/README.md).
DATA = Path(__file__).resolve().parents[1] / "data"
PRETRAINED = DATA / "pretrained_tiny.pt"
PRETRAINED_DIGITS = DATA / "pretrained_digits.pt"
STORED_IMAGE_SIZE = 256  # the learner's picture is kept at this side, resized later as needed
ENOUGH_STEPS = 250  # fewer than a minute of the 64 px recipe: soft samples (README)
DRIVE_MOUNT = "drive"  # Colab's own /content/drive
DRIVE_FOLDER = "ddpm-on-your-picture"  # in MyDrive


def start(
    keep_on_drive: bool = True,
    datasets: bool = False,
    device: Optional[Union[str, torch.device]] = None,
) -> TutorialSettings:
    """Every notebook's first call: the work folder (in Colab with ``keep_on_drive``, on Google
    Drive, or on the runtime when Drive cannot be mounted), then one line each for where it is
    and the device. Returns :func:`.settings.settings`, or with ``datasets``
    :func:`.settings.dataset_settings` (notebook 05)."""
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
    # Threads, once: the loops written out in the notebooks run on torch's own, and a thread
    # that waits for a core another program keeps busy slows every other one down.
    torch.set_num_threads(pick_threads(None, chosen.device))
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
    """The work folder, created and checked writable (``~`` is the home folder; an empty
    ``DIFFUSION_WORKDIR`` is refused)."""
    if WORKDIR_ENV in os.environ and not os.environ[WORKDIR_ENV].strip():
        raise ValueError(
            f"{WORKDIR_ENV} is set but empty: set it to a folder (such as ~/ddpm), or unset it "
            "to use outputs/ here."
        )
    return check_output_folder(work_dir_path().expanduser(), "tutorial's files")


def stored_image() -> tuple[Path, dict]:
    """The learner's picture (``my_image.png``, or the fresh name its note gives) and the note
    notebook 01 left beside it (:data:`MY_IMAGE_NOTE`; {} without one)."""
    folder = work_dir()
    try:
        note = json.loads((folder / MY_IMAGE_NOTE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        note = {}
    note = note if isinstance(note, dict) else {}
    name = note.get("file")
    return folder / (Path(name).name if isinstance(name, str) and name else MY_IMAGE_NAME), note


def checkpoint_path() -> Path:
    """Where notebook 03 (and ``python -m diffusion_helpers train``) saves the trained model."""
    return work_dir() / CHECKPOINT_NAME


def fresh_checkpoint_path(name: str = CHECKPOINT_NAME) -> Path:
    """``name`` in the work folder, for a run that starts afresh: an earlier checkpoint there is
    moved aside (:func:`.storage.outputs.keep_previous_checkpoint`) and one line says where."""
    path = work_dir() / name
    if os.path.lexists(path):
        print(f"The earlier checkpoint is kept as {keep_previous_checkpoint(path)}.")
    return path


def save_my_image(picture: torch.Tensor, info: Optional[ImageInfo] = None) -> Path:
    """Store the learner's picture [1, C, H, W] in [-1, 1] and where it came from (``info``);
    return the file. Never written through a link or over a file that is not ours
    (:func:`.storage.outputs.write_output`)."""
    folder = work_dir()
    path = write_output(folder / MY_IMAGE_NAME, lambda f: to_pil(picture).save(f, format="PNG"))
    sample = info is None or info.sample
    name = sample_image_path().name if sample else Path(info.name).name
    note = {"name": name, "sample": sample, "file": path.name}
    write_output(folder / MY_IMAGE_NOTE, lambda f: f.write(json.dumps(note).encode()), "note")
    return path


def my_image_name() -> Optional[str]:
    """The stored picture's name ("cat.jpg", "scene.png (the sample)"), or None without one."""
    path, note = stored_image()
    if not path.is_file():
        return None
    if not isinstance(note.get("name"), str):
        return path.name
    return f"{note['name']}{' (the sample)' if note.get('sample') else ''}"


def choose_my_image(
    widget: Any = None, *, path: Optional[Source] = None, dialog: bool = False
) -> tuple[torch.Tensor, ImageInfo]:
    """Notebook 01's choice (``path``, the upload in ``widget``, or Colab's file dialog; see
    :func:`.pictures.upload.pick_image`), stored for the later notebooks. With nothing chosen, a
    picture of the learner's stored before is kept; the sample is used only when none is stored
    or when asked for by path. One line says which. Returns the picture [1, 3, S, S] in [-1, 1]
    at :data:`STORED_IMAGE_SIZE`, and its ``ImageInfo``."""
    picture, info = pick_image(widget, path=path, dialog=dialog, size=STORED_IMAGE_SIZE,
                               verbose=False)  # fmt: skip
    stored, note = stored_image()
    if info.sample and stored.is_file() and not note.get("sample"):
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
    """The learner's picture [1, channels, size, size]: the one from notebook 01; without one,
    in Colab (with ``ask``) the one chosen now in the file dialog, kept; else the sample. One
    line says which."""
    path, _ = stored_image()
    if not path.is_file() and in_colab() and ask:
        print(
            f"No picture from notebook 01 in the work folder ({path.parent}): choose yours in "
            "the dialog below, or press Cancel to use the sample."
        )
        picture, info = pick_image(dialog=True, size=STORED_IMAGE_SIZE, verbose=False)
        path = save_my_image(picture, info)
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
    """``(model, schedule, x0)``: notebook 03's model, or the shipped one (trained on the
    sample) when there is none, in eval mode on ``device``; its schedule; and the picture it
    learned [1, C, S, S], to compare samples with. One line says which."""
    path = checkpoint_path()
    mine = path.exists()
    if not mine and quick_mode():  # the tests: a stand-in at quick mode's size, not 64 px
        S = settings(device)
        print("Quick mode, no model from notebook 03: an untrained stand-in at "
              f"{S.image_size} px (its samples are noise).")  # fmt: skip
        x0 = load_image(sample_image_path(), size=S.image_size)
        return S.model().to(S.device).eval(), S.schedule(), x0
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
    stored = my_image_name() or f"the sample picture {sample_image_path().name}"
    name = stored if same else "another picture than the one in the work folder"
    print(f"Using the model notebook 03 trained ({path}, {state['step']} steps) on {name}.")
    if state["step"] < ENOUGH_STEPS:
        print(
            f"Note: {state['step']} training steps are few (the 4-minute budget takes hundreds): "
            "the samples below may come out soft. Run notebook 03 with DIFFUSION_QUICK unset "
            "and its full budget, then come back."
        )
    if not same and isinstance(trained_on, torch.Tensor):
        x0 = trained_on.float()  # compare samples with what it learned
    return model, schedule, x0


def load_digits_model(
    device: Optional[Union[str, torch.device]] = None,
) -> tuple[UNet, NoiseSchedule, dict]:
    """Notebook 05's digits model, or the shipped one when there is none; one line says which."""
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
    """:func:`.sampling.load_for_sampling` of ``path`` if it exists, else of ``shipped``. A file
    there that we cannot read is named for what it is, with what to do: never to delete it."""
    if not path.exists():
        return load_for_sampling(shipped, device)
    try:
        return load_for_sampling(path, device)
    except CheckpointError as err:
        raise CheckpointError(
            f"{str(err).removesuffix(' ' + LOAD_ADVICE)} Move it out of the work folder: the "
            "notebooks then use the model shipped with the package, or train a new one there."
        ) from err

"""The files the notebooks pass on: the learner's picture (chosen in notebook 01), the model of
notebook 03 and the digits model of notebook 05, in one work folder (``outputs/`` in the
current directory unless ``DIFFUSION_WORKDIR`` says otherwise)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Union

import torch

from ..pictures.images import load_image, sample_image_path, to_pil
from ..runtime.environment import work_dir_path
from ..sampling import load_for_sampling
from ..schedule import NoiseSchedule
from ..storage.outputs import check_checkpoint_target, check_output_folder
from ..unet import UNet

MY_IMAGE_NAME = "my_image.png"


CHECKPOINT_NAME = "unet.pt"


# A small model trained on images/scene.png by the command in diffusion_helpers/data/README.md.
PRETRAINED = Path(__file__).resolve().parents[1] / "data" / "pretrained_tiny.pt"


# The learner's picture is kept at this side, so later notebooks can resize it as they need.
STORED_IMAGE_SIZE = 256


# The tiny net passed 25 dB on one 32 px picture after about 280 steps of batch 16 (train.py).
ENOUGH_STEPS = 250


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


def save_my_image(picture: torch.Tensor) -> Path:
    """Store the learner's picture (a tensor [1, C, H, W] in [-1, 1]) for the later notebooks."""
    path = my_image_path()
    to_pil(picture).save(path)
    return path


def my_image(size: int, channels: int = 3, verbose: bool = True) -> torch.Tensor:
    """The learner's picture from notebook 01 at ``size`` px, or the bundled sample if there is
    none yet (saying which, so nobody trains on the sample by mistake)."""
    path = my_image_path()
    if path.exists():
        source, note = path, f"Using your picture from notebook 01 ({path})."
    else:
        source = sample_image_path()
        note = f"Using the sample picture {source.name}: run 01_your_image to use your own."
    if verbose:
        print(note)
    return load_image(source, size=size, channels=channels)


def load_tutorial_model(
    device: Optional[Union[str, torch.device]] = None,
) -> tuple[UNet, NoiseSchedule, torch.Tensor]:
    """The model notebook 03 trained, or the shipped pretrained one when there is none yet.

    Returns:
        ``(model, schedule, x0)``: the U-Net in eval mode on ``device``, the schedule it was
        trained with, and the picture it was trained on [1, C, S, S] (to compare samples with).
    """
    path = checkpoint_path()
    mine = path.exists()
    if not mine:
        path = PRETRAINED
    model, schedule, state = load_for_sampling(path, device)
    cfg = model.config
    if mine:
        print(f"Using the model notebook 03 trained ({path}, {state['step']} steps).")
        if state["step"] < ENOUGH_STEPS:
            print(
                f"Warning: {state['step']} training steps are too few for a picture (it takes "
                f"about {ENOUGH_STEPS}): the samples below will look like noise. Run notebook 03 "
                "with DIFFUSION_QUICK unset and its full budget, then come back."
            )
        x0 = my_image(cfg.image_size, cfg.image_channels)
    else:
        print(
            f"No model from notebook 03 yet: using the pretrained one ({state['step']} steps "
            "on the sample picture). Run 03_training_the_unet to train on your own."
        )
        x0 = load_image(sample_image_path(), size=cfg.image_size, channels=cfg.image_channels)
    return model, schedule, x0

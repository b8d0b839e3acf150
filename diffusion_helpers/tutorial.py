"""What the notebooks and the demo share: sizes that fit the machine, and where files live.

Each notebook runs on its own, so the learner's picture (chosen in notebook 01) and the trained
model (saved by notebook 03) are passed on through files in one work folder, ``outputs/`` in
the current directory unless ``DIFFUSION_WORKDIR`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch

from .checkpoint import load_for_sampling
from .env import pick_device, quick_mode, work_dir_path
from .forward import add_noise
from .images import load_image, sample_image_path, to_pil
from .outputs import check_checkpoint_target, check_output_folder
from .schedule import NoiseSchedule
from .train import DEFAULT_MINUTES
from .unet import UNet

MY_IMAGE_NAME = "my_image.png"
CHECKPOINT_NAME = "unet.pt"
# A small model trained on images/scene.png by the command in diffusion_helpers/data/README.md.
PRETRAINED = Path(__file__).resolve().parent / "data" / "pretrained_tiny.pt"
# The learner's picture is kept at this side, so later notebooks can resize it as they need.
STORED_IMAGE_SIZE = 256
# The tiny net passed 25 dB on one 32 px picture after about 280 steps of batch 16 (train.py).
ENOUGH_STEPS = 250


@dataclass
class TutorialSettings:
    """Sizes and budgets for one run of the tutorial.

    Attributes:
        device: where the model trains and samples.
        quick: tiny sizes and few steps (``DIFFUSION_QUICK=1``: tests and CI).
        image_size: side of the training image in pixels.
        preset: the U-Net preset (see ``UNet.preset``).
        num_steps: T, the number of diffusion steps.
        train_minutes: wall-clock training budget (None: stop by ``train_steps``).
        train_steps: number of training steps (None: stop by ``train_minutes``).
        num_samples: how many images to sample at the end.
        ddim_steps: steps of the fast DDIM sampler.
    """

    device: torch.device
    quick: bool
    image_size: int
    preset: str
    num_steps: int
    train_minutes: Optional[float]
    train_steps: Optional[int]
    num_samples: int
    ddim_steps: int


def settings(device: Optional[Union[str, torch.device]] = None) -> TutorialSettings:
    """Pick sizes for this machine: 32 px and the tiny net in 4 minutes on a CPU, 64 px and the
    small net on a GPU, and tiny sizes in quick mode (the measured times are in the README).
    The 4-minute CPU budget is train.DEFAULT_MINUTES, measured to pass 25 dB PSNR at 32 px."""
    dev = pick_device(device)
    if quick_mode():
        return TutorialSettings(dev, True, 16, "tiny", 1000, None, 40, 2, 10)
    if dev.type == "cuda":
        return TutorialSettings(dev, False, 64, "small", 1000, DEFAULT_MINUTES, None, 8, 50)
    return TutorialSettings(dev, False, 32, "tiny", 1000, DEFAULT_MINUTES, None, 8, 50)


def dataset_settings(device: Optional[Union[str, torch.device]] = None) -> TutorialSettings:
    """Sizes for learning a dataset (notebook 05, ``train --data``): 16 px digits and the tiny
    net in DEFAULT_MINUTES on a CPU, 32 px and the small net in 2 minutes on a GPU, tiny in
    quick mode. ``num_samples`` is one row of ten digits."""
    dev = pick_device(device)
    if quick_mode():
        return TutorialSettings(dev, True, 16, "tiny", 1000, None, 30, 10, 10)
    if dev.type == "cuda":
        return TutorialSettings(dev, False, 32, "small", 1000, 2.0, None, 20, 50)
    return TutorialSettings(dev, False, 16, "tiny", 1000, DEFAULT_MINUTES, None, 20, 50)


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


def noise_prediction_examples(
    model: torch.nn.Module,
    x0: torch.Tensor,
    schedule: NoiseSchedule,
    timesteps: Sequence[int],
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Noise ``x0`` [1, C, H, W] to each of ``timesteps`` (eq. 4) and ask the model for the noise.

    Returns:
        ``(x_t, true noise, predicted noise, t)``, each with one row per timestep, on the CPU:
        the arguments of :func:`.viz.plot_noise_prediction`.
    """
    t = torch.tensor([int(s) for s in timesteps], dtype=torch.long)
    x = x0[:1].expand(len(t), *x0.shape[1:])
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed), dtype=x.dtype)
    x_t, _ = add_noise(x, t, schedule, noise=eps)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    with torch.no_grad():
        predicted = model(x_t.to(device), t.to(device)).float().cpu()
    model.train(was_training)
    return x_t, eps, predicted, t

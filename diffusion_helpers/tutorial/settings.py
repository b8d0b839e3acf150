"""What the notebooks and the demo share: sizes that fit the machine, and where files live.

Each notebook runs on its own, so the learner's picture (chosen in notebook 01) and the trained
model (saved by notebook 03) are passed on through files in one work folder, ``outputs/`` in
the current directory unless ``DIFFUSION_WORKDIR`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

from ..runtime.device import pick_device
from ..runtime.environment import quick_mode
from ..train import DEFAULT_MINUTES


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

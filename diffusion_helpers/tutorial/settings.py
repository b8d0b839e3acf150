"""Sizes and budgets that fit the machine: what the notebooks and the demo train and sample.

The learner's picture is trained at 64 px on a CPU and 128 px on a GPU, each in the same
4-minute budget (:data:`.train.DEFAULT_MINUTES`); a dataset (the digits) at 16 px on a CPU and
32 px on a GPU; quick mode (``DIFFUSION_QUICK=1``, the tests) at 16 px in a few steps. A
learner can ask for another side (``settings(size=128)``): the budget then grows with the
pixels, so that the net takes the steps the default size takes, and one line says how long
that will be. Measured figures are in the README (``bench/picture_size.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

from ..checks.values import whole_number
from ..reverse import FAST_SAMPLER, Sampler
from ..runtime.device import pick_device
from ..runtime.environment import quick_mode
from ..schedule import NoiseSchedule
from ..training import DEFAULT_MINUTES
from ..unet import MAX_SIDE, PRESETS, UNet, sides_near

# The side a picture is trained at by default, and the U-Net for it: the tiny net at 64 px on a
# CPU, the small net at 128 px on a GPU (an estimate: not measured on a GPU). The net sees where
# each pixel is (position_octaves, :func:`position_octaves`), which measured decisive for one
# picture (README, bench/picture_recipe.py); a patch stem or a shifted schedule did not pay.
PICTURE_SIDE = {"cpu": 64, "cuda": 128}
PRESET = {"cpu": "tiny", "cuda": "small"}
DATASET_SIDE = {"cpu": 16, "cuda": 32}
DATASET_MINUTES = {"cpu": DEFAULT_MINUTES, "cuda": 2.0}
QUICK_SAMPLER = Sampler("dpm_solver", 10, eta=1.0)  # quick mode: every line, not a good picture


@dataclass
class TutorialSettings:
    """Sizes and budgets for one run of the tutorial.

    Attributes:
        device: where the model trains and samples.
        quick: tiny sizes and few steps (``DIFFUSION_QUICK=1``: tests and CI).
        image_size: side of the training pictures in pixels.
        preset, patch_size: the U-Net (:meth:`.unet.UNet.preset`) and its patch stem (1: none).
        position_octaves: how much the U-Net is told of where each pixel is (0: nothing).
        num_steps: T, the number of diffusion steps; shift: the schedule's resolution shift.
        train_minutes: wall-clock training budget (None: stop by ``train_steps``).
        train_steps: number of training steps (None: stop by ``train_minutes``).
        num_samples: how many pictures to sample at the end.
        ddim_steps: steps of the fast DDIM sampler.
        sampler: the sampler wherever DDPM's 1000 steps are not the lesson
            (:data:`.sampling.FAST_SAMPLER`; 10 steps in quick mode).
        hand_steps, hand_samples: the hand-written loops of notebooks 03 (training steps) and
            04 (pictures sampled by Algorithm 2); one_screen_steps: 04's whole DDPM on one screen.
        experiments, experiment_steps, experiment_samples, experiment_sampler: notebook 03's
            what-if runs: whether they run without being asked (in quick mode, so the tests
            run them), their training steps, samples and sampler.
        per_class, sweep_per_class, classifier_steps: notebook 05's samples per digit, the
            guidance sweep's, and the digit classifier's training steps.
        vary_size, vary_minutes, vary_steps, vary_sampler: notebook 06's variations: the
            picture's side, the patch model's budget and its sampler.
        point_steps: training steps of notebook 07's point nets (3000: under a minute each).
        flow_minutes, flow_steps: the budget of each of notebook 07's two U-Nets on the
            learner's picture, one trained as DDPM and one by flow matching.
        posterior_samples: draws of notebook 04's check of the posterior by sampling.
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
    patch_size: int = 1
    shift: float = 1.0
    position_octaves: int = 0
    sampler: Sampler = FAST_SAMPLER
    hand_steps: int = 300  # about a minute on a 2-core CPU at 64 px
    hand_samples: int = 2
    one_screen_steps: int = 600  # 04's DDPM on one screen, 16 px: under a minute on a CPU
    experiments: bool = False
    experiment_steps: int = 300  # 16 px pictures: about half a minute a model on a 2-core CPU
    experiment_samples: int = 4
    experiment_sampler: Sampler = Sampler()
    per_class: int = 6
    sweep_per_class: int = 10
    classifier_steps: int = 400
    vary_size: int = 48  # 48 px: about 4 minutes of the patch model on a CPU
    vary_minutes: Optional[float] = DEFAULT_MINUTES
    vary_steps: Optional[int] = None
    vary_sampler: Sampler = Sampler("ddim", 100, eta=1.0)
    point_steps: int = 3000
    flow_minutes: Optional[float] = DEFAULT_MINUTES / 2
    flow_steps: Optional[int] = None
    posterior_samples: int = 400_000

    def model(self, channels: int = 3, num_classes: Optional[int] = None, seed: int = 0) -> UNet:
        """A fresh U-Net for these sizes (seeded), for ``channels``-channel pictures."""
        return UNet.preset(self.preset, image_channels=channels, image_size=self.image_size,
                           patch_size=self.patch_size, num_classes=num_classes, seed=seed,
                           position_octaves=self.position_octaves)  # fmt: skip

    def schedule(self, kind: str = "linear") -> NoiseSchedule:
        """The noise schedule for these sizes: T steps of ``kind``, with the shift."""
        return NoiseSchedule(self.num_steps, kind, shift=self.shift)


def settings(
    device: Optional[Union[str, torch.device]] = None,
    size: Optional[int] = None,
    say: bool = True,
) -> TutorialSettings:
    """Sizes for one picture on this machine: 64 px and the tiny net on a CPU, 128 px and the
    small net on a GPU, each in DEFAULT_MINUTES; 16 px in a few steps in quick mode.

    ``size``: another side (a whole number the net can halve). The budget becomes
    DEFAULT_MINUTES x (size / default side)^2 (the U-Net's work grows with the pixels, so that
    is about the same number of steps), and one line says so (``say``): 128 px on a CPU is a
    16-minute run. A side whose run would take more than a day is refused, with the minutes.
    """
    dev = pick_device(device)
    kind = "cuda" if dev.type == "cuda" else "cpu"
    if size is not None:
        check_side(size, PRESET[kind])
    if quick_mode():
        side = size or 16
        return quick_settings(dev, side, train_steps=40, num_samples=2,
                              position_octaves=position_octaves(side))  # fmt: skip
    side = PICTURE_SIDE[kind]
    minutes = DEFAULT_MINUTES
    if size is not None and size != side:
        minutes = round(DEFAULT_MINUTES * (size / side) ** 2, 1)
        if minutes > MAX_MINUTES:
            largest = int(side * (MAX_MINUTES / DEFAULT_MINUTES) ** 0.5) // 16 * 16
            raise ValueError(
                f"size {size} on this {kind.upper()} would need a {minutes:,.0f}-minute training "
                f"run to take the steps {side} px takes in {DEFAULT_MINUTES:g}: more than a day. "
                f"Use a size up to {largest}."
            )
        if say:
            print(f"{size} px on this {kind.upper()}: a {minutes:g}-minute training run, to take "
                  f"the steps {side} px takes in {DEFAULT_MINUTES:g} (the work grows with the "
                  "pixels).")  # fmt: skip
    return TutorialSettings(dev, False, size or side, PRESET[kind], 1000, minutes, None, 8, 50,
                            position_octaves=position_octaves(size or side))  # fmt: skip


def position_octaves(side: int) -> int:
    """Octaves of the position features for a picture of ``side`` px: log2(side) - 1, so the
    finest (pi 2^j x) repeats every 4 pixels: 5 at 64 px (measured, bench/picture_recipe.py)."""
    return max(1, side.bit_length() - 2)


MAX_MINUTES = 24 * 60  # a training run longer than a day is not a tutorial's


def check_side(size: object, preset: str) -> int:
    """``size`` if a net of ``preset`` can take pictures of that side (a whole number from 8
    that its levels can halve), else ``ValueError`` naming sides that work."""
    size = whole_number(size, "size", 8, MAX_SIDE, " Try 32, 64 or 128.")
    step = 2 ** (len(PRESETS[preset]["channel_mults"]) - 1)
    if size % step:
        near = sides_near(size, step, smallest=8)
        raise ValueError(
            f"size {size} is not divisible by {step}: the {preset} U-Net halves the picture "
            f"{step.bit_length() - 1} times. Try {near}."
        )
    return size


def dataset_settings(device: Optional[Union[str, torch.device]] = None) -> TutorialSettings:
    """Sizes for learning a dataset (notebook 05, ``train --data``): 16 px digits and the tiny
    net in DEFAULT_MINUTES on a CPU, 32 px and the small net in 2 minutes on a GPU, tiny in
    quick mode. ``num_samples`` is one row of ten digits."""
    dev = pick_device(device)
    kind = "cuda" if dev.type == "cuda" else "cpu"
    if quick_mode():
        return quick_settings(
            dev, 16, train_steps=30, num_samples=10, sampler=Sampler("dpm_solver", 10)
        )
    # DPM-Solver++ in 20 steps, deterministic: on the digits model it scored as DDIM in 50 did
    # (README), for 2.5 times less work
    return TutorialSettings(dev, False, DATASET_SIDE[kind], PRESET[kind], 1000,
                            DATASET_MINUTES[kind], None, 20, 50, sampler=Sampler("dpm_solver"))  # fmt: skip


def quick_settings(
    device: torch.device, size: int, train_steps: int, num_samples: int,
    sampler: Sampler = QUICK_SAMPLER, position_octaves: int = 0,
) -> TutorialSettings:  # fmt: skip
    """Quick mode (the tests): tiny sizes, a few steps of everything, every line run."""
    return TutorialSettings(
        device, True, size, "tiny", 1000, None, train_steps, num_samples, 10, sampler=sampler,
        hand_steps=3, hand_samples=1, one_screen_steps=3, experiments=True, experiment_steps=2,
        experiment_samples=1, experiment_sampler=Sampler("ddim", 10), per_class=1,
        sweep_per_class=2, classifier_steps=50, vary_size=16, vary_minutes=None, vary_steps=10,
        vary_sampler=Sampler("ddim", 10, eta=1.0), point_steps=30, flow_minutes=None,
        flow_steps=20, posterior_samples=100_000, position_octaves=position_octaves,
    )  # fmt: skip

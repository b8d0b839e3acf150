"""Variations of one picture: a diffusion model of its patches (SinDDM / SinFusion in spirit).

A U-Net trained on the whole picture memorises it (notebook 03): every sample is the picture.
Train it instead on small random crops, with a network that only ever sees a window smaller
than the picture (its receptive field), and it learns what the picture's *patches* look like,
not where they are. Run the reverse process on a canvas of any size and every window of the
result looks like some part of the picture, while the whole is a new arrangement: a
variation (Kulikov et al. 2023, "SinDDM"; Nikankin et al. 2023, "SinFusion").

:class:`RandomCrops` is the training set, :func:`patch_model` the net (:func:`receptive_field`
measures its window), :func:`train_variations` is :func:`..training.train` on the crops, and
:func:`sample_variations` is :func:`..sampling.sample` on a canvas of any size.

Whether the samples are new, have the picture's look and vary is measured in
:mod:`..metrics.copying` (:func:`~..metrics.copying.copy_psnr`, ``patch_distance``,
``sample_spread``; ``bench/vary_quality.py``).
"""

from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn
from torch.utils.data import Dataset

from ..checks.tensors import one_picture
from ..reverse import Sampler, SampleResult
from ..sampling import sample
from ..schedule import NoiseSchedule
from ..training import TrainResult, train
from ..unet import UNet, UNetConfig

# Items of RandomCrops: more than any run draws (5 minutes on a CPU are ~50,000 crops), so
# crops repeat no more often than their positions do.
DEFAULT_COUNT = 100_000
# Crops per training step: every design choice in patch_model was measured at 16 (on a CPU
# the number of steps counts most, as for one picture: see data.default_batch_size).
BATCH = 16


class RandomCrops(Dataset):
    """Crops ``crop`` x ``crop`` of one picture, each at a position fixed by its index.

    Item i is the crop whose top-left corner (y, x) is drawn uniformly from every position
    that fits, by Python's ``random.Random`` seeded with the string "seed/i"; with ``flip=True`` the same draw
    also mirrors it left-right with probability 1/2. So ``dataset[i]`` is the same crop on
    every call, and :func:`..training.train`, which draws the indices with its own seeded generator,
    resumes from a checkpoint exactly. With ``count`` items the (H - crop + 1)(W - crop + 1)
    positions are all drawn many times over.

    Args:
        picture: [1, C, H, W] (or [C, H, W]) in [-1, 1], H and W at least ``crop``.
        crop: the side of a crop in pixels (the model's ``image_size``).
        count: the number of items (distinct indices), default :data:`DEFAULT_COUNT`.
        flip: mirror half of the crops left-right (more variety; wrong for writing).
        seed: picks the positions; the same seed gives the same dataset.
    Items: float32 [C, crop, crop] in [-1, 1].
    """

    def __init__(
        self,
        picture: torch.Tensor,
        crop: int,
        count: int = DEFAULT_COUNT,
        *,
        flip: bool = False,
        seed: int = 0,
    ) -> None:
        picture = one_picture(picture)
        _, _, h, w = picture.shape
        if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= min(h, w):
            raise ValueError(
                f"crop must be an integer side between 1 and the picture's {min(h, w)} px, "
                f"got {crop!r}."
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}.")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an integer, got {seed!r}.")
        self.picture = picture[0].detach().float().cpu()
        self.crop, self.count, self.flip, self.seed = crop, count, bool(flip), seed

    def __len__(self) -> int:  # noqa: D105
        return self.count

    def where(self, i: int) -> tuple[int, int, bool]:
        """(y, x, mirrored) of item ``i``: the top-left corner of its crop and its flip."""
        if not 0 <= i < self.count:
            raise IndexError(f"index {i} is out of range for {self.count} crops.")
        _, h, w = self.picture.shape
        # One stream per (seed, i): a str seed goes through SHA-512, the same on every machine.
        rng = random.Random(f"{self.seed}/{i}")
        y, x = rng.randrange(h - self.crop + 1), rng.randrange(w - self.crop + 1)
        mirrored = self.flip and rng.random() < 0.5
        return y, x, mirrored

    def __getitem__(self, i: int) -> torch.Tensor:  # noqa: D105
        y, x, mirrored = self.where(int(i))
        patch = self.picture[:, y : y + self.crop, x : x + self.crop]
        return patch.flip(-1) if mirrored else patch


def patch_model(
    crop: int,
    channels: int = 3,
    *,
    base_channels: int = 48,
    channel_mults: tuple[int, ...] = (1, 2),
    num_res_blocks: int = 0,
    seed: Optional[int] = None,
) -> UNet:
    """A U-Net that sees only a window of the picture: no attention, two levels, few blocks.

    Each output pixel of a convolutional net depends on a square window of the input, its
    receptive field; attention, which looks everywhere, is left out. The default stacks
    conv_in, one downsampling, the two middle blocks and one block per level on the way up
    (no block on the way down): a window of 37 x 37 px (:func:`receptive_field`), three
    quarters of a 48 px picture, and 0.54 M parameters. GroupNorm's statistics span the whole
    canvas, but they carry a mean and a variance per group of channels, not a pattern
    (tests/test_vary.py: rearranging the input outside the window moves an output by 0.2% of
    what the same change inside it does).

    Compared on the scene at 48 px (24 px crops, 1000 steps of 16, DDIM-100 samples, looked at
    and measured as in bench/vary_quality.py): this net drew whole houses, hills and sky bands;
    one level (window 25 px, base 32 or 64) drew only streaks and blobs of the right colours;
    one more block per level (window 61 px, larger than the picture) was a little sharper.

    Args:
        crop: the side of the training crops (the config's ``image_size``); the net runs on
            any side divisible by 2^(levels-1).
        channels: 1 or 3.
        base_channels, channel_mults, num_res_blocks: as in :class:`.unet.UNetConfig`.
        seed: seeds the initial weights.
    """
    config = UNetConfig(
        image_channels=channels,
        base_channels=base_channels,
        channel_mults=tuple(channel_mults),
        attention_resolutions=(),
        image_size=crop,
        num_res_blocks=num_res_blocks,
    )
    return UNet(config, seed=seed)


def receptive_field(model: UNet) -> int:
    """The side of the window of the input that one output pixel depends on, measured.

    The gradient of the centre output pixel with respect to the input (summed over channels)
    is non-zero exactly on that window. Two things would hide it, and are removed on a copy of
    the model: the last convolution starts at zero (so a fresh net has no gradient at all; it
    is set to ones), and GroupNorm's statistics spread a tiny gradient over the whole input
    (each GroupNorm is replaced by the identity: they carry a mean and a variance, no pattern).
    The canvas starts at 64 px and doubles until the window does not reach its border.
    """
    net = copy.deepcopy(model).float().cpu().eval()
    for name, module in list(net.named_modules()):
        if isinstance(module, nn.GroupNorm):
            parent = net.get_submodule(name.rsplit(".", 1)[0]) if "." in name else net
            setattr(parent, name.rsplit(".", 1)[-1], nn.Identity())
    nn.init.ones_(net.conv_out.weight)
    labels = None if net.config.num_classes is None else torch.zeros(1, dtype=torch.long)
    size = 32
    while True:
        size *= 2
        x = torch.zeros(1, net.config.image_channels, size, size, requires_grad=True)
        net(x, torch.full((1,), 500), labels)[0, :, size // 2, size // 2].sum().backward()
        touched = x.grad[0].abs().sum(0) > 0  # [size, size]
        rows, cols = touched.any(1).nonzero(), touched.any(0).nonzero()
        if rows.min() > 0 and cols.min() > 0 and rows.max() < size - 1 and cols.max() < size - 1:
            return int(max(rows.max() - rows.min(), cols.max() - cols.min())) + 1


def train_variations(
    picture: torch.Tensor,
    schedule: NoiseSchedule,
    *,
    crop: Optional[int] = None,
    model: Optional[UNet] = None,
    flip: bool = False,
    steps: Optional[int] = None,
    minutes: Optional[float] = None,
    seed: int = 0,
    device: Optional[Union[str, torch.device]] = None,
    checkpoint: Optional[Union[str, Path]] = None,
    **train_settings: object,
) -> TrainResult:
    """Train a patch model on random crops of ``picture`` (DDPM Algorithm 1 on the crops).

    The same :func:`..training.train` as for the whole picture, with two changes: the data is
    ``RandomCrops(picture, crop, flip=flip, seed=seed)``, and the model is
    ``patch_model(crop, ...)`` (or the one given).

    Args:
        picture: [1, C, H, W] in [-1, 1].
        schedule: the noise schedule (keep it for :func:`sample_variations`).
        crop: side of the crops (default: half the picture's shorter side, rounded down to
            even); ignored when ``model`` is given (its ``image_size`` is the crop).
        model: a U-Net to train (default :func:`patch_model` seeded with ``seed``).
        flip: see :class:`RandomCrops`.
        steps, minutes, seed, device, checkpoint, train_settings: as for :func:`..training.train`
            (fields of :class:`.train.TrainConfig`); ``batch_size`` defaults to :data:`BATCH`.
    Returns:
        :class:`.train.TrainResult`; ``.model`` is the (EMA) patch model to sample with.
    """
    picture = one_picture(picture)
    if model is None:
        side = min(picture.shape[-2:])
        crop = crop if crop is not None else max(2, side // 2 // 2 * 2)
        model = patch_model(crop, picture.shape[1], seed=seed)
    crops = RandomCrops(picture, model.config.image_size, flip=flip, seed=seed)
    settings = {"batch_size": BATCH, **train_settings}
    return train(model, crops, schedule, steps=steps, minutes=minutes, seed=seed, device=device,
                 checkpoint=checkpoint, **settings)  # fmt: skip


def sample_variations(
    model: UNet,
    schedule: NoiseSchedule,
    n: int = 4,
    size: Optional[int] = None,
    sampler: Optional[Sampler] = None,
    *,
    seed: Optional[int] = None,
    every: Optional[int] = None,
    progress: bool = True,
    **options: Any,
) -> SampleResult:
    """Draw ``n`` variations on a square canvas of side ``size`` (the reverse process of
    :func:`..sampling.sample`, unchanged: the patch model simply runs on a larger input).

    Args:
        model: a patch model (:func:`train_variations`).
        size: the side of the canvas in pixels, divisible by 2^(levels-1) (default: the
            model's crop). Sizes larger than the picture give a wider view of the same
            patches. Square only: :class:`.unet.UNet` checks that H == W.
        sampler, options, seed, every, progress: as for :func:`..sampling.sample`.
    Returns:
        A :class:`.sampling.SampleResult`, ``.images`` [n, C, size, size].
    """
    size = model.config.image_size if size is None else size  # the U-Net checks the side
    return sample(model, schedule, n, sampler, image_size=size, seed=seed, every=every,
                  progress=progress, **options)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Is it a variation? Three measurements.
# ---------------------------------------------------------------------------------------------

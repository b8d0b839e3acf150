"""Variations of one picture: a diffusion model of its patches (SinDDM / SinFusion in spirit).

A U-Net trained on the whole picture memorises it (notebook 03): every sample is the picture.
Train it instead on small random crops, with a network that only ever sees a window smaller
than the picture (its receptive field), and it learns what the picture's *patches* look like,
not where they are. Run the reverse process on a canvas of any size and every window of the
result looks like some part of the picture, while the whole is a new arrangement: a
variation (Kulikov et al. 2023, "SinDDM"; Nikankin et al. 2023, "SinFusion").

:class:`RandomCrops` is the training set, :func:`patch_model` the net (:func:`receptive_field`
measures its window), :func:`train_variations` is :func:`.train.train` on the crops, and
:func:`sample_variations` is :func:`.sampling.sample` on a canvas of any size.

Three questions about the samples, each answered by a number (``bench/vary_quality.py``):

- not a copy? :func:`copy_psnr`: the best PSNR of the picture, its mirror image and small
  shifts of them against the sample (below 20 dB: not a copy);
- the same look? :func:`patch_distance` (every 7x7 patch of the sample against its nearest
  patch of the picture), beside :func:`held_out_patch_distance` (the same for parts of the
  picture that were held out), and :func:`colour_distance` (colour histograms);
- varied? :func:`sample_spread`: the typical difference between two samples.
"""

from __future__ import annotations

import copy
import math
import random
from pathlib import Path
from typing import Optional, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset

from .evaluate import diversity
from .forward import check_image
from .sampling import Method, SampleResult, sample
from .schedule import NoiseSchedule
from .train import TrainResult, train
from .unet import UNet, UNetConfig

# Items of RandomCrops: more than any run draws (5 minutes on a CPU are ~50,000 crops), so
# crops repeat no more often than their positions do.
DEFAULT_COUNT = 100_000
# Patches of 7x7 pixels, as GPNN (Granot et al. 2022) compares single-image samples with their
# picture: a seventh of a 48 px picture, small enough that a new arrangement of the picture's
# parts has near copies of nearly all its patches.
PATCH = 7
# Colour histograms: 8 bins per channel (512 colours for RGB), coarse enough that a handful of
# samples at 48 px (thousands of pixels) fill them without holes.
COLOUR_BINS = 8
# Small shifts the copy check allows for (px): a copy moved by up to this much still counts.
SHIFT = 4
# Crops per training step: every design choice in patch_model was measured at 16 (on a CPU
# the number of steps counts most, as for one picture: see data.default_batch_size).
BATCH = 16


class RandomCrops(Dataset):
    """Crops ``crop`` x ``crop`` of one picture, each at a position fixed by its index.

    Item i is the crop whose top-left corner (y, x) is drawn uniformly from every position
    that fits, by Python's ``random.Random`` seeded with the string "seed/i"; with ``flip=True`` the same draw
    also mirrors it left-right with probability 1/2. So ``dataset[i]`` is the same crop on
    every call, and :func:`.train.train`, which draws the indices with its own seeded generator,
    resumes from a checkpoint exactly. With ``count`` items the (H - crop + 1)(W - crop + 1)
    positions are all drawn many times over (``positions()`` lists them).

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
        picture = _one_picture(picture, "picture")
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

    def positions(self) -> int:
        """How many different top-left corners a crop can have."""
        return (self.picture.shape[1] - self.crop + 1) * (self.picture.shape[2] - self.crop + 1)


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

    The same :func:`.train.train` as for the whole picture, with two changes: the data is
    ``RandomCrops(picture, crop, flip=flip, seed=seed)``, and the model is
    ``patch_model(crop, ...)`` (or the one given).

    Args:
        picture: [1, C, H, W] in [-1, 1].
        schedule: the noise schedule (keep it for :func:`sample_variations`).
        crop: side of the crops (default: half the picture's shorter side, rounded down to
            even); ignored when ``model`` is given (its ``image_size`` is the crop).
        model: a U-Net to train (default :func:`patch_model` seeded with ``seed``).
        flip: see :class:`RandomCrops`.
        steps, minutes, seed, device, checkpoint, train_settings: as for :func:`.train.train`
            (fields of :class:`.train.TrainConfig`); ``batch_size`` defaults to :data:`BATCH`.
    Returns:
        :class:`.train.TrainResult`; ``.model`` is the (EMA) patch model to sample with.
    """
    picture = _one_picture(picture, "picture")
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
    *,
    method: Method = "ddpm",
    steps: Optional[int] = None,
    eta: float = 0.0,
    seed: Optional[int] = None,
    every: Optional[int] = None,
    progress: bool = True,
) -> SampleResult:
    """Draw ``n`` variations on a square canvas of side ``size`` (the reverse process of
    :func:`.sampling.sample`, unchanged: the patch model simply runs on a larger input).

    Args:
        model: a patch model (:func:`train_variations`).
        size: the side of the canvas in pixels, divisible by 2^(levels-1) (default: the
            model's crop). Sizes larger than the picture give a wider view of the same
            patches. Square only: :class:`.unet.UNet` checks that H == W.
        method, steps, eta, seed, every, progress: as for :func:`.sampling.sample`.
    Returns:
        A :class:`.sampling.SampleResult`, ``.images`` [n, C, size, size].
    """
    size = model.config.image_size if size is None else size  # the U-Net checks the side
    return sample(model, schedule, n=n, image_size=size, method=method, steps=steps, eta=eta,
                  seed=seed, every=every, progress=progress)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Is it a variation? Three measurements.
# ---------------------------------------------------------------------------------------------


def copy_psnr(samples: torch.Tensor, picture: torch.Tensor, shift: int = SHIFT) -> torch.Tensor:
    """The best PSNR (dB) of each sample against the picture, its mirror image, and shifts.

    The smaller of the two (sample or picture), less a border of ``shift`` px, is slid over
    every position of the larger one, and over its mirror image; PSNR = 10 log10(1 / MSE) on
    [0, 1] pixels over the window (as :func:`.sampling.psnr`). For a sample the size of the
    picture these are the shifts by up to ``shift`` px in each direction; for a larger canvas,
    every place the picture could have been pasted. A copy scores above 30 dB; a variation
    below 20 dB.

    Args:
        samples: [n, C, h, w] in [-1, 1]; picture: [1, C, H, W] in [-1, 1]; one of the two
            at least as tall and as wide as the other.
        shift: the border in pixels (0 compares whole images of the same size, or slides the
            whole smaller one).
    Returns:
        float64 [n] on the CPU.
    """
    picture = _one_picture(picture, "picture", samples)
    h, w = samples.shape[-2:]
    H, W = picture.shape[-2:]
    if not ((h <= H and w <= W) or (h >= H and w >= W)):
        raise ValueError(
            f"samples ({h}x{w}) and picture ({H}x{W}) must nest: one at least as tall and as "
            "wide as the other."
        )
    x = (samples.detach().double().cpu() + 1) / 2  # [0, 1] pixels, as psnr()
    p = (picture[0].detach().double().cpu() + 1) / 2
    inner = slice(shift, -shift if shift else None)
    best = []
    for image in x:
        mse = []
        for ref in (p, p.flip(-1)):
            small, large = (image, ref) if h * w < H * W else (ref, image)
            mse.append(_best_window_mse(small[:, inner, inner], large).min())
        best.append(torch.stack(mse).min())
    return 10 * torch.log10(1.0 / torch.stack(best))


def _best_window_mse(small: torch.Tensor, large: torch.Tensor) -> torch.Tensor:
    """MSE of ``small`` [C, h, w] against every h x w window of ``large`` [C, H, W], by
    sum (a - b)^2 = sum a^2 - 2 sum a b + sum b^2 with convolutions: [H - h + 1, W - w + 1]."""
    c, h, w = small.shape
    big = large[None]
    cross = F.conv2d(big, small[None])[0, 0]  # sum a b at every offset
    window_sq = F.conv2d(big**2, torch.ones(1, c, h, w, dtype=big.dtype))[0, 0]
    return ((window_sq - 2 * cross + (small**2).sum()) / small.numel()).clamp_min(0.0)


def patches(images: torch.Tensor, patch: int = PATCH) -> torch.Tensor:
    """Every ``patch`` x ``patch`` window of each image, flattened: [n * L, C * patch^2]
    (L = (H - patch + 1)(W - patch + 1) windows per image, stride 1)."""
    check_image(images, "images")
    cols = F.unfold(images.detach().float().cpu(), patch)  # [n, C p^2, L]
    return cols.transpose(1, 2).reshape(-1, cols.shape[1])


def _nearest_rms(queries: torch.Tensor, pool: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """For each row of ``queries`` [q, D], the RMS difference to its nearest row of ``pool``
    [m, D]: min_j ||q_i - p_j||_2 / sqrt(D). Returns float32 [q]."""
    best = [torch.cdist(block, pool).min(dim=1).values for block in queries.split(chunk)]
    return torch.cat(best) / math.sqrt(queries.shape[1])


def patch_distance(
    samples: torch.Tensor, picture: torch.Tensor, patch: int = PATCH, mirror: bool = False
) -> torch.Tensor:
    """Mean over every ``patch`` x ``patch`` window of each sample of the RMS difference (in
    [-1, 1] units) to the nearest window of the picture: ~0 when every bit of the sample
    appears somewhere in the picture (a copy, or a new arrangement of its parts); large when
    the sample holds things the picture has nowhere (noise, mush, other colours).

    Args:
        samples: [n, C, h, w]; picture: [1, C, H, W]; both in [-1, 1], sides >= ``patch``.
        mirror: also count the mirrored picture's windows (for models trained with flips).
    Returns:
        float32 [n].
    """
    picture = _one_picture(picture, "picture", samples)
    pool = patches(torch.cat([picture, picture.flip(-1)]) if mirror else picture, patch)
    per_sample = [_nearest_rms(patches(s[None], patch), pool).mean() for s in samples]
    return torch.stack(per_sample)


def held_out_patch_distance(
    picture: torch.Tensor, side: Optional[int] = None, patch: int = PATCH
) -> float:
    """:func:`patch_distance` of the picture's own held-out parts: the yardstick for samples.

    For each of the four corner crops of side ``side`` (default half the picture), the mean
    distance of its windows to the nearest window of the picture that does not overlap the
    crop; the mean over the four. A new part of the same picture scores this much: a sample
    near it has the picture's look, one far above it does not, one far below it may be a copy.
    """
    picture = _one_picture(picture, "picture")
    _, _, h, w = picture.shape
    side = side or min(h, w) // 2
    if not patch <= side <= min(h, w) - patch:
        raise ValueError(f"side must be in {patch}..{min(h, w) - patch} (room for {patch} px "
                         f"windows inside and outside the crop), got {side}.")  # fmt: skip
    windows = patches(picture, patch)  # row-major over top-left corners (y, x)
    ys, xs = torch.meshgrid(torch.arange(h - patch + 1), torch.arange(w - patch + 1), indexing="ij")
    ys, xs = ys.flatten(), xs.flatten()
    scores = []
    for y0, x0 in ((0, 0), (0, w - side), (h - side, 0), (h - side, w - side)):
        inside = (ys >= y0) & (ys <= y0 + side - patch) & (xs >= x0) & (xs <= x0 + side - patch)
        overlaps = (ys > y0 - patch) & (ys < y0 + side) & (xs > x0 - patch) & (xs < x0 + side)
        scores.append(float(_nearest_rms(windows[inside], windows[~overlaps]).mean()))
    return sum(scores) / len(scores)


def colour_histogram(images: torch.Tensor, bins: int = COLOUR_BINS) -> torch.Tensor:
    """The share of pixels of each colour: [n, bins^C], each row summing to 1 (each channel's
    [-1, 1] cut into ``bins`` equal bins; a colour is one bin per channel)."""
    check_image(images, "images")
    n, c = images.shape[:2]
    level = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * bins).long().clamp_max(bins - 1)
    weights = bins ** torch.arange(c - 1, -1, -1)
    index = (level * weights[None, :, None, None]).sum(1).flatten(1)  # [n, H W] colour numbers
    hist = torch.zeros(n, bins**c).scatter_add_(1, index, torch.ones(index.shape))
    return hist / index.shape[1]


def colour_distance(
    samples: torch.Tensor, picture: torch.Tensor, bins: int = COLOUR_BINS
) -> torch.Tensor:
    """Total-variation distance between the colour histogram of each sample and the picture's:
    half the sum of |share differences|, 0 = the same colours in the same amounts, 1 = no
    colour in common. float32 [n]."""
    picture = _one_picture(picture, "picture", samples)
    mine, theirs = colour_histogram(samples, bins), colour_histogram(picture, bins)
    return 0.5 * (mine - theirs).abs().sum(1)


def sample_spread(samples: torch.Tensor) -> float:
    """How different the samples are from each other: the mean over pairs of the RMS difference
    per value, :func:`.evaluate.diversity` / sqrt(C H W), in [-1, 1] units (0: all the same)."""
    check_image(samples, "samples")
    return diversity(samples) / math.sqrt(samples[0].numel())


def _one_picture(
    picture: torch.Tensor, name: str, samples: Optional[torch.Tensor] = None
) -> torch.Tensor:
    """``picture`` as [1, C, H, W] (a [C, H, W] gains the batch axis), checked, and with as many
    channels as ``samples`` [n, C, h, w] if they are given."""
    picture = (
        picture.unsqueeze(0)
        if isinstance(picture, torch.Tensor) and picture.dim() == 3
        else picture
    )
    check_image(picture, name)
    if picture.shape[0] != 1:
        raise ValueError(f"{name} must be one image [1, C, H, W], got {list(picture.shape)}.")
    if samples is not None:
        check_image(samples, "samples")
        if samples.shape[1] != picture.shape[1]:
            raise ValueError(
                f"samples have {samples.shape[1]} channels, the picture {picture.shape[1]}."
            )
    return picture

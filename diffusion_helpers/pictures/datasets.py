"""Datasets in: many pictures of one kind as one tensor, so the model learns to make new ones.

``load_dataset(source, size)`` returns an ``ImageDataset``: ``images`` float32 [N, C, S, S] in
[-1, 1] (the same pixel mapping as ``images.load_image``: v / 127.5 - 1), ``labels`` int64 [N]
or None, and ``classes``, the label names. What each source gives:

- ``"digits"`` (the default everywhere): scikit-learn's bundled handwritten digits, offline.
  1,797 pictures of 8x8 pixels, 10 classes "0".."9", grey (channels=1). Drawn white on black,
  the MNIST convention: the stored values 0..16 are amounts of ink, so ink -> +1 (white) and
  paper -> -1 (black). Each digit gets a 2-pixel black border (8x8 -> 12x12) before it is
  resized, so it fills 2/3 of the side like MNIST's 20 px digit in its 28 px square instead
  of touching the edges.
- a folder (a str or ``pathlib.Path``): one subfolder per class gives labels, classes sorted
  by name (torchvision's ImageFolder convention; pictures inside a class folder may be nested
  deeper); a folder of pictures without subfolders gives ``labels=None``. Every picture goes
  through ``load_image`` (EXIF rotation, transparency on white, 16-bit, centre crop, LANCZOS);
  files that cannot be read are skipped and named in one printed line. 3 channels by default.
- ``"mnist"`` (70,000 handwritten digits; the 60,000 training ones are used), ``"fashion_mnist"``
  (60,000 training pictures of clothes), both 28x28 grey, white on black, 10 classes;
  ``"cifar10"`` (50,000 training photos, 32x32 colour, 10 classes): torchvision's datasets, for
  Colab or any machine online. They are downloaded only with ``download=True`` into ``root``
  (default ``<work folder>/data``, the work folder being ``outputs/`` unless
  ``DIFFUSION_WORKDIR`` says otherwise) and read from there afterwards.
- a tensor [N, C, H, W] with values in [-1, 1] (C = 1 or 3, H = W), resized to ``size`` if
  needed; ``labels=`` (a LongTensor [N] or a list of ints) makes it labelled, with classes
  "0", "1", ... up to the largest label.

A string that is one of the names above means that dataset, even if a folder of that name
exists: pass ``Path("digits")`` or ``"./digits"`` for the folder.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import numpy as np
import torch

from .dataset import (
    DATASET_NAMES,
    DatasetName,
    ImageDataset,
    check_images,
    check_memory,
    describe_value,
    to_model_space,
)
from .folders import ACCEPTED

Source = Union[DatasetName, str, os.PathLike, torch.Tensor]

SIZE_RANGE = (8, 1024)  # the sizes load_image accepts: 8 px still shows a shape
DIGITS_PAD = 2  # black pixels added on each side of the 8x8 digits: 8 / 12 ~ MNIST's 20 / 28


def load_dataset(
    source: Source,
    size: int,
    channels: Optional[int] = None,
    *,
    limit: Optional[int] = None,
    root: Optional[Union[str, os.PathLike]] = None,
    download: bool = False,
    labels: Optional[Union[torch.Tensor, list[int]]] = None,
) -> ImageDataset:
    """Load many pictures as an ``ImageDataset`` (images float32 [N, C, size, size] in [-1, 1]).

    Args:
        source: "digits", "mnist", "fashion_mnist", "cifar10", a folder path, or a tensor
            [N, C, H, W] in [-1, 1] (see the module docstring for what each gives).
        size: side of the square pictures in pixels (8 to 1024).
        channels: 1 (grey) or 3 (RGB); None: the source's own (1 for the digit and clothes
            datasets, 3 for CIFAR-10 and folders, C for a tensor). 3 from grey repeats the
            grey; 1 from colour takes the luma 0.299 R + 0.587 G + 0.114 B.
        limit: keep only the first ``limit`` pictures (in the source's order; for a folder,
            sorted by class and file name), e.g. for a quick run.
        root: where the torchvision datasets live (default ``<work folder>/data``).
        download: let torchvision download "mnist", "fashion_mnist" or "cifar10" into ``root``
            if its files are not there yet.
        labels: for a tensor source only: a LongTensor [N] or list of N ints >= 0.

    Raises:
        ValueError: an argument is not usable, the source is unknown or missing, a folder
            has no readable picture, a dataset's files are absent (offline) or damaged, or the
            pictures are not finite values in [-1, 1] (the message names the item).
    """
    from .folders import find_folder, load_folder
    from .torchvision_sets import load_torchvision

    check_size(size)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1 (grey), 3 (colour) or None, got {channels!r}.")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(
            f"limit must be a whole number >= 1 (how many pictures to keep) or None, got {limit!r}."
        )
    if labels is not None and not isinstance(source, torch.Tensor):
        raise ValueError(
            "labels= is only for a tensor source: folders take their labels from their class "
            "subfolders and the named datasets bring their own."
        )
    if isinstance(source, torch.Tensor):
        return from_tensor(source, size, channels, limit=limit, labels=labels)
    if isinstance(source, str) and source.lower() in DATASET_NAMES:
        name = source.lower()
        if name == "digits":
            return load_digits(size, 1 if channels is None else channels, limit)
        default_channels = 3 if name == "cifar10" else 1
        channels = default_channels if channels is None else channels
        return load_torchvision(name, size, channels, limit, root, download)
    if isinstance(source, (str, os.PathLike)):
        return load_folder(find_folder(source), size, 3 if channels is None else channels, limit)
    hint = (
        " torch.from_numpy(array) turns a numpy array into a tensor."
        if isinstance(source, np.ndarray)
        else ""
    )
    raise ValueError(
        f"load_dataset cannot use a {type(source).__name__} as its source. Pass {ACCEPTED}.{hint}"
    )


def check_size(size: int) -> None:
    """Raise ``ValueError`` naming ``size`` unless it is a whole number in ``SIZE_RANGE``."""
    lo, hi = SIZE_RANGE
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or not lo <= size <= hi:
        raise ValueError(
            f"size must be a whole number of pixels from {lo} to {hi}, got {size!r}. "
            "Try size=32 (or size=16 to train faster on a CPU)."
        )


def load_digits(size: int, channels: int, limit: Optional[int]) -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16 = amount of ink), white on black, with a
    ``DIGITS_PAD`` black border, resized to ``size``."""
    from sklearn.datasets import load_digits as sklearn_digits  # imported here: takes ~1 s

    digits = sklearn_digits()
    ink = digits.images[:limit]  # [N, 8, 8] float64, 0 (paper) .. 16 (full ink)
    padded = np.pad(ink, ((0, 0), (DIGITS_PAD, DIGITS_PAD), (DIGITS_PAD, DIGITS_PAD)))
    pixels = torch.from_numpy(padded).unsqueeze(1)  # [N, 1, 12, 12]
    images = to_model_space(pixels, (0.0, 16.0), size, channels)  # 0 -> -1 black, 16 -> +1
    labels = torch.from_numpy(digits.target[:limit]).to(torch.int64)
    classes = [str(name) for name in digits.target_names]
    return ImageDataset(images, labels, classes, source="digits")


def from_tensor(
    images: torch.Tensor,
    size: int,
    channels: Optional[int],
    *,
    limit: Optional[int],
    labels: Optional[Union[torch.Tensor, list[int]]],
) -> ImageDataset:
    """A tensor [N, C, H, W] in [-1, 1] (and optional labels) as an ``ImageDataset``."""
    if images.dim() != 4 or images.shape[1] not in (1, 3):
        hint = " For one picture [C, H, W] pass images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(
            f"A tensor source must be [N, C, H, W] with C = 1 or 3, got {list(images.shape)}.{hint}"
        )
    if images.shape[2] != images.shape[3]:
        raise ValueError(
            f"A tensor source must hold square pictures (H = W), got {list(images.shape)}. Crop "
            "them first, e.g. images[..., :s, :s] with s = min(H, W)."
        )
    if not images.is_floating_point():
        raise ValueError(
            f"A tensor source must hold floats in [-1, 1], got {describe_value(images)}. "
            "For pixels in 0..255 pass images.float() / 127.5 - 1."
        )
    label_tensor = tensor_labels(labels, len(images))
    images = images.detach()[:limit].to("cpu")
    check_images(images.to(torch.float32), "the tensor")  # before any resize can hide a value
    channels = images.shape[1] if channels is None else channels
    check_memory(len(images), channels, size, "the tensor")
    if label_tensor is None:
        classes = []
    else:
        label_tensor = label_tensor[:limit]
        classes = [str(i) for i in range(int(label_tensor.max()) + 1)]
    resized = to_model_space(images, (-1.0, 1.0), size, channels)
    return ImageDataset(resized, label_tensor, classes, source="the tensor")


def tensor_labels(
    labels: Optional[Union[torch.Tensor, list[int]]], n: int
) -> Optional[torch.Tensor]:
    """``labels=`` of a tensor source as int64 [n] (CPU), checked: whole numbers >= 0."""
    if labels is None:
        return None
    try:
        values = torch.as_tensor(labels).detach().to("cpu")
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"labels must be a LongTensor [N] or a list of ints: {err}") from err
    if values.is_floating_point() or values.dtype == torch.bool or values.is_complex():
        raise ValueError(
            f"labels must be whole numbers (a LongTensor), got {describe_value(values)}."
        )
    if values.shape != (n,):
        raise ValueError(
            f"labels must have one entry per picture: the tensor has {n} pictures, labels has "
            f"shape {list(values.shape)}."
        )
    if n and int(values.min()) < 0:
        raise ValueError(f"labels must be >= 0 (class numbers), got {int(values.min())}.")
    return values.to(torch.int64)

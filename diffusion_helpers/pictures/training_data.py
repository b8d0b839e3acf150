"""What :func:`.train.train` can eat: one picture, a tensor of pictures, a dataset, a folder.

Every kind becomes a :class:`TrainingData`, which hands out batches ``(x_0, labels)`` by index,
so the training loop draws x_0 ~ q(x_0) the same way whatever the source. Data is checked
whole before the first step (every item: shape, channels, value range, finiteness), with a
``ValueError`` that names the item; a torch ``Dataset`` that builds items on the fly is checked
item by item as batches are drawn.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch.utils.data import DataLoader, Dataset

from ..checks.paths import shown_path
from .dataset import ImageDataset
from .datasets import load_dataset
from .images import IMAGE_SUFFIXES, load_image

# Rounding error of a [0, 1] -> [-1, 1] conversion is allowed past the data range.
RANGE_SLACK = 1e-3


@dataclass
class TrainingData:
    """Training images behind one interface.

    Attributes:
        batch: ``batch(indices LongTensor [B]) -> (x_0 [B, C, H, W] float32 on the device,
            labels LongTensor [B] on the device, or None)``.
        size: N, the number of images to draw from.
        flip: whether left-right mirror images suit this data (an ``ImageDataset`` says so;
            one picture, a tensor or a torch Dataset: no, a memorised picture is not mirrored).
        fingerprint: a short hash of the pictures (:func:`fingerprint`): a checkpoint keeps it,
            so a resume with other pictures is refused instead of mixing the two.
        picture: the one picture [1, C, H, W] (float32, CPU) when there is only one, which a
            checkpoint keeps so its samples can be compared with what it learned; else None.
    """

    batch: Callable[[torch.Tensor], tuple[torch.Tensor, Optional[torch.Tensor]]]
    size: int
    flip: bool = False
    fingerprint: str = ""
    picture: Optional[torch.Tensor] = None


# Pictures hashed for a fingerprint: all of a small set, evenly spaced ones of a large one (the
# whole of CIFAR-10 at 64 px is 2.4 GB, seconds of hashing for little more certainty).
FINGERPRINT_ITEMS = 256


def fingerprint(item: Callable[[int], torch.Tensor], n: int) -> str:
    """16 hex digits of SHA-256 over the number of pictures ``n`` and up to FINGERPRINT_ITEMS of
    them, evenly spaced (``item(i)`` is picture i), as float32: the same pictures give the same
    string on any machine."""
    h = hashlib.sha256(f"{n}".encode())
    for i in range(0, n, max(1, n // FINGERPRINT_ITEMS))[:FINGERPRINT_ITEMS]:
        h.update(item(i).detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def as_training_data(
    data: object,
    config: Any,
    device: torch.device,
    labels: Optional[object] = None,
) -> TrainingData:
    """Turn ``data`` into :class:`TrainingData` for a model with ``config`` (its ``image_size``,
    ``image_channels`` and ``num_classes``) on ``device``.

    Args:
        data: a tensor [N, C, H, W] or [C, H, W] in [-1, 1]; an ``ImageDataset`` (from
            :func:`.datasets.load_dataset`: its ``images``, ``labels`` and ``flip``); a torch
            ``Dataset`` whose items are images [C, H, W] or ``(image, label)`` pairs; a
            ``DataLoader`` (its dataset is read; batches are drawn by train's own generator so
            that resume is exact); or a path to an image file or a folder of images.
        labels: class labels [N] for a conditional model when ``data`` carries none.
    Raises:
        ValueError: naming the item or argument that does not fit (size, channels, range,
            non-finite values, labels for the wrong kind of model, labels out of range).
    """
    if isinstance(data, (str, os.PathLike)):
        data = _read_path(Path(data), config.image_size, config.image_channels)
    if isinstance(data, DataLoader):
        data = data.dataset
    flip = False
    if isinstance(data, ImageDataset):
        if labels is None and config.num_classes is not None:
            labels = data.labels
        data, flip = data.images, data.flip
    if isinstance(data, torch.Tensor):
        images = data.unsqueeze(0) if data.dim() == 3 else data
        check_images(images, config)
        y = check_labels(labels, images.shape[0], config)
        images = images.to(device=device, dtype=torch.float32)
        y = y.to(device) if y is not None else None
        return TrainingData(
            lambda idx: (images[idx.to(device)], y[idx.to(device)] if y is not None else None),
            images.shape[0],
            flip,
            fingerprint(lambda i: images[i], images.shape[0]),
            images[:1].detach().cpu().clone() if images.shape[0] == 1 else None,
        )
    if isinstance(data, Dataset) or hasattr(data, "__getitem__"):
        return _lazy_dataset(data, config, device, labels)
    raise ValueError(
        "data must be a tensor [N, C, H, W], an ImageDataset, a Dataset, a DataLoader, or a "
        f"path to a picture or a folder of pictures; got {type(data).__name__}."
    )


def _read_path(path: Path, size: int, channels: int) -> object:
    """A folder through :func:`.datasets.load_dataset` (class subfolders give labels), or one
    picture through :func:`.images.load_image`."""
    if path.is_dir():
        return load_dataset(path, size, channels)
    if path.is_file():
        return load_image(path, size=size, channels=channels)
    raise ValueError(
        f"data path {shown_path(path)} is neither a folder of pictures nor a picture file "
        f"({', '.join(IMAGE_SUFFIXES)})."
    )


def _lazy_dataset(
    dataset: Dataset, config: Any, device: torch.device, labels: Optional[object]
) -> TrainingData:
    """A torch Dataset read item by item (each item checked as it is drawn)."""
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty: give at least one image.")
    conditional = config.num_classes is not None
    y_given = check_labels(labels, n, config) if labels is not None else None

    def item(i: int) -> tuple[torch.Tensor, Optional[int]]:
        value = dataset[i]
        pair = isinstance(value, (tuple, list))  # (image,) from TensorDataset, (image, label)
        image = value[0] if pair and value else value
        label = value[1] if pair and len(value) > 1 else None
        if not isinstance(image, torch.Tensor) or image.dim() != 3:
            raise ValueError(
                f"dataset item {i} should be an image tensor [C, H, W] or (image, label); got "
                f"{getattr(image, 'shape', type(image).__name__)}. Add a ToTensor-style transform."
            )
        check_images(image.unsqueeze(0), config, first_index=i)
        return image, label

    first_label = item(0)[1]
    if conditional and y_given is None and first_label is None:
        raise ValueError(
            "the model is conditional but the dataset items carry no labels: give labels=[...] "
            "or items (image, label)."
        )

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        pairs = [item(int(i)) for i in idx]
        x = torch.stack([p[0] for p in pairs]).to(device=device, dtype=torch.float32)
        if not conditional:
            return x, None
        if y_given is not None:
            return x, y_given[idx].to(device)
        y = torch.tensor([int(p[1]) for p in pairs], dtype=torch.long)
        return x, check_labels(y, len(pairs), config).to(device)

    return TrainingData(batch, n, fingerprint=fingerprint(lambda i: item(i)[0], n))


def check_images(images: torch.Tensor, config: Any, first_index: int = 0) -> None:
    """Raise ``ValueError`` unless every image fits the model (channels, side), is finite and
    lies in [-1, 1]; the message names the first item at fault (counted from ``first_index``)."""
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[0] == 0:
        raise ValueError(
            f"training images must be a tensor [N, C, H, W] with N >= 1, got "
            f"{getattr(images, 'shape', type(images).__name__)}."
        )
    if not images.dtype.is_floating_point:
        raise ValueError(
            f"training images must be floats in [-1, 1], got {images.dtype}; map 0..255 "
            "pictures with x / 127.5 - 1 (dh.load_image does it for you)."
        )
    cfg = config
    if images.shape[1] != cfg.image_channels or tuple(images.shape[2:]) != (cfg.image_size,) * 2:
        raise ValueError(
            f"item {first_index} is {images.shape[1]}x{images.shape[2]}x{images.shape[3]} "
            f"(channels x height x width) but the model is built for {cfg.image_channels}x"
            f"{cfg.image_size}x{cfg.image_size}: load the pictures at size={cfg.image_size}, "
            "or build the model for their size."
        )
    flat = images.detach().reshape(images.shape[0], -1)
    bad = ~torch.isfinite(flat).all(dim=1)
    if bool(bad.any()):
        i = first_index + int(bad.nonzero()[0])
        raise ValueError(f"item {i} of the training data holds NaN or infinite values.")
    out = (flat.amin(dim=1) < -1 - RANGE_SLACK) | (flat.amax(dim=1) > 1 + RANGE_SLACK)
    if bool(out.any()):
        i = int(out.nonzero()[0])
        lo, hi = float(flat[i].min()), float(flat[i].max())
        raise ValueError(
            f"training images must lie in [-1, 1], but item {first_index + i} spans "
            f"[{lo:.3g}, {hi:.3g}]; map [0, 1] images with x * 2 - 1."
        )


def check_labels(labels: Optional[object], n: int, config: Any) -> Optional[torch.Tensor]:
    """Labels as a LongTensor [n] for a conditional model; None for an unconditional one.

    Raises ``ValueError`` naming ``labels`` when a conditional model has none, an unconditional
    one is given some, or they have the wrong length or lie outside 0..num_classes-1.
    """
    classes = config.num_classes
    if classes is None:
        if labels is not None:
            raise ValueError(
                "labels were given but the model is unconditional: build it with "
                "UNet.preset(..., num_classes=K) to learn classes, or leave labels out."
            )
        return None
    if labels is None:
        raise ValueError(
            f"the model is conditional (num_classes={classes}) but the data has no labels: "
            "pass labels=... or a labelled dataset (dh.load_dataset('digits', ...))."
        )
    try:
        y = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"labels must be integers 0..{classes - 1}: {err}") from err
    if y.dim() != 1 or y.shape[0] != n:
        raise ValueError(f"labels must have one entry per image ({n}), got {list(y.shape)}.")
    if y.dtype.is_floating_point and not bool((y == y.round()).all()):
        raise ValueError("labels must be whole numbers (class indices).")
    y = y.long()
    if n and (int(y.min()) < 0 or int(y.max()) >= classes):
        raise ValueError(
            f"labels must lie in 0..{classes - 1} for num_classes={classes}; "
            f"got values from {int(y.min())} to {int(y.max())}."
        )
    return y

"""The container every source of training pictures fills: :class:`ImageDataset`, checked when
made, and the conversion of arrays of pixels to the model's [-1, 1] at the wanted size."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional, Union, get_args

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10"]
DATASET_NAMES = get_args(DatasetName)
# 4 GiB: a third of a free Colab machine's 12.7 GB of RAM, leaving room for the model, its
# optimizer and a shuffled batch. CIFAR-10 at 64 px is 2.5 GB; at 128 px it would be 9.8 GB.
MAX_DATASET_BYTES = 4 * 1024**3
CHUNK = 1024  # pictures converted at once: bounds the float copy of a uint8 dataset
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grey = 0.299 R + 0.587 G + 0.114 B, as Pillow's "L"


@dataclass(eq=False, repr=False)
class ImageDataset(Dataset):
    """Pictures for training, checked when made: ``dataset[i]`` is ``(image, label)`` when
    labelled, else ``image``; image float32 [C, S, S] in [-1, 1], label an int64 scalar.

    Attributes:
        images: float32 [N, C, S, S] in [-1, 1], C = 1 (grey) or 3 (RGB).
        labels: int64 [N] with values in 0..len(classes) - 1, or None when unlabelled. Every
            class has pictures: classes given without any are dropped when the dataset is made
            and the labels renumbered (:func:`drop_empty_classes`).
        classes: the name of each label; [] when unlabelled.
        source: where the pictures came from, for ``describe``.
        flip: whether a left-right mirror image is as good a training picture: True for
            photos (a folder, CIFAR-10), False for digits, clothes, letters and tensors.
            Training mirrors half the pictures when it is True (``TrainConfig.flip``).
    """

    images: torch.Tensor
    labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    source: str = "a tensor"
    flip: bool = False

    def __post_init__(self) -> None:
        check_images(self.images, self.source)
        check_labels(self.labels, self.classes, len(self.images), self.source)
        self.labels, self.classes = drop_empty_classes(self.labels, self.classes, self.source)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> Union[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        if self.labels is None:
            return self.images[index]
        return self.images[index], self.labels[index]

    def describe(self) -> str:
        """One line, e.g. "digits: 1,797 images, 32x32, 1 channel (grey), 10 classes: 0, 1, ..."."""
        n, c, s, _ = self.images.shape
        colour = "1 channel (grey)" if c == 1 else "3 channels (RGB)"
        if not self.classes:
            kinds = "unlabelled"
        else:
            names = short_list(self.classes)
            kinds = f"{len(self.classes)} class{'es' if len(self.classes) > 1 else ''}: {names}"
        return f"{self.source}: {n:,} image{'s' if n != 1 else ''}, {s}x{s}, {colour}, {kinds}"

    def __repr__(self) -> str:
        return f"ImageDataset({self.describe()})"


def check_memory(n: int, channels: int, size: int, source: str) -> None:
    """Refuse, before allocating, a dataset larger than ``MAX_DATASET_BYTES`` (float32)."""
    need = n * channels * size * size * 4
    if need > MAX_DATASET_BYTES:
        raise ValueError(
            f"{source}: {n:,} pictures of {size}x{size} with {channels} channel(s) need "
            f"{need / 1e9:.1f} GB of memory, over the {MAX_DATASET_BYTES / 1e9:.1f} GB this "
            "loader allows. Pass limit= to keep fewer pictures, or a smaller size."
        )


def check_images(images: torch.Tensor, source: str) -> None:
    """Raise ``ValueError`` unless ``images`` is float32 [N, C, S, S] (N >= 1, C = 1 or 3) with
    finite values in [-1, 1]; the message names the first bad item."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.float32:
        raise ValueError(
            f"{source}: images must be a float32 tensor, got {describe_value(images)}."
        )
    if images.dim() != 4 or images.shape[1] not in (1, 3) or images.shape[2] != images.shape[3]:
        raise ValueError(
            f"{source}: images must be [N, C, S, S] with C = 1 or 3, got {list(images.shape)}."
        )
    if len(images) == 0:
        raise ValueError(f"{source}: there are no images (N = 0).")
    flat = images.detach().flatten(1)
    # amin/amax propagate NaN and the comparisons below are False for NaN: NaN, inf and
    # out-of-range values all make an item bad, without a bool copy of the whole dataset.
    low, high = flat.amin(dim=1), flat.amax(dim=1)
    bad = ~((low >= -1.0) & (high <= 1.0))
    if bad.any():
        i = int(bad.nonzero()[0])
        values = flat[i]
        if not torch.isfinite(values).all():
            what = "NaN or infinite values"
        else:
            what = f"values from {low[i].item():.3g} to {high[i].item():.3g}, outside [-1, 1]"
        hint = (
            " Pixels in 0..255 map to [-1, 1] as x / 127.5 - 1; in [0, 1] as 2 * x - 1."
            if torch.isfinite(values).all()
            else ""
        )
        raise ValueError(f"{source}: item {i} has {what}.{hint}")


def check_labels(labels: Optional[torch.Tensor], classes: list[str], n: int, source: str) -> None:
    """Raise ``ValueError`` unless ``labels`` is None (and ``classes`` empty) or an int64 [n]
    tensor with values in 0..len(classes) - 1."""
    if labels is None:
        if classes:
            raise ValueError(f"{source}: classes {classes[:3]}... are given but no labels.")
        return
    if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
        raise ValueError(f"{source}: labels must be an int64 tensor, got {describe_value(labels)}.")
    if labels.shape != (n,):
        raise ValueError(
            f"{source}: labels must have one entry per image, shape [{n}], got {list(labels.shape)}."
        )
    if n and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)):
        raise ValueError(
            f"{source}: labels must be in 0..{len(classes) - 1} (one per class name), got "
            f"values from {int(labels.min())} to {int(labels.max())}."
        )


def drop_empty_classes(
    labels: Optional[torch.Tensor], classes: list[str], source: str
) -> tuple[Optional[torch.Tensor], list[str]]:
    """The classes that have pictures, in their order, and the labels renumbered densely over
    them (0..K-1), the names kept so each label still reads right; one printed line names the
    classes dropped. Labels [0, 2, 5] of classes "0".."5" become [0, 1, 2] of "0", "2", "5".

    A class without pictures (an unreadable class folder, ``limit=``, labels with gaps) would
    give a conditional model a label it never saw, and sampling that label would draw noise
    without a word."""
    if labels is None or not classes:
        return labels, classes
    present = torch.bincount(labels, minlength=len(classes)) > 0
    if bool(present.all()):
        return labels, classes
    kept = present.nonzero().flatten()
    dropped = [classes[i] for i in (~present).nonzero().flatten().tolist()]
    renumber = torch.full((len(classes),), -1, dtype=torch.int64)
    renumber[kept] = torch.arange(len(kept))
    names = [classes[i] for i in kept.tolist()]
    labels_now = "label 0 is" if len(names) == 1 else f"labels 0..{len(names) - 1} are"
    print(
        f"{source}: no pictures of class{'es' if len(dropped) > 1 else ''} {short_list(dropped)}, "
        f"so {'they are' if len(dropped) > 1 else 'it is'} left out: {labels_now} now "
        f"{short_list(names)}."
    )
    return renumber[labels], names


def short_list(names: list[str], most: int = 10) -> str:
    """Names joined by commas, the first ``most`` of them and "..." after."""
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def describe_value(value: object) -> str:
    """A short description of a value for error messages ("float64 tensor", "list")."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor"
    return f"a {type(value).__name__}"


def to_model_space(
    pixels: torch.Tensor, value_range: tuple[float, float], size: int, channels: int
) -> torch.Tensor:
    """Pictures [N, C, H, W] (H = W) with values in ``value_range`` = (black, white) ->
    float32 [N, channels, size, size] in [-1, 1]: x = 2 (v - black) / (white - black) - 1,
    then grey <-> RGB, then a bilinear, antialiased resize.

    Works ``CHUNK`` pictures at a time into one preallocated tensor, so a uint8 dataset never
    exists as a full float copy at its original size beside the result.
    """
    black, white = value_range
    out = torch.empty(len(pixels), channels, size, size)
    for start in range(0, len(pixels), CHUNK):
        v = pixels[start : start + CHUNK].to(torch.float32)
        x = 2.0 * (v - black) / (white - black) - 1.0
        x = match_channels(x, channels)
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        # Bilinear weights are >= 0 and sum to 1, so only float rounding can leave [-1, 1].
        out[start : start + CHUNK] = x.clamp(-1.0, 1.0)
    return out


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """[B, C, H, W] -> [B, channels, H, W]: grey is repeated to RGB; RGB becomes the luma
    0.299 R + 0.587 G + 0.114 B (weights summing to 1, so it holds in [-1, 1] as in 0..255)."""
    if x.shape[1] == channels:
        return x
    if channels == 3:
        return x.repeat(1, 3, 1, 1)
    weights = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)

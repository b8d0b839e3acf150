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

import difflib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .images import IMAGE_SUFFIXES, ImageLoadError, load_image

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10"]
DATASET_NAMES = ("digits", "mnist", "fashion_mnist", "cifar10")
ACCEPTED = (
    'a dataset name ("digits", "mnist", "fashion_mnist", "cifar10"), a folder of pictures '
    "(one subfolder per class, or none), or a tensor [N, C, H, W] with values in [-1, 1]"
)
Source = Union[DatasetName, str, os.PathLike, torch.Tensor]

SIZE_RANGE = (8, 1024)  # the sizes load_image accepts: 8 px still shows a shape
DIGITS_PAD = 2  # black pixels added on each side of the 8x8 digits: 8 / 12 ~ MNIST's 20 / 28
# 4 GiB: a third of a free Colab machine's 12.7 GB of RAM, leaving room for the model, its
# optimizer and a shuffled batch. CIFAR-10 at 64 px is 2.5 GB; at 128 px it would be 9.8 GB.
MAX_DATASET_BYTES = 4 * 1024**3
CHUNK = 1024  # pictures converted at once: bounds the float copy of a uint8 dataset
PROGRESS_FROM = 50  # a progress bar for fewer pictures (a second or two) only adds noise
SHOW_SKIPPED = 3  # how many skipped files the summary line names
WORKDIR_ENV = "DIFFUSION_WORKDIR"  # the work folder of tutorial.work_dir()
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grey = 0.299 R + 0.587 G + 0.114 B, as Pillow's "L"
IGNORED_NAMES = ("__MACOSX",)  # what unzipping on a Mac leaves beside the pictures

# The files torchvision writes (and checks) under root; MNIST and FashionMNIST share a layout.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN + ("test_batch", "batches.meta")


@dataclass(eq=False, repr=False)
class ImageDataset(Dataset):
    """Pictures for training, checked when made: ``dataset[i]`` is ``(image, label)`` when
    labelled, else ``image``; image float32 [C, S, S] in [-1, 1], label an int64 scalar.

    Attributes:
        images: float32 [N, C, S, S] in [-1, 1], C = 1 (grey) or 3 (RGB).
        labels: int64 [N] with values in 0..len(classes) - 1, or None when unlabelled.
        classes: the name of each label; [] when unlabelled.
        source: where the pictures came from, for ``describe``.
    """

    images: torch.Tensor
    labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    source: str = "a tensor"

    def __post_init__(self) -> None:
        check_images(self.images, self.source)
        check_labels(self.labels, self.classes, len(self.images), self.source)

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
            names = ", ".join(self.classes[:10]) + (", ..." if len(self.classes) > 10 else "")
            kinds = f"{len(self.classes)} class{'es' if len(self.classes) > 1 else ''}: {names}"
        return f"{self.source}: {n:,} image{'s' if n != 1 else ''}, {s}x{s}, {colour}, {kinds}"

    def __repr__(self) -> str:
        return f"ImageDataset({self.describe()})"


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


def describe_value(value: object) -> str:
    """A short description of a value for error messages ("float64 tensor", "list")."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).replace('torch.', '')} tensor"
    return f"a {type(value).__name__}"


# ---------------------------------------------------------------------------------------------
# Arrays of pixels -> [-1, 1] at the wanted size (the digits, torchvision data, tensors)
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# torchvision's MNIST, Fashion-MNIST and CIFAR-10
# ---------------------------------------------------------------------------------------------


def default_root() -> Path:
    """Where the torchvision datasets are kept: ``data/`` inside the work folder."""
    return Path(os.environ.get(WORKDIR_ENV, "outputs")) / "data"


def load_torchvision(
    name: str,
    size: int,
    channels: int,
    limit: Optional[int],
    root: Optional[Union[str, os.PathLike]],
    download: bool,
) -> ImageDataset:
    """The training split of "mnist", "fashion_mnist" or "cifar10" from ``root``, downloaded
    first when ``download`` is True; offline without the files, a ``ValueError`` at once."""
    root = default_root() if root is None else Path(root)
    if download:
        fetch_torchvision(name, root)
    else:
        folder = root / TORCHVISION_FOLDERS.get(name, CIFAR10_FOLDER)
        files = MNIST_FILES if name in TORCHVISION_FOLDERS else CIFAR10_FILES
        raw = folder / "raw" if name in TORCHVISION_FOLDERS else folder
        missing = [f for f in files if not (raw / f).is_file()]
        if missing:
            raise ValueError(
                f"The {name!r} dataset is not in {root} (missing {raw / missing[0]}"
                f"{f' and {len(missing) - 1} more files' if len(missing) > 1 else ''}). Pass "
                f"download=True to download it there (needs the internet, e.g. in Colab), or "
                f"root= the folder that holds it; offline, load_dataset('digits') needs no "
                "download, and a folder of your own pictures works too."
            )
    if name == "cifar10":
        pixels, targets, classes = read_cifar10(root / CIFAR10_FOLDER, limit)  # [N, 3, 32, 32]
    else:
        pixels, targets, classes = read_mnist(name, root, limit)  # [N, 1, 28, 28]
    source = name  # data.py matches it against its list of photo datasets
    check_memory(len(pixels), channels, size, source)
    images = to_model_space(pixels, (0.0, 255.0), size, channels)
    return ImageDataset(images, targets, classes, source=source)


def fetch_torchvision(name: str, root: Path) -> None:
    """Download a dataset with torchvision (it skips files already there and checks their
    MD5 sums); a failed download becomes a ``ValueError`` saying what to do."""
    import torchvision.datasets as tvd  # imported here: only these three sources need it

    kind = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        kind(str(root), train=True, download=True)
    except (RuntimeError, OSError) as err:  # URLError is an OSError; torchvision wraps others
        raise ValueError(
            f"Could not download the {name!r} dataset into {root}: {err}. Check the internet "
            "connection (Colab has one), or pass root= a folder that already holds it; "
            "load_dataset('digits') needs no download."
        ) from err


def read_mnist(
    name: str, root: Path, limit: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """MNIST / Fashion-MNIST training pictures uint8 [N, 1, 28, 28], labels int64 [N] and class
    names, read by torchvision from the idx files it checked are there."""
    import torchvision.datasets as tvd

    kind = tvd.MNIST if name == "mnist" else tvd.FashionMNIST
    try:
        data = kind(str(root), train=True, download=False)
    except (RuntimeError, ValueError, TypeError, AssertionError, OSError) as err:
        raise damaged(name, root / TORCHVISION_FOLDERS[name], err) from err
    pixels = data.data[:limit].unsqueeze(1)  # torchvision keeps the raw uint8 [N, 28, 28]
    return pixels, data.targets[:limit].to(torch.int64), list(data.classes)


def read_cifar10(
    folder: Path, limit: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """CIFAR-10 training pictures uint8 [N, 3, 32, 32], labels int64 [N] and class names, read
    from the "python version" pickles the way torchvision reads them.

    Read here rather than by ``torchvision.datasets.CIFAR10`` because torchvision compares each
    file's MD5 sum with the published one even with download=False, so no test can hand it a
    small fake folder; the layout and format are the same. The pickles are trusted like
    torchvision trusts them: only load folders you downloaded yourself.
    """
    try:
        with open(folder / "batches.meta", "rb") as f:
            classes = list(pickle.load(f, encoding="latin1")["label_names"])
        arrays, targets = [], []
        for name in CIFAR10_TRAIN:
            with open(folder / name, "rb") as f:
                batch = pickle.load(f, encoding="latin1")  # the files were written by Python 2
            arrays.append(np.asarray(batch["data"], dtype=np.uint8))  # [10000, 3 * 32 * 32]
            targets.extend(batch["labels"])
            if limit is not None and sum(len(a) for a in arrays) >= limit:
                break
        data = np.concatenate(arrays).reshape(-1, 3, 32, 32)[:limit]  # stored as R, G, B planes
    except (OSError, EOFError, KeyError, ValueError, TypeError, pickle.UnpicklingError) as err:
        raise damaged("cifar10", folder, err) from err
    return torch.from_numpy(data), torch.tensor(targets[: len(data)], dtype=torch.int64), classes


def damaged(name: str, folder: Path, err: BaseException) -> ValueError:
    """The error for dataset files that exist but cannot be read."""
    return ValueError(
        f"The {name!r} files in {folder} could not be read ({type(err).__name__}: {err}). They "
        "may be damaged or from an incomplete download: delete that folder and load again with "
        "download=True."
    )


# ---------------------------------------------------------------------------------------------
# A folder of pictures
# ---------------------------------------------------------------------------------------------


def find_folder(source: Union[str, os.PathLike]) -> Path:
    """The folder a path names, or a ``ValueError`` naming the source and the accepted kinds."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(
            f"load_dataset({str(source)!r}): that is a file, not a folder. Pass {ACCEPTED}; for "
            "one picture use load_image(path)."
        )
    text = str(source)
    looks_like_name = isinstance(source, str) and not any(c in text for c in "/\\.")
    if looks_like_name:
        close = difflib.get_close_matches(text.lower(), DATASET_NAMES, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"load_dataset({text!r}): unknown dataset name and no folder of that name in "
            f"{Path.cwd()}.{guess} Pass {ACCEPTED}."
        )
    raise ValueError(
        f"load_dataset({text!r}): no such folder (looked from {Path.cwd()}). Check the path; in "
        f"Colab, upload or unzip the pictures first. Pass {ACCEPTED}."
    )


def visible(path: Path, top: Path) -> bool:
    """False for hidden files and folders (".ipynb_checkpoints", ".DS_Store") and Mac zip
    debris ("__MACOSX") anywhere below ``top``."""
    parts = path.relative_to(top).parts
    return not any(p.startswith(".") or p in IGNORED_NAMES for p in parts)


def is_picture(path: Path) -> bool:
    """True for a file whose name ends in one of ``IMAGE_SUFFIXES`` (any case)."""
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES


def find_pictures(
    folder: Path,
) -> tuple[list[tuple[Path, int]], list[str], list[tuple[Path, str]]]:
    """Return (pictures as (path, label index), class names, (file, why) of files not read).

    With subfolders that hold pictures (at any depth) each such subfolder is a class, sorted
    by name, and pictures are sorted by path within it; loose files beside them are not read.
    Without, the pictures directly in ``folder`` are read, sorted by name, with label -1.
    Files whose names do not end in one of ``IMAGE_SUFFIXES`` are not read.
    """
    entries = sorted(p for p in folder.iterdir() if visible(p, folder))
    files_in = {
        d.name: sorted(p for p in d.rglob("*") if visible(p, folder) and p.is_file())
        for d in entries
        if d.is_dir()
    }
    classes = [name for name, files in files_in.items() if any(map(is_picture, files))]
    loose = [p for p in entries if p.is_file()]
    if classes:
        pictures = [(p, i) for i, c in enumerate(classes) for p in files_in[c] if is_picture(p)]
        others = [(p, "outside the class folders") for p in loose]
        others += [(p, not_a_picture(p)) for c in classes for p in files_in[c] if not is_picture(p)]
        return pictures, classes, others
    pictures = [(p, -1) for p in loose if is_picture(p)]
    return pictures, [], [(p, not_a_picture(p)) for p in loose if not is_picture(p)]


def not_a_picture(path: Path) -> str:
    """Why a file was not read: its name does not end like a picture's."""
    return f"not a picture: {path.suffix or 'no suffix'}"


def load_folder(folder: Path, size: int, channels: int, limit: Optional[int]) -> ImageDataset:
    """Every picture in ``folder`` through ``load_image``, each resized as it is read into one
    preallocated tensor; unreadable files are skipped and named in one printed line."""
    pictures, classes, others = find_pictures(folder)
    n = len(pictures) if limit is None else min(limit, len(pictures))
    check_memory(n, channels, size, str(folder))
    images = torch.empty(n, channels, size, size)
    labels: list[int] = []
    failed: list[tuple[Path, str]] = []
    with tqdm(total=n, desc="loading pictures", unit="img", disable=n < PROGRESS_FROM) as bar:
        for path, label in pictures:
            if len(labels) == n:
                break
            try:
                images[len(labels)] = load_image(path, size=size, channels=channels)[0]
            except ImageLoadError as err:
                failed.append((path, short_reason(err, path)))
                continue
            labels.append(label)
            bar.update(1)
    summary = skipped_summary(failed + others, folder, len(pictures) + len(others))
    if not labels:
        raise ValueError(
            f"load_dataset({str(folder)!r}): no picture in this folder could be read"
            f"{' (' + summary + ')' if summary else ' (it has no files)'}. Pass {ACCEPTED}; "
            f"pictures are files ending in {', '.join(IMAGE_SUFFIXES)}."
        )
    if summary:
        print(summary)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if classes else None
    return ImageDataset(images[: len(labels)], label_tensor, classes, source=str(folder))


def short_reason(err: ImageLoadError, path: Path) -> str:
    """The first sentence of ``load_image``'s message, without the "Could not load <path>: "."""
    text = str(err)
    prefix = f"Could not load {path}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= 90 else text[:87] + "..."


def skipped_summary(skipped: list[tuple[Path, str]], folder: Path, total: int) -> str:
    """One line naming the first ``SHOW_SKIPPED`` skipped files and why, and how many in all;
    "" when nothing was skipped."""
    if not skipped:
        return ""
    named = "; ".join(f"{path.relative_to(folder)} ({why})" for path, why in skipped[:SHOW_SKIPPED])
    more = f"; and {len(skipped) - SHOW_SKIPPED} more" if len(skipped) > SHOW_SKIPPED else ""
    return f"Skipped {len(skipped)} of {total} files in {folder}: {named}{more}."

"""Training data in one place: every source of pictures (the digits, a folder, torchvision's
sets, a tensor) becomes an :class:`ImageDataset` through :func:`load_dataset`, and
:func:`as_training_data` turns a dataset, a tensor or a path into the batches ``train`` draws.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal, Optional, Union, get_args

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..checks.paths import shown_path
from ..checks.tensors import check_range
from ..checks.values import class_indices, picture_size, whole_number
from ..runtime.environment import work_dir_path
from .images import IMAGE_SUFFIXES, ImageLoadError, load_image

DatasetName = Literal["digits", "mnist", "fashion_mnist", "cifar10"]
DATASET_NAMES = get_args(DatasetName)
ACCEPTED = (
    'a dataset name ("digits", "mnist", "fashion_mnist", "cifar10"), a folder of pictures '
    "(one subfolder per class, or none), or a tensor [N, C, H, W] with values in [-1, 1]"
)
# 4 GiB: a third of a free Colab machine's 12.7 GB of RAM, leaving room for the model, its
# optimizer and a shuffled batch. CIFAR-10 at 64 px is 2.5 GB; at 128 px it would be 9.8 GB.
MAX_DATASET_BYTES = 4 * 1024**3
CHUNK = 1024  # pictures converted at once: bounds the float copy of a uint8 dataset
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601 grey = 0.299 R + 0.587 G + 0.114 B, as Pillow's "L"
DIGITS_PAD = 2  # black pixels added on each side of the 8x8 digits: 8 / 12 ~ MNIST's 20 / 28
PROGRESS_FROM = 50  # a progress bar for fewer pictures (a second or two) only adds noise
SHOW_SKIPPED = 3  # how many skipped files the summary line names
# torchvision's folder and files under root for each named set (MNIST's are in raw/).
TORCHVISION = {
    "mnist": "MNIST/raw",
    "fashion_mnist": "FashionMNIST/raw",
    "cifar10": "cifar-10-batches-py",
}
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")
MNIST_FILES += ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
CIFAR10_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_FILES = CIFAR10_TRAIN + ("test_batch", "batches.meta")
# Pictures hashed for a fingerprint: all of a small set, evenly spaced ones of a large one (the
# whole of CIFAR-10 at 64 px is 2.4 GB, seconds of hashing for little more certainty).
FINGERPRINT_ITEMS = 256


@dataclass(eq=False, repr=False)
class ImageDataset(Dataset):
    """Pictures for training, checked when made: ``dataset[i]`` is ``(image, label)`` when
    labelled, else ``image``; image float32 [C, S, S] in [-1, 1], label an int64 scalar.

    Attributes:
        images: float32 [N, C, S, S] in [-1, 1], C = 1 (grey) or 3 (RGB).
        labels: int64 [N] in 0..len(classes) - 1, or None when unlabelled. Classes without
            pictures are dropped when the dataset is made and the labels renumbered.
        classes: the name of each label; [] when unlabelled.
        source: where the pictures came from, for ``describe``.
        flip: whether a left-right mirror image is as good a training picture: True for
            photos (a folder, CIFAR-10), False for digits, clothes, letters and tensors.
    """

    images: torch.Tensor
    labels: Optional[torch.Tensor] = None
    classes: list[str] = field(default_factory=list)
    source: str = "a tensor"
    flip: bool = False

    def __post_init__(self) -> None:
        check_range(self.images, self.source)
        n, c, h, w = self.images.shape
        if n == 0 or c not in (1, 3) or h != w:
            raise ValueError(
                f"{self.source}: images must be [N, C, S, S] with N >= 1 and C = 1 or 3, got "
                f"{list(self.images.shape)}{' (there are no images)' if n == 0 else ''}."
            )
        self.images = self.images.float()
        if self.labels is not None or self.classes:
            name = f"{self.source}: labels"
            self.labels = class_indices(self.labels, n, len(self.classes), name=name)
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
        k = len(self.classes)
        kinds = (
            f"{k} class{'es' if k > 1 else ''}: {short_list(self.classes)}" if k else "unlabelled"
        )
        return f"{self.source}: {n:,} image{'s' if n != 1 else ''}, {s}x{s}, {colour}, {kinds}"

    def __repr__(self) -> str:
        return f"ImageDataset({self.describe()})"


def drop_empty_classes(
    labels: torch.Tensor, classes: list[str], source: str
) -> tuple[torch.Tensor, list[str]]:
    """The classes that have pictures and the labels renumbered over them (labels [0, 2, 5] of
    "0".."5" become [0, 1, 2] of "0", "2", "5"), with one printed line naming those dropped: a
    class without pictures would give a conditional model a label it never learned."""
    present = torch.bincount(labels, minlength=len(classes)) > 0
    if bool(present.all()):
        return labels, classes
    kept = present.nonzero().flatten()
    dropped = [classes[i] for i in (~present).nonzero().flatten().tolist()]
    renumber = torch.full((len(classes),), -1, dtype=torch.int64)
    renumber[kept] = torch.arange(len(kept))
    names = [classes[i] for i in kept.tolist()]
    now = "label 0 is" if len(names) == 1 else f"labels 0..{len(names) - 1} are"
    many = len(dropped) > 1
    print(
        f"{source}: no pictures of class{'es' if many else ''} {short_list(dropped)}, so "
        f"{'they are' if many else 'it is'} left out: {now} now {short_list(names)}."
    )
    return renumber[labels], names


def short_list(names: list[str], most: int = 10) -> str:
    """Names joined by commas, the first ``most`` of them and "..." after."""
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


# ---------------------------------------------------------------------------------------------
# load_dataset: every source as an ImageDataset
# ---------------------------------------------------------------------------------------------


def load_dataset(
    source: Union[DatasetName, str, os.PathLike, torch.Tensor],
    size: int,
    channels: Optional[int] = None,
    *,
    limit: Optional[int] = None,
    root: Optional[Union[str, os.PathLike]] = None,
    download: bool = False,
    labels: Optional[Union[torch.Tensor, list[int]]] = None,
) -> ImageDataset:
    """Load many pictures as an ``ImageDataset``: images float32 [N, C, size, size] in [-1, 1]
    (the pixel mapping of ``load_image``, v / 127.5 - 1), labels int64 [N] or None, classes.

    ``source`` is one of:

    - ``"digits"``: scikit-learn's 1,797 handwritten digits of 8x8 pixels, offline, 10 classes,
      grey, drawn white on black as MNIST is (ink 0..16 -> -1..1), with a 2-pixel black border
      (8x8 -> 12x12) so a digit fills 2/3 of the side like MNIST's 20 px digit in 28 px.
    - a folder (a str or ``Path``): one subfolder per class gives labels, classes sorted by name
      (torchvision's ImageFolder convention; pictures may be nested deeper in a class folder); a
      folder without subfolders gives ``labels=None``. Every picture goes through
      ``load_image``; files that cannot be read are skipped and named in one printed line.
    - ``"mnist"``, ``"fashion_mnist"`` (60,000 training pictures, 28x28 grey, 10 classes) or
      ``"cifar10"`` (50,000 training photos, 32x32 colour, 10 classes): torchvision's sets,
      downloaded only with ``download=True`` into ``root`` (default ``<work folder>/data``).
    - a tensor [N, C, H, W] in [-1, 1] (C = 1 or 3, H = W); ``labels=`` (a LongTensor [N] or a
      list of N ints >= 0) makes it labelled, with classes "0", "1", ... up to the largest.

    A name above means that dataset even if a folder of that name exists: pass
    ``Path("digits")`` for the folder. ``size`` is the side in pixels (8 to 1024); ``channels``
    1 (grey) or 3 (RGB), None for the source's own (3 from grey repeats the grey, 1 from colour
    is the luma 0.299 R + 0.587 G + 0.114 B); ``limit`` keeps the first pictures (a folder's
    sorted by class and name).

    Raises:
        ValueError: an argument is not usable, the source is unknown or missing, a folder has
            no readable picture, a dataset's files are absent (offline) or damaged, or the
            pictures are not finite values in [-1, 1] (the message names the item).
    """
    picture_size(size)
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise ValueError(f"channels must be 1 (grey), 3 (colour) or None, got {channels!r}.")
    if limit is not None:
        whole_number(limit, "limit (how many pictures to keep, or None)")
    if labels is not None and not isinstance(source, torch.Tensor):
        raise ValueError(
            "labels= is only for a tensor source: folders take their labels from their class "
            "subfolders and the named datasets bring their own."
        )
    if isinstance(source, torch.Tensor):
        return from_tensor(source, size, channels, limit, labels)
    name = source.lower() if isinstance(source, str) else None
    if name == "digits":
        return load_digits(size, channels or 1, limit)
    if name in DATASET_NAMES:
        default = 3 if name == "cifar10" else 1
        return load_torchvision(name, size, channels or default, limit, root, download)
    if isinstance(source, (str, os.PathLike)):
        return load_folder(find_folder(source), size, channels or 3, limit)
    hint = (
        " torch.from_numpy(array) makes a tensor of it." if isinstance(source, np.ndarray) else ""
    )
    raise ValueError(
        f"load_dataset cannot use a {type(source).__name__} as its source. Pass {ACCEPTED}.{hint}"
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
    limit: Optional[int],
    labels: Optional[Union[torch.Tensor, list[int]]],
) -> ImageDataset:
    """A tensor [N, C, H, W] in [-1, 1] (and optional labels) as an ``ImageDataset``."""
    shape = list(images.shape)
    if images.dim() != 4 or shape[1] not in (1, 3) or shape[2] != shape[3]:
        hint = " For one picture [C, H, W] pass images.unsqueeze(0)." if images.dim() == 3 else ""
        raise ValueError(
            f"A tensor source must be [N, C, S, S]: C = 1 or 3 channels and square pictures "
            f"(crop them first), got {shape}.{hint}"
        )
    if labels is not None:
        labels = class_indices(labels, len(images)).cpu()[:limit]
    images = images.detach()[:limit].cpu()
    check_range(images, "the tensor")  # before a resize could clamp a value away
    channels = channels or images.shape[1]
    check_memory(len(images), channels, size, "the tensor")
    classes = [] if labels is None else [str(i) for i in range(int(labels.max()) + 1)]
    resized = to_model_space(images, (-1.0, 1.0), size, channels)
    return ImageDataset(resized, labels, classes, source="the tensor")


def check_memory(n: int, channels: int, size: int, source: str) -> None:
    """Refuse, before allocating, a dataset larger than ``MAX_DATASET_BYTES`` (float32)."""
    need = n * channels * size * size * 4
    if need > MAX_DATASET_BYTES:
        raise ValueError(
            f"{source}: {n:,} pictures of {size}x{size} with {channels} channel(s) need "
            f"{need / 1e9:.1f} GB of memory, over the {MAX_DATASET_BYTES / 1e9:.1f} GB this "
            "loader allows. Pass limit= to keep fewer pictures, or a smaller size."
        )


def to_model_space(
    pixels: torch.Tensor, value_range: tuple[float, float], size: int, channels: int
) -> torch.Tensor:
    """Pictures [N, C, H, W] (H = W) with values in ``value_range`` = (black, white) ->
    float32 [N, channels, size, size] in [-1, 1]: x = 2 (v - black) / (white - black) - 1,
    then grey <-> RGB, then a bilinear, antialiased resize; ``CHUNK`` pictures at a time, so
    a uint8 dataset never exists as a full float copy beside the result."""
    black, white = value_range
    out = torch.empty(len(pixels), channels, size, size)
    for start in range(0, len(pixels), CHUNK):
        v = pixels[start : start + CHUNK].to(torch.float32)
        x = match_channels(2.0 * (v - black) / (white - black) - 1.0, channels)
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
    return (x * torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)


def find_folder(source: Union[str, os.PathLike]) -> Path:
    """The folder a path names, or a ``ValueError`` naming the source and the accepted kinds."""
    path, text = Path(source), shown_path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(
            f"load_dataset({text!r}): that is a file, not a folder. Pass {ACCEPTED}; for one "
            "picture use load_image(path)."
        )
    if isinstance(source, str) and not any(c in text for c in "/\\."):  # a name, misspelt?
        close = difflib.get_close_matches(text.lower(), DATASET_NAMES, n=1)
        guess = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"load_dataset({text!r}): unknown dataset name and no folder of that name in "
            f"{shown_path(Path.cwd())}.{guess} Pass {ACCEPTED}."
        )
    raise ValueError(
        f"load_dataset({text!r}): no such folder (looked from {shown_path(Path.cwd())}). Check "
        f"the path; in Colab, upload or unzip the pictures first. Pass {ACCEPTED}."
    )


def find_pictures(folder: Path) -> tuple[list[tuple[Path, int]], list[str], list[tuple[Path, str]]]:
    """(pictures as (path, label), class names, (file, why) of the files not read): each
    subfolder with pictures (at any depth) is a class, loose files beside them are not read;
    without such subfolders, the pictures in ``folder`` itself, label -1. Sorted by name;
    hidden files (".ipynb_checkpoints") and a Mac zip's "__MACOSX" are not looked at."""

    def visible(p: Path) -> bool:
        return not any(
            part.startswith(".") or part == "__MACOSX" for part in p.relative_to(folder).parts
        )

    def is_picture(p: Path) -> bool:
        return p.suffix.lower() in IMAGE_SUFFIXES

    entries = sorted(p for p in folder.iterdir() if visible(p))
    inside = {
        d.name: sorted(p for p in d.rglob("*") if p.is_file() and visible(p))
        for d in entries
        if d.is_dir()
    }
    classes = [name for name, files in inside.items() if any(map(is_picture, files))]
    loose = [p for p in entries if p.is_file()]
    if classes:
        files = [(p, i) for i, c in enumerate(classes) for p in inside[c]]
        others = [(p, "outside the class folders") for p in loose]
    else:
        files, others = [(p, -1) for p in loose], []
    others += [
        (p, f"not a picture: {p.suffix or 'no suffix'}") for p, _ in files if not is_picture(p)
    ]
    return [(p, i) for p, i in files if is_picture(p)], classes, others


def load_folder(folder: Path, size: int, channels: int, limit: Optional[int]) -> ImageDataset:
    """Every picture in ``folder`` through ``load_image``, each resized as it is read into one
    preallocated tensor; unreadable files are skipped and named in one printed line."""
    pictures, classes, others = find_pictures(folder)
    total, skipped = len(pictures) + len(others), []
    n = len(pictures) if limit is None else min(limit, len(pictures))
    check_memory(n, channels, size, shown_path(folder))
    images = torch.empty(n, channels, size, size)
    labels: list[int] = []
    with tqdm(total=n, desc="loading pictures", unit="img", disable=n < PROGRESS_FROM) as bar:
        for path, label in pictures:
            if len(labels) == n:
                break
            try:
                images[len(labels)] = load_image(path, size=size, channels=channels)[0]
            except ImageLoadError as err:  # its first sentence, without "Could not load X: "
                why = str(err).removeprefix(f"Could not load {shown_path(path)}: ")
                why = why.split(". ")[0].rstrip(".")
                skipped.append((path, why if len(why) <= 90 else why[:87] + "..."))
                continue
            labels.append(label)
            bar.update(1)
    skipped += others
    named = "; ".join(
        f"{shown_path(p.relative_to(folder))} ({why})" for p, why in skipped[:SHOW_SKIPPED]
    )
    more = f"; and {len(skipped) - SHOW_SKIPPED} more" if len(skipped) > SHOW_SKIPPED else ""
    summary = f"Skipped {len(skipped)} of {total} files in {shown_path(folder)}: {named}{more}."
    if not labels:
        raise ValueError(
            f"load_dataset({shown_path(folder)!r}): no picture in this folder could be read"
            f"{' (' + summary + ')' if skipped else ' (it has no files)'}. Pass {ACCEPTED}; "
            f"pictures are files ending in {', '.join(IMAGE_SUFFIXES)}."
        )
    if skipped:
        print(summary)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if classes else None
    return ImageDataset(images[: len(labels)], label_tensor, classes, shown_path(folder), flip=True)


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
    import torchvision.datasets as tvd  # imported here: only these three sources need it

    root = work_dir_path() / "data" if root is None else Path(root)
    folder = root / TORCHVISION[name]
    kind = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    files = CIFAR10_FILES if name == "cifar10" else MNIST_FILES
    missing = [f for f in files if not (folder / f).is_file()]
    if download:
        try:  # torchvision skips the files already there and checks their MD5 sums
            kind(str(root), train=True, download=True)
        except (RuntimeError, OSError) as err:  # URLError is an OSError
            raise ValueError(
                f"Could not download the {name!r} dataset into {shown_path(root)}: {err}. Check "
                "the internet connection (Colab has one), or pass root= a folder that already "
                "holds it; load_dataset('digits') needs no download."
            ) from err
    elif missing:
        more = f" and {len(missing) - 1} more files" if len(missing) > 1 else ""
        raise ValueError(
            f"The {name!r} dataset is not in {shown_path(root)} (missing "
            f"{shown_path(folder / missing[0])}{more}). Pass download=True to download it there "
            "(needs the internet, e.g. in Colab), or root= the folder that holds it; offline, "
            "load_dataset('digits') needs no download, and a folder of your own pictures works too."
        )
    try:
        if name == "cifar10":
            pixels, targets, classes = read_cifar10(folder, limit)  # [N, 3, 32, 32]
        else:
            tv = kind(str(root), train=True, download=False)  # the raw uint8 [N, 28, 28]
            pixels, targets, classes = tv.data[:limit, None], tv.targets[:limit], tv.classes
    except Exception as err:  # noqa: BLE001 - torchvision and pickle raise many types
        raise ValueError(
            f"The {name!r} files in {shown_path(folder)} could not be read "
            f"({type(err).__name__}: {err}). They may be damaged or from an incomplete download: "
            "delete that folder and load again with download=True."
        ) from err
    check_memory(len(pixels), channels, size, name)
    images = to_model_space(pixels, (0.0, 255.0), size, channels)
    photos = name == "cifar10"  # photos look right mirrored; digits and clothes do not
    return ImageDataset(images, targets.to(torch.int64), list(classes), name, flip=photos)


def read_cifar10(
    folder: Path, limit: Optional[int]
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """CIFAR-10 training pictures uint8 [N, 3, 32, 32], labels [N] and class names, read from
    the "python version" pickles as torchvision reads them. Read here because torchvision
    compares each file's MD5 sum with the published one even with download=False, so no test
    could hand it a small fake folder. The pickles are trusted as torchvision trusts them: only
    load folders you downloaded yourself."""
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
    return torch.from_numpy(data), torch.tensor(targets[: len(data)]), classes


# ---------------------------------------------------------------------------------------------
# What train() draws from
# ---------------------------------------------------------------------------------------------


@dataclass
class TrainingData:
    """Training images behind one interface.

    Attributes:
        batch: indices LongTensor [B] -> (x_0 [B, C, H, W] float32, labels LongTensor [B] or
            None), both on the device.
        size: N, the number of images to draw from.
        flip: whether left-right mirror images suit this data (an ``ImageDataset`` says so;
            one picture, a tensor or a torch Dataset: no).
        fingerprint: a hash of the pictures, kept by a checkpoint so a resume with other
            pictures is refused.
        picture: the one picture [1, C, H, W] (float32, CPU) when there is only one, else None.
    """

    batch: Callable[[torch.Tensor], tuple[torch.Tensor, Optional[torch.Tensor]]]
    size: int
    flip: bool = False
    fingerprint: str = ""
    picture: Optional[torch.Tensor] = None


def fingerprint(item: Callable[[int], torch.Tensor], n: int) -> str:
    """16 hex digits of SHA-256 over the number of pictures ``n`` and up to FINGERPRINT_ITEMS of
    them, evenly spaced (``item(i)`` is picture i), as float32: the same pictures give the same
    string on any machine."""
    h = hashlib.sha256(f"{n}".encode())
    for i in range(0, n, max(1, n // FINGERPRINT_ITEMS))[:FINGERPRINT_ITEMS]:
        h.update(item(i).detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def as_training_data(
    data: object, config: Any, device: torch.device, labels: Optional[object] = None
) -> TrainingData:
    """Turn ``data`` into :class:`TrainingData` for a model with ``config`` (its ``image_size``,
    ``image_channels`` and ``num_classes``) on ``device``.

    Args:
        data: a tensor [N, C, H, W] or [C, H, W] in [-1, 1]; an ``ImageDataset`` (its
            ``images``, ``labels`` and ``flip``); a torch ``Dataset`` whose items are images
            [C, H, W] or ``(image, label)`` pairs; a ``DataLoader`` (its dataset is read;
            batches are drawn by train's own generator so that resume is exact); or a path to
            a picture or a folder of pictures.
        labels: class labels [N] for a conditional model when ``data`` carries none.
    Raises:
        ValueError: naming the item or argument that does not fit (size, channels, range,
            non-finite values, labels for the wrong kind of model, labels out of range).
    """
    if isinstance(data, (str, os.PathLike)):
        path, size, channels = Path(data), config.image_size, config.image_channels
        if not (path.is_dir() or path.is_file()):
            raise ValueError(
                f"data path {shown_path(path)} is neither a folder of pictures nor a picture "
                f"file ({', '.join(IMAGE_SUFFIXES)})."
            )
        load = load_dataset if path.is_dir() else load_image
        data = load(path, size, channels)  # a folder's class subfolders give labels
    if isinstance(data, DataLoader):
        data = data.dataset
    flip = False
    if isinstance(data, ImageDataset):
        if labels is None and config.num_classes is not None:
            labels = data.labels
        data, flip = data.images, data.flip
    if isinstance(data, torch.Tensor):
        images = data.unsqueeze(0) if data.dim() == 3 else data
        check_fits(images, config)
        y = training_labels(labels, images.shape[0], config)
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
        return lazy_dataset(data, config, device, labels)
    raise ValueError(
        "data must be a tensor [N, C, H, W], an ImageDataset, a Dataset, a DataLoader, or a "
        f"path to a picture or a folder of pictures; got {type(data).__name__}."
    )


def lazy_dataset(
    dataset: Dataset, config: Any, device: torch.device, labels: Optional[object]
) -> TrainingData:
    """A torch Dataset read item by item, each item checked as it is drawn."""
    n = len(dataset)
    if n == 0:
        raise ValueError("the dataset is empty: give at least one image.")
    conditional = config.num_classes is not None
    y_given = training_labels(labels, n, config) if labels is not None else None

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
        check_fits(image.unsqueeze(0), config, first_index=i)
        return image, label

    if conditional and y_given is None and item(0)[1] is None:
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
        y = torch.stack([torch.as_tensor(p[1]) for p in pairs])
        return x, training_labels(y, len(pairs), config).to(device)

    return TrainingData(batch, n, fingerprint=fingerprint(lambda i: item(i)[0], n))


def check_fits(images: torch.Tensor, config: Any, first_index: int = 0) -> None:
    """Raise ``ValueError`` unless every image fits the model (channels, side) and lies in
    [-1, 1] (:func:`.checks.tensors.check_range`); the message names the first item at fault
    (counted from ``first_index``)."""
    if isinstance(images, torch.Tensor) and images.dim() == 4 and images.shape[0] == 0:
        raise ValueError("training images must be a tensor [N, C, H, W] with N >= 1, got N = 0.")
    check_range(images, "training images", first_index)
    c, s = config.image_channels, config.image_size
    if images.shape[1] != c or tuple(images.shape[2:]) != (s, s):
        raise ValueError(
            f"item {first_index} is {'x'.join(map(str, images.shape[1:]))} (channels x height x "
            f"width) but the model is built for {c}x{s}x{s}: load the pictures at size={s}, or "
            "build the model for their size."
        )


def training_labels(labels: Optional[object], n: int, config: Any) -> Optional[torch.Tensor]:
    """Labels as a LongTensor [n] for a conditional model (:func:`.checks.values.class_indices`);
    None for an unconditional one, which must be given none."""
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
    return class_indices(labels, n, classes)

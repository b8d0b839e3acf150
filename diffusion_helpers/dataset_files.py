"""Datasets that live in files: a folder of pictures, and torchvision's MNIST, Fashion-MNIST
and CIFAR-10 files (see :func:`.datasets.load_dataset` for what each gives).

Nothing here downloads unless ``download=True`` was asked for; offline, a missing dataset is a
``ValueError`` that says so before torchvision is called.
"""

from __future__ import annotations

import difflib
import os
import pickle
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch
from tqdm.auto import tqdm

from .datasets import (
    ACCEPTED,
    DATASET_NAMES,
    ImageDataset,
    check_memory,
    to_model_space,
)
from .env import work_dir_path
from .images import IMAGE_SUFFIXES, ImageLoadError, load_image

PROGRESS_FROM = 50  # a progress bar for fewer pictures (a second or two) only adds noise
SHOW_SKIPPED = 3  # how many skipped files the summary line names
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


def default_root() -> Path:
    """Where the torchvision datasets are kept: ``data/`` inside the work folder."""
    return work_dir_path() / "data"


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

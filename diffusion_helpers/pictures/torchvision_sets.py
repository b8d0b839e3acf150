"""torchvision's MNIST, Fashion-MNIST and CIFAR-10, read from their files (see
:func:`.datasets.load_dataset` for what each gives). Nothing here downloads unless
``download=True`` was asked for; offline, a missing dataset is a ``ValueError`` that says so
before torchvision is called.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Optional, Union

import numpy as np
import torch

from ..checks.paths import shown_path
from ..runtime.environment import work_dir_path
from .dataset import ImageDataset, check_memory, to_model_space

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
                f"The {name!r} dataset is not in {shown_path(root)} (missing "
                f"{shown_path(raw / missing[0])}"
                f"{f' and {len(missing) - 1} more files' if len(missing) > 1 else ''}). Pass "
                f"download=True to download it there (needs the internet, e.g. in Colab), or "
                f"root= the folder that holds it; offline, load_dataset('digits') needs no "
                "download, and a folder of your own pictures works too."
            )
    if name == "cifar10":
        pixels, targets, classes = read_cifar10(root / CIFAR10_FOLDER, limit)  # [N, 3, 32, 32]
    else:
        pixels, targets, classes = read_mnist(name, root, limit)  # [N, 1, 28, 28]
    check_memory(len(pixels), channels, size, name)
    images = to_model_space(pixels, (0.0, 255.0), size, channels)
    photos = name == "cifar10"  # photos look right mirrored; digits and clothes labels do not
    return ImageDataset(images, targets, classes, name, flip=photos)


def fetch_torchvision(name: str, root: Path) -> None:
    """Download a dataset with torchvision (it skips files already there and checks their
    MD5 sums); a failed download becomes a ``ValueError`` saying what to do."""
    import torchvision.datasets as tvd  # imported here: only these three sources need it

    kind = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    try:
        kind(str(root), train=True, download=True)
    except (RuntimeError, OSError) as err:  # URLError is an OSError; torchvision wraps others
        raise ValueError(
            f"Could not download the {name!r} dataset into {shown_path(root)}: {err}. Check "
            "the internet connection (Colab has one), or pass root= a folder that already "
            "holds it; load_dataset('digits') needs no download."
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
        f"The {name!r} files in {shown_path(folder)} could not be read "
        f"({type(err).__name__}: {err}). They may be damaged or from an incomplete download: "
        "delete that folder and load again with download=True."
    )

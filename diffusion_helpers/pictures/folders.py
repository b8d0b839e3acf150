"""A folder of pictures as a dataset: one subfolder per class gives labels (torchvision's
ImageFolder convention), a folder without subfolders gives unlabelled pictures; files that
cannot be read are skipped and named in one line."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Optional, Union

import torch
from tqdm.auto import tqdm

from ..checks.paths import shown_path
from .dataset import DATASET_NAMES, ImageDataset, check_memory
from .images import IMAGE_SUFFIXES, ImageLoadError, load_image

PROGRESS_FROM = 50  # a progress bar for fewer pictures (a second or two) only adds noise
SHOW_SKIPPED = 3  # how many skipped files the summary line names
IGNORED_NAMES = ("__MACOSX",)  # what unzipping on a Mac leaves beside the pictures
ACCEPTED = (
    'a dataset name ("digits", "mnist", "fashion_mnist", "cifar10"), a folder of pictures '
    "(one subfolder per class, or none), or a tensor [N, C, H, W] with values in [-1, 1]"
)


def find_folder(source: Union[str, os.PathLike]) -> Path:
    """The folder a path names, or a ``ValueError`` naming the source and the accepted kinds."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.exists():
        raise ValueError(
            f"load_dataset({shown_path(source)!r}): that is a file, not a folder. Pass "
            f"{ACCEPTED}; for one picture use load_image(path)."
        )
    text = shown_path(source)
    looks_like_name = isinstance(source, str) and not any(c in text for c in "/\\.")
    if looks_like_name:
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
    check_memory(n, channels, size, shown_path(folder))
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
            f"load_dataset({shown_path(folder)!r}): no picture in this folder could be read"
            f"{' (' + summary + ')' if summary else ' (it has no files)'}. Pass {ACCEPTED}; "
            f"pictures are files ending in {', '.join(IMAGE_SUFFIXES)}."
        )
    if summary:
        print(summary)
    label_tensor = torch.tensor(labels, dtype=torch.int64) if classes else None
    source = shown_path(folder)
    return ImageDataset(images[: len(labels)], label_tensor, classes, source, flip=True)


def short_reason(err: ImageLoadError, path: Path) -> str:
    """The first sentence of ``load_image``'s message, without the "Could not load <path>: "."""
    text = str(err)
    prefix = f"Could not load {shown_path(path)}: "
    if text.startswith(prefix):
        text = text[len(prefix) :]
    text = text.split(". ")[0].rstrip(".")
    return text if len(text) <= 90 else text[:87] + "..."


def skipped_summary(skipped: list[tuple[Path, str]], folder: Path, total: int) -> str:
    """One line naming the first ``SHOW_SKIPPED`` skipped files and why, and how many in all;
    "" when nothing was skipped."""
    if not skipped:
        return ""
    named = "; ".join(
        f"{shown_path(path.relative_to(folder))} ({why})" for path, why in skipped[:SHOW_SKIPPED]
    )
    more = f"; and {len(skipped) - SHOW_SKIPPED} more" if len(skipped) > SHOW_SKIPPED else ""
    return f"Skipped {len(skipped)} of {total} files in {shown_path(folder)}: {named}{more}."

"""Let the learner pick their own picture in a notebook, with a safe default for "Run all".

Two cells in a notebook:

    button = upload_widget(); button          # shows an "Upload picture" button
    x0 = upload_image(button)                 # the upload, or the bundled sample if none yet

``upload_image`` returns the tensor; ``pick_image`` also returns an ``ImageInfo`` (name,
original size, mode) for a line like "Loaded my_cat.jpg (4032x3024 RGB -> 64x64)". Nothing is
kept in global state. In Colab, ``upload_image(dialog=True)`` opens Colab's own file dialog,
which works even where custom widgets are not enabled.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Optional

import torch

from ..runtime.environment import in_colab
from .imagefile import MAX_BYTES, ImageLoadError, check_byte_size
from .images import DEFAULT_IMAGE, ImageInfo, Source, check_load_args, load_image_info


def upload_widget() -> Any:
    """An ipywidgets ``FileUpload`` button for one picture (Jupyter, VS Code, Colab).

    Show it in one cell, choose a file, then run the cell that calls ``upload_image(button)``.
    In Colab the widget has been seen to drop files of 1 MB or more (jupyter-widgets/ipywidgets
    issue 3452), which includes most phone photos: there ``upload_image(dialog=True)`` is the
    reliable way.
    """
    import ipywidgets  # imported here: only notebooks need it

    options = {
        "accept": "image/*",
        "multiple": False,
        "description": "Upload picture",
        "layout": ipywidgets.Layout(width="200px"),  # room for the label and the "(1)" count
    }
    if "tooltip" in ipywidgets.FileUpload.class_trait_names():  # ipywidgets 8; 7 has none
        options["tooltip"] = "Choose a photo (JPEG/PNG), then re-run the cell that loads it."
    return ipywidgets.FileUpload(**options)


def uploaded_files(value: Any, max_bytes: int = MAX_BYTES) -> list[tuple[str, bytes]]:
    """(file name, bytes) for every file in an upload ``value``, in any of the formats:

    - ipywidgets 8 ``FileUpload.value``: a tuple of dicts with keys name, type, size,
      content (a memoryview), last_modified;
    - ipywidgets 7 ``FileUpload.value``: {file name: {"metadata": {"name": ...}, "content": bytes}};
    - Colab's ``google.colab.files.upload()``: {file name: bytes}.

    An empty value (nothing uploaded yet) gives []. Anything else, or a file without bytes or
    with more than ``max_bytes``, raises ``ImageLoadError``: sizes are checked before copying.
    """
    if value is None:
        return []
    if isinstance(value, Mapping):  # ipywidgets 7 or Colab: keyed by file name
        return [upload_item(item, str(key), max_bytes) for key, item in value.items()]
    if isinstance(value, (tuple, list)):  # ipywidgets 8
        return [upload_item(item, "the uploaded file", max_bytes) for item in value]
    raise ImageLoadError(
        f"Cannot read an upload value of type {type(value).__name__}: expected the .value of an "
        "ipywidgets FileUpload (a tuple or dict) or the dict from google.colab.files.upload()."
    )


def upload_item(item: Any, name: str, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """(name, bytes) of one uploaded file: a dict with "content" (and "name" or "metadata"),
    or the bytes themselves; ``name`` is used when the item does not say its own."""
    content = item
    if isinstance(item, Mapping):
        metadata = item.get("metadata")  # ipywidgets 7 keeps the name there
        if isinstance(metadata, Mapping):
            name = own_name(metadata, name)
        name, content = own_name(item, name), item.get("content")
    if not isinstance(content, (bytes, bytearray, memoryview)):  # never bytes(n) of an int n
        what = "no content" if content is None else f"content of type {type(content).__name__}"
        raise ImageLoadError(
            f"Could not load {name}: the upload has {what}, not the file's bytes, so it did not "
            "arrive whole. Upload the picture again (in Colab: upload_image(dialog=True))."
        )
    n_bytes = content.nbytes if isinstance(content, memoryview) else len(content)
    check_byte_size(n_bytes, name, max_bytes)  # before bytes() copies it
    return name, bytes(content)


def own_name(item: Mapping, name: str) -> str:
    """``item["name"]`` when it is a non-empty str, else ``name``."""
    found = item.get("name")
    return found if isinstance(found, str) and found else name


def colab_dialog_files() -> list[tuple[str, bytes]]:
    """Open Colab's file dialog and return the chosen files as (name, bytes); Colab only."""
    from google.colab import files  # imported only in Colab

    return uploaded_files(files.upload())


def upload_image(
    widget: Any = None,
    *,
    path: Optional[Source] = None,
    dialog: bool = False,
    size: int = 64,
    channels: int = 3,
    crop: str = "center",
    default: Optional[Source] = None,
    verbose: bool = True,
) -> torch.Tensor:
    """The learner's picture as a tensor [1, channels, size, size] in [-1, 1].

    Same choice as ``pick_image`` (which also returns an ``ImageInfo``); see it for the order.
    """
    return pick_image(
        widget,
        path=path,
        dialog=dialog,
        size=size,
        channels=channels,
        crop=crop,
        default=default,
        verbose=verbose,
    )[0]


def pick_image(
    widget: Any = None,
    *,
    path: Optional[Source] = None,
    dialog: bool = False,
    size: int = 64,
    channels: int = 3,
    crop: str = "center",
    default: Optional[Source] = None,
    verbose: bool = True,
) -> tuple[torch.Tensor, ImageInfo]:
    """The learner's picture [1, channels, size, size] in [-1, 1] and its ``ImageInfo``.

    Uses the first that applies: ``path`` when given (typed in the cell, the most explicit
    choice); the file uploaded with ``widget``; Colab's file dialog when ``dialog=True`` and
    running in Colab (the cell waits for a choice; Cancel falls back); otherwise ``default``
    (the bundled sample image when None), printing one line that says so and how to use your
    own picture, so that "Run all" works unattended.

    Args:
        widget: the ``FileUpload`` from ``upload_widget()`` (or any object with its ``.value``).
        path: a picture to load instead (anything ``load_image`` accepts), or None.
        dialog: in Colab, open Colab's file dialog when nothing else was given.
        size, channels, crop: as in ``load_image``.
        default: what to load when nothing was given (default: ``DEFAULT_IMAGE``).
        verbose: print one line saying which picture was used.
    """
    check_load_args(size, channels, crop)
    if widget is not None and not hasattr(widget, "value"):
        raise ValueError(
            f"widget must be the FileUpload from upload_widget(), got {type(widget).__name__}."
        )
    if path is not None:
        return report(load_image_info(path, size, channels, crop), verbose)
    files = uploaded_files(widget.value) if widget is not None else []
    if not files and dialog:
        files = dialog_files(verbose)
    if files:
        name, data = files[0]
        upload = io.BytesIO(data)
        upload.name = name  # error messages and ImageInfo then name the learner's file
        extra = f" (the first of {len(files)} files)" if len(files) > 1 else ""
        return report(load_image_info(upload, size, channels, crop), verbose, extra)
    x, info = load_image_info(DEFAULT_IMAGE if default is None else default, size, channels, crop)
    if default is None:
        info = replace(info, name=DEFAULT_IMAGE.name, sample=True)  # "scene.png", not the path
    if verbose:
        print(
            f"No picture uploaded, so using the sample {info.describe()}. To use your own, "
            "upload one with the button above and re-run this cell, or call "
            'load_image("path/to/photo.jpg") (in Colab: upload_image(dialog=True)).'
        )
    return x, info


def report(
    loaded: tuple[torch.Tensor, ImageInfo], verbose: bool, extra: str = ""
) -> tuple[torch.Tensor, ImageInfo]:
    """Print "Loaded NAME (WxH MODE -> SxS)." when ``verbose``; return ``loaded`` unchanged."""
    if verbose:
        print(f"Loaded {loaded[1].describe()}{extra}.")
    return loaded


def dialog_files(verbose: bool = True) -> list[tuple[str, bytes]]:
    """Files from Colab's upload dialog; [] outside Colab or when the dialog fails/is cancelled."""
    if not in_colab():
        if verbose:
            print("dialog=True opens a file dialog only in Colab; here use upload_widget().")
        return []
    try:
        return colab_dialog_files()
    except ImageLoadError:  # a file did arrive but is unusable (too large, no bytes): say so
        raise
    except Exception as err:  # noqa: BLE001 - a cancelled or broken dialog falls back to the default
        if verbose:
            print(f"The Colab upload dialog did not return a file ({err}).")
        return []

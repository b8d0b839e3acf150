"""Let the learner pick their own picture in a notebook, with a safe default for "Run all".

Two cells: ``button = upload_widget(); button`` shows an "Upload picture" button, and
``x0 = upload_image(button)`` loads the upload, or the bundled sample when there is none yet.
In Colab, ``upload_image(dialog=True)`` opens Colab's own file dialog instead, which works even
where custom widgets are not enabled. Nothing is kept in global state.
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

    In Colab the widget has been seen to drop files of 1 MB or more (jupyter-widgets/ipywidgets
    issue 3452), most phone photos: there ``upload_image(dialog=True)`` is the reliable way.
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
    """(file name, bytes) of every file in an upload ``value``: ipywidgets 8's
    ``FileUpload.value`` (a tuple of dicts with name and content), ipywidgets 7's ({name:
    {"metadata": {"name": ...}, "content": bytes}}) or Colab's ``files.upload()`` ({name:
    bytes}). Nothing uploaded gives []; anything else, a file without bytes or one over
    ``max_bytes`` is an ``ImageLoadError``, sizes checked before anything is copied."""
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
    """(name, bytes) of one uploaded file: a dict with "content" (and "name", or a "metadata"
    dict with one), or the bytes themselves; ``name`` when the item does not say its own."""
    content = item
    if isinstance(item, Mapping):
        for own in (item.get("metadata"), item):  # ipywidgets 7 keeps the name in metadata
            found = own.get("name") if isinstance(own, Mapping) else None
            name = found if isinstance(found, str) and found else name
        content = item.get("content")
    if not isinstance(content, (bytes, bytearray, memoryview)):  # never bytes(n) of an int n
        what = "no content" if content is None else f"content of type {type(content).__name__}"
        raise ImageLoadError(
            f"Could not load {name}: the upload has {what}, not the file's bytes, so it did not "
            "arrive whole. Upload the picture again (in Colab: upload_image(dialog=True))."
        )
    check_byte_size(memoryview(content).nbytes, name, max_bytes)  # before bytes() copies it
    return name, bytes(content)


def upload_image(widget: Any = None, **options: Any) -> torch.Tensor:
    """The learner's picture [1, channels, size, size] in [-1, 1]: ``pick_image(widget,
    **options)`` without its ``ImageInfo``."""
    return pick_image(widget, **options)[0]


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

    Uses the first that applies: ``path`` (anything ``load_image`` accepts); the file uploaded
    with ``widget`` (the ``FileUpload`` of ``upload_widget()``, or any object with a
    ``.value``); Colab's file dialog when ``dialog`` and in Colab (the cell waits; Cancel falls
    back); otherwise ``default`` (the bundled sample when None), with one printed line saying
    so and how to use your own picture, so that "Run all" works unattended. ``size``,
    ``channels`` and ``crop`` are as in ``load_image``; ``verbose`` prints which picture was used.
    """
    check_load_args(size, channels, crop)
    if widget is not None and not hasattr(widget, "value"):
        raise ValueError(
            f"widget must be the FileUpload from upload_widget(), got {type(widget).__name__}."
        )
    extra, source = "", path
    files = uploaded_files(widget.value) if widget is not None and path is None else []
    if path is None and not files and dialog:
        files = dialog_files(verbose)
    if files:
        source = io.BytesIO(files[0][1])
        source.name = files[0][0]  # error messages and ImageInfo then name the learner's file
        extra = f" (the first of {len(files)} files)" if len(files) > 1 else ""
    if source is not None:
        x, info = load_image_info(source, size, channels, crop)
        if verbose:
            print(f"Loaded {info.describe()}{extra}.")
        return x, info
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


def dialog_files(verbose: bool = True) -> list[tuple[str, bytes]]:
    """Files from Colab's upload dialog; [] outside Colab or when the dialog fails/is cancelled."""
    if not in_colab():
        if verbose:
            print("dialog=True opens a file dialog only in Colab; here use upload_widget().")
        return []
    try:
        from google.colab import files  # imported only in Colab

        return uploaded_files(files.upload())
    except ImageLoadError:  # a file did arrive but is unusable (too large, no bytes): say so
        raise
    except Exception as err:  # noqa: BLE001 - a cancelled or broken dialog falls back
        if verbose:
            print(f"The Colab upload dialog did not return a file ({err}).")
        return []

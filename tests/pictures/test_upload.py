"""Tests for upload.py: the upload button, the values ipywidgets 7/8 and Colab give, and the
fallback to the bundled picture.

Every value shape ends in a picture, the bundled default (nothing uploaded) or an
``ImageLoadError`` naming the file; sizes are checked before anything is copied.
"""

from __future__ import annotations

import datetime
import io
import sys
import tracemalloc
import types

import pytest
import torch
from PIL import Image

from diffusion_helpers.pictures import upload
from diffusion_helpers.pictures.images import DEFAULT_IMAGE, MAX_BYTES, ImageLoadError, load_image
from diffusion_helpers.pictures.upload import (
    pick_image,
    upload_image,
    upload_widget,
    uploaded_files,
)

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def pixel(x: torch.Tensor, row: int, col: int) -> list[float]:
    return x[0, :, row, col].tolist()


def colour_png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 10), color).save(buf, "PNG")
    return buf.getvalue()


def v8_value(name: str, data: bytes) -> tuple[dict, ...]:
    """What ipywidgets 8 puts in FileUpload.value after one upload."""
    modified = datetime.datetime(2024, 5, 1, tzinfo=datetime.timezone.utc)
    return (
        {
            "name": name,
            "type": "image/png",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": modified,
        },
    )


def v7_value(name: str, data: bytes) -> dict:
    """What ipywidgets 7 puts in FileUpload.value after one upload."""
    metadata = {"name": name, "type": "image/png", "size": len(data), "lastModified": 0}
    return {name: {"metadata": metadata, "content": data}}


def test_unattended_upload_uses_the_default(capsys):
    colab_loaded = "google.colab" in sys.modules
    x, info = pick_image(size=16)
    assert torch.equal(x, load_image(DEFAULT_IMAGE, size=16))
    assert info.name == DEFAULT_IMAGE.name
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one line
    assert "No picture uploaded" in out and "scene.png" in out
    assert "re-run this cell" in out and 'load_image("path/to/photo.jpg")' in out
    assert ("google.colab" in sys.modules) == colab_loaded  # nothing imported google.colab
    assert torch.equal(upload_image(upload_widget(), size=16), x)  # an empty button: same


def test_upload_quiet_and_custom_default(capsys):
    x = upload_image(size=8, default=Image.new("RGB", (8, 8), BLUE), verbose=False)
    assert pixel(x, 0, 0) == [-1.0, -1.0, 1.0]
    assert capsys.readouterr().out == ""


def test_uploaded_files_parses_every_format():
    data = colour_png(GREEN)
    expected = [("green.png", data)]
    assert uploaded_files(v8_value("green.png", data)) == expected
    assert uploaded_files(v7_value("green.png", data)) == expected
    assert uploaded_files({"green.png": data}) == expected  # google.colab.files.upload()
    assert uploaded_files(()) == [] and uploaded_files({}) == [] and uploaded_files(None) == []
    with pytest.raises(ImageLoadError, match="upload value"):
        uploaded_files(42)


@pytest.mark.parametrize("make_value", [v7_value, v8_value])
def test_upload_image_from_widget_values(make_value, capsys):
    widget = types.SimpleNamespace(value=make_value("green.png", colour_png(GREEN)))
    x = upload_image(widget, size=8)
    assert torch.all(x[0, 1] == 1.0) and torch.all(x[0, [0, 2]] == -1.0)
    assert capsys.readouterr().out == "Loaded green.png (20x10 RGB -> 8x8).\n"


def test_upload_image_from_a_real_file_upload_widget():
    """A real FileUpload, filled as the browser fills it: ipywidgets 8 sets ``value``; 7.x
    (Colab's) syncs ``metadata`` and ``data`` and then bumps a counter that builds ``value``."""
    import ipywidgets

    widget = upload_widget()
    data = colour_png(RED)
    if int(ipywidgets.__version__.split(".")[0]) >= 8:
        widget.value = v8_value("red.png", data)
    else:
        widget.set_trait("metadata", [{"name": "red.png", "type": "image/png", "size": len(data)}])
        widget.set_trait("data", [data])
        widget.set_trait("_counter", widget._counter + 1)
        assert set(widget.value) == {"red.png"}
    x = upload_image(widget, size=8, verbose=False)
    assert torch.all(x[0, 0] == 1.0) and torch.all(x[0, 1:] == -1.0)


def test_bad_upload_names_the_file():
    widget = types.SimpleNamespace(value=v8_value("notes.pdf", b"%PDF-1.5\n"))
    with pytest.raises(ImageLoadError, match="notes.pdf: it is a PDF"):
        upload_image(widget)
    with pytest.raises(ValueError, match="widget"):
        upload_image(widget=42)


def test_colab_dialog(monkeypatch, capsys):
    colab = types.ModuleType("google.colab")
    colab.files = types.SimpleNamespace(upload=lambda: {"blue.png": colour_png(BLUE)})
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(upload, "in_colab", lambda: True)
    x = upload_image(dialog=True, size=8)
    assert torch.all(x[0, 2] == 1.0) and torch.all(x[0, :2] == -1.0)
    assert "Loaded blue.png" in capsys.readouterr().out


def test_dialog_outside_colab_falls_back(monkeypatch, capsys):
    monkeypatch.setattr(upload, "in_colab", lambda: False)
    x = upload_image(dialog=True, size=8)
    assert torch.equal(x, load_image(DEFAULT_IMAGE, size=8))
    out = capsys.readouterr().out
    assert "only in Colab" in out and "No picture uploaded" in out


def test_path_comes_before_the_upload(tmp_path, capsys):
    path = tmp_path / "mine.png"
    path.write_bytes(colour_png(BLUE))
    widget = types.SimpleNamespace(value=v8_value("green.png", colour_png(GREEN)))
    x, info = pick_image(widget, path=path, size=8)
    assert torch.all(x[0, 2] == 1.0) and torch.all(x[0, :2] == -1.0)  # blue: the path
    assert info.name == str(path) and info.original_size == (20, 10)
    assert capsys.readouterr().out == f"Loaded {path} (20x10 RGB -> 8x8).\n"


def test_several_uploads_use_the_first(capsys):
    value = v8_value("red.png", colour_png(RED)) + v8_value("green.png", colour_png(GREEN))
    x = upload_image(types.SimpleNamespace(value=value), size=8)
    assert torch.all(x[0, 0] == 1.0) and torch.all(x[0, 1:] == -1.0)
    assert "the first of 2 files" in capsys.readouterr().out


def v8_item(**fields) -> dict:
    """One ipywidgets 8 upload entry with ``fields`` replaced (a field set to ... is removed)."""
    item = dict(v8_value("cat.png", colour_png(RED))[0], **fields)
    return {key: value for key, value in item.items() if value is not ...}


@pytest.mark.parametrize(
    "value, words",
    [
        ((v8_item(content=...),), "cat.png: the upload has no content"),
        ((v8_item(content=None),), "cat.png: the upload has no content"),
        ((v8_item(content="iVBORw0KGgo="),), "cat.png: the upload has content of type str"),
        ((v8_item(content=[137, 80, 78, 71]),), "content of type list"),
        ((v8_item(content={"data": b"x"}),), "content of type dict"),
        ((v8_item(content=1.5),), "content of type float"),
        ((v8_item(name=None, content=None),), "the uploaded file: the upload has no content"),
        (({"cat.png": {"metadata": {"name": "cat.png"}}},), "uploaded file: the upload has no"),
        ({"cat.png": {"metadata": None, "content": None}}, "cat.png: the upload has no content"),
        ({"cat.png": {"metadata": "odd", "content": "text"}}, "content of type str"),
        ({"cat.png": None}, "cat.png: the upload has no content"),  # Colab style, no bytes
        ({"cat.png": "not bytes"}, "content of type str"),
        (("cat.png",), "content of type str"),
        ((None,), "no content"),
        ("cat.png", "upload value of type str"),
        (b"\x89PNG", "upload value of type bytes"),
        (42, "upload value of type int"),
    ],
)
def test_malformed_upload_values_raise_image_load_error(value, words):
    with pytest.raises(ImageLoadError, match=words):
        upload_image(types.SimpleNamespace(value=value), size=8, verbose=False)


def peak_memory_of_upload_error(value: object, words: str) -> int:
    """Peak bytes Python allocated while ``uploaded_files(value)`` raised ``words``."""
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError, match=words):
            uploaded_files(value)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    "value", [(v8_item(content=10**9),), {"cat.png": {"content": 10**9}}, {"cat.png": 10**9}]
)
def test_int_content_is_refused_without_allocating(value):
    # bytes(10**9) would allocate 1 GB of zeros; the type is checked before anything is made.
    # 1 MB leaves room for pytest's and the message's own small allocations.
    assert peak_memory_of_upload_error(value, "content of type int") < 1_000_000


def test_upload_size_is_checked_before_copying():
    data = bytes(MAX_BYTES + 1)  # made before tracing starts: only a copy of it would count
    words = "big.png: it is 31,457,281 bytes, over the limit of 31,457,280 bytes"
    for value in (v8_value("big.png", data), v7_value("big.png", data), {"big.png": data}):
        assert peak_memory_of_upload_error(value, words) < 1_000_000


@pytest.mark.parametrize("value", [None, (), [], {}])
def test_empty_upload_values_use_the_default(value):
    x = upload_image(types.SimpleNamespace(value=value), size=8, verbose=False)
    assert torch.equal(x, load_image(DEFAULT_IMAGE, size=8))


def test_other_names_and_contents_are_accepted():
    data = colour_png(GREEN)
    nameless = ({"content": memoryview(data)},)
    assert uploaded_files(nameless) == [("the uploaded file", data)]
    assert uploaded_files([bytearray(data)]) == [("the uploaded file", data)]  # a list of bytes
    assert uploaded_files({"key.png": {"metadata": None, "content": data}}) == [("key.png", data)]
    assert uploaded_files({"k": {"name": "own.png", "content": data}}) == [("own.png", data)]
    empty = types.SimpleNamespace(value=v8_value("blank.png", b""))
    with pytest.raises(ImageLoadError, match="blank.png: it is empty"):
        upload_image(empty)


def test_unusable_dialog_upload_is_reported_not_replaced(monkeypatch):
    colab = types.ModuleType("google.colab")
    colab.files = types.SimpleNamespace(upload=lambda: {"huge.png": 10**9})
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(upload, "in_colab", lambda: True)
    with pytest.raises(ImageLoadError, match="huge.png"):
        upload_image(dialog=True, size=8)

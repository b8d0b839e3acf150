"""How a message names a path (checks/paths.py): any name a file system allows, printable."""

import os
from pathlib import Path

from diffusion_helpers.checks.paths import file_kind, shown_path


def test_a_name_that_is_not_utf8_is_shown_with_escapes():
    name = os.fsdecode(b"/data/\xff\xfe.png")  # how Python holds such a name: "\udcff\udcfe"
    shown = shown_path(Path(name))
    assert shown == "/data/\\xff\\xfe.png"
    assert shown.encode("utf-8")  # prints anywhere
    assert shown_path(b"/data/\xff.png") == "/data/\\xff.png"


def test_ordinary_names_are_shown_as_they_are():
    assert shown_path(Path("photos/chat noir é.jpg")) == "photos/chat noir é.jpg"
    assert shown_path("unet.pt") == "unet.pt"


def test_a_string_no_file_system_made_is_still_printable():
    assert shown_path("a\ud800b").encode("utf-8")


def test_what_a_file_is_in_a_few_words(tmp_path):
    """What a message says a file is, so that it never calls a user's file a damaged one of ours."""
    cases = {
        "notes.txt": b"Shopping list: eggs, milk\n\xc3\xa9clairs\n",
        "list.pt": b'{"a": 1}',
        "pickle.pkl": b"\x80\x04\x95 ...",
        "photo.jpg": b"\xff\xd8\xff\xe0 a photo",
        "cut.pt": b"PK\x03\x04 the first bytes of a zip archive",
        "empty.pt": b"",
        "bytes.bin": bytes(range(256)),
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    kinds = {name: file_kind(tmp_path / name) for name in cases}
    assert kinds == {
        "notes.txt": "a text file",
        "list.pt": "a text file",
        "pickle.pkl": "a Python pickle",
        "photo.jpg": "a JPEG picture",
        "cut.pt": "a zip archive",
        "empty.pt": "an empty file",
        "bytes.bin": "a file of another kind",
    }
    assert file_kind(tmp_path) == "a folder"
    assert file_kind(tmp_path / "nothing") == "nothing"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert file_kind(tmp_path / "loop") == "a symbolic link that loops back on itself"

"""How a message names a path (checks/paths.py): any name a file system allows, printable."""

import os
from pathlib import Path

from diffusion_helpers.checks.paths import shown_path


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

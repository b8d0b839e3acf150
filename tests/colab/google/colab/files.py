"""``files.upload()``: Colab's file dialog, answered with ``COLAB_STANDIN_UPLOAD``."""

import os
from pathlib import Path

UPLOADS = []  # what each call answered, for the tests


def upload() -> dict:
    """{file name: bytes} of the stand-in picture, or {} (Cancel) when none is set."""
    chosen = os.environ.get("COLAB_STANDIN_UPLOAD")
    answer = {Path(chosen).name: Path(chosen).read_bytes()} if chosen else {}
    UPLOADS.append(sorted(answer))
    print(f"[stand-in Colab dialog] answered with {sorted(answer) or 'Cancel'}")
    return answer

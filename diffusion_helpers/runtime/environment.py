"""Where the code runs: quick mode for tests, Colab, and the work folder the notebooks share."""

from __future__ import annotations

import os
import sys
from pathlib import Path

QUICK_ENV = "DIFFUSION_QUICK"


WORKDIR_ENV = "DIFFUSION_WORKDIR"  # the folder the notebooks pass files through


def quick_mode() -> bool:
    """True when ``DIFFUSION_QUICK`` is set to 1/true/yes: tiny sizes and few steps (tests, CI)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def work_dir_path() -> Path:
    """The work folder: ``DIFFUSION_WORKDIR``, else ``outputs/`` in the current directory (not
    created here; :func:`.tutorial.work_folder.work_dir` creates and checks it)."""
    return Path(os.environ.get(WORKDIR_ENV, "outputs")).expanduser()


def in_colab() -> bool:
    """True inside Google Colab (detected at run time; nothing imports google.colab unless so)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ

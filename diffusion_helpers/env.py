"""Where the code runs: quick mode for tests, Colab detection, and the device to use."""

from __future__ import annotations

import os
import sys
from typing import Optional, Union

import torch

QUICK_ENV = "DIFFUSION_QUICK"


def quick_mode() -> bool:
    """True when ``DIFFUSION_QUICK`` is set to 1/true/yes: tiny sizes and few steps (tests, CI)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def in_colab() -> bool:
    """True inside Google Colab (detected at run time; nothing imports google.colab unless so)."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def pick_device(device: Optional[Union[str, torch.device]] = None) -> torch.device:
    """Return ``device`` if given, else the fastest available: CUDA, then Apple MPS, then CPU."""
    if device is not None:
        try:
            chosen = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device {device!r} is not a device name like 'cpu' or 'cuda'."
            ) from err
        if chosen.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' was asked for, but no CUDA GPU is available here.")
        return chosen
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: Optional[Union[str, torch.device]] = None) -> str:
    """One line naming the device, with a hint to switch to a GPU runtime when on CPU."""
    dev = pick_device(device)
    if dev.type == "cuda":
        return f"Using GPU: {torch.cuda.get_device_name(dev)}."
    if dev.type == "mps":
        return "Using the Apple GPU (MPS)."
    hint = (
        " In Colab, Runtime > Change runtime type > GPU makes training several times faster."
        if in_colab()
        else " A CUDA GPU (for example a Colab GPU runtime) makes training several times faster."
    )
    return f"Using the CPU ({os.cpu_count()} cores).{hint}"

"""Where the code runs: quick mode for tests, Colab detection, the device, and how to use it
(precision, memory format, CPU threads, the fp16 gradient scaler)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Optional, Union

import torch

QUICK_ENV = "DIFFUSION_QUICK"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")


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


def make_grad_scaler() -> object:
    """A CUDA gradient scaler for fp16 training (``torch.amp`` from torch 2.3, else the old name)."""
    if hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


def cpu_supports_bf16() -> bool:
    """True when oneDNN can run bfloat16 natively here (AVX-512 BF16 or AMX)."""
    cpu = getattr(torch, "cpu", None)
    checks = [
        getattr(cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    ]
    return torch.backends.mkldnn.is_available() and any(c is not None and c() for c in checks)


def pick_precision(precision: str, device: torch.device) -> str:
    """Resolve ``"auto"``: bf16 autocast on CUDA GPUs and CPUs that support it, fp16 with a
    gradient scaler on older GPUs, fp32 elsewhere. bf16 on a 2-core AVX-512 BF16 CPU trained the
    tiny net at 32 px 1.6x faster than fp32 (``bench/train_speed.py``)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("precision='fp16' needs a CUDA GPU; use 'bf16' or 'fp32' here.")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        # bf16 units arrived with compute capability 8 (Ampere); torch reports bf16 as
        # "supported" on older GPUs (Colab's T4) through slow emulation, so ask the hardware.
        return "bf16" if torch.cuda.get_device_capability(device)[0] >= 8 else "fp16"
    if device.type == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


def pick_memory_format(memory_format: str, device: torch.device) -> torch.memory_format:
    """Resolve ``"auto"`` to plain NCHW: channels_last measured no faster for these small nets,
    on a 2-core AVX-512 CPU under bf16 (slower: 124 vs 156 img/s, tiny, 32 px) and on an H200
    GPU (tiny at 32 px: equal; small at 64 px: 1521 vs 1870 img/s)."""
    if memory_format not in MEMORY_FORMATS:
        raise ValueError(f"memory_format must be one of {', '.join(MEMORY_FORMATS)}.")
    return torch.channels_last if memory_format == "channels_last" else torch.contiguous_format


def pick_threads(threads: Optional[int], device: torch.device) -> int:
    """CPU threads for training: ``threads`` if given; else 1 when other programs already keep
    every core busy (1-minute load average >= cores), else torch's current setting. Threads
    that wait on each other for a busy core are ruinous: on a shared 2-core machine at load 4
    the tiny net trained at 1.8 img/s with 2 threads and 73 img/s with 1."""
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}.")
        return threads
    cores = os.cpu_count() or 1
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores
    return 1 if device.type == "cpu" and busy else torch.get_num_threads()


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

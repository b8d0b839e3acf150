"""Where the code runs: quick mode for tests, Colab detection, the device, and how to use it
(precision, memory format, CPU threads, the fp16 gradient scaler)."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional, Union

import torch

QUICK_ENV = "DIFFUSION_QUICK"
WORKDIR_ENV = "DIFFUSION_WORKDIR"  # the folder the notebooks pass files through
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")


def quick_mode() -> bool:
    """True when ``DIFFUSION_QUICK`` is set to 1/true/yes: tiny sizes and few steps (tests, CI)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def work_dir_path() -> Path:
    """The work folder: ``DIFFUSION_WORKDIR``, else ``outputs/`` in the current directory (not
    created here; :func:`.tutorial.work_dir` creates and checks it)."""
    return Path(os.environ.get(WORKDIR_ENV, "outputs"))


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


def pick_threads(threads: Optional[int], device: torch.device, most: Optional[int] = None) -> int:
    """CPU threads for training and sampling: ``threads`` if given; on a CPU, as many as there
    are cores that other programs leave free (:func:`busy_cores_of_others`), at least 1 and at
    most torch's current setting; elsewhere torch's current setting.

    Threads that wait on each other for a busy core are ruinous: with two other programs
    spinning on this 2-core machine, 2 threads trained 12x slower than idle and sampled 7x
    slower, where a fair share predicts 2x. Counting the others' load (not our own, as the
    load average does) keeps an idle machine at full speed right after our own busy run.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}.")
        return threads
    current = most if most is not None else torch.get_num_threads()
    if device.type != "cpu":
        return current
    others = busy_cores_of_others()
    if others is None:  # no /proc/stat (macOS, Windows): fall back on the load average
        busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= usable_cores()
        return 1 if busy else current
    return max(1, min(current, round(usable_cores() - others)))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


_OTHERS_CACHE: dict[str, float] = {}
OTHERS_INTERVAL = 0.1  # seconds to watch /proc/stat; 10 jiffies per core at the usual 100 Hz
OTHERS_CACHE_SECONDS = 2.0  # many short calls (a notebook's sample cells) measure once


def busy_cores_of_others(interval: float = OTHERS_INTERVAL) -> Optional[float]:
    """How many cores other processes keep busy now: the machine's busy CPU time over
    ``interval`` seconds (from /proc/stat) minus this process's own, per second. None where
    /proc/stat cannot be read. Reused for OTHERS_CACHE_SECONDS after a measurement."""
    now = time.monotonic()
    if now - _OTHERS_CACHE.get("at", -1e9) < OTHERS_CACHE_SECONDS:
        return _OTHERS_CACHE["value"]
    first = _machine_busy_seconds()
    if first is None:
        return None
    own, start = time.process_time(), time.monotonic()
    time.sleep(interval)
    second = _machine_busy_seconds()
    elapsed = time.monotonic() - start
    value = max(0.0, (second - first - (time.process_time() - own)) / elapsed)
    _OTHERS_CACHE.update(at=time.monotonic(), value=value)
    return value


def _machine_busy_seconds() -> Optional[float]:
    """CPU seconds all cores have spent busy since boot (not idle, not waiting for disk)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10])  # already counted in user and nice
    return (sum(fields) - idle - guest) / os.sysconf("SC_CLK_TCK")


class ThreadGuard:
    """Torch's CPU threads for a long run (training): chosen by :func:`pick_threads` on entry
    and chosen again every ``every`` seconds (:meth:`update`), as other programs start and stop;
    restored on exit. Only a ``threads=None`` run on the CPU is re-chosen."""

    def __init__(self, threads: Optional[int], device: torch.device, every: float = 30.0) -> None:
        self.given, self.device, self.every = threads, device, every
        self.previous = self.most = torch.get_num_threads()
        self.last = time.monotonic()

    def __enter__(self) -> ThreadGuard:  # noqa: D105
        torch.set_num_threads(pick_threads(self.given, self.device, self.most))
        return self

    def update(self) -> None:
        """Choose again if ``every`` seconds have passed since the last choice."""
        if self.given is None and time.monotonic() - self.last > self.every:
            torch.set_num_threads(pick_threads(None, self.device, self.most))
            self.last = time.monotonic()

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        torch.set_num_threads(self.previous)


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

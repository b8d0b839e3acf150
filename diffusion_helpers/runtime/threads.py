"""CPU threads: as many as the cores that other programs leave free, chosen once per call.

A thread that waits for a busy core slows every other one down: with two other programs
spinning on a 2-core machine, 2 threads trained 12x slower than idle and sampled 7x slower,
where a fair share predicts 2x (``bench/busy_cpu.py``)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Optional

import torch


def pick_threads(threads: Optional[int], device: torch.device) -> int:
    """``threads`` if given (at most the cores this process may use); on a CPU, the cores that
    other programs leave free (:func:`busy_cores_of_others`), at least 1 and at most torch's
    setting; elsewhere torch's setting."""
    cores = usable_cores()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}.")
        if threads > cores:
            raise ValueError(
                f"threads={threads} is more than the {cores} CPU core{'s' if cores > 1 else ''} "
                f"this process may use: give threads from 1 to {cores}, or None to choose."
            )
        return threads
    current = torch.get_num_threads()
    if device.type != "cpu":
        return current
    others = busy_cores_of_others()
    if others is None:  # no /proc/stat (macOS, Windows): the load average
        busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores
        return 1 if busy else current
    return max(1, min(current, round(cores - others)))


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), else os.cpu_count()."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def busy_cores_of_others(interval: float = 0.1) -> Optional[float]:
    """How many cores other processes keep busy now: the machine's busy CPU time over
    ``interval`` seconds (/proc/stat) minus this process's own; None where it cannot be read."""
    first = _machine_busy_seconds()
    if first is None:
        return None
    own, start = time.process_time(), time.monotonic()
    time.sleep(interval)
    second = _machine_busy_seconds()
    elapsed = time.monotonic() - start
    return max(0.0, (second - first - (time.process_time() - own)) / elapsed)


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


@contextlib.contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads, then restore the previous number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)

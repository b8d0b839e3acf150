"""CPU threads: as many as the cores that other programs leave free, chosen again as they come
and go (a thread that waits for a busy core slows every other one down)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Optional

import torch


def pick_threads(threads: Optional[int], device: torch.device, most: Optional[int] = None) -> int:
    """CPU threads for training and sampling: ``threads`` if given (at most the cores this
    process may use: more only wait on each other, and 1000 threads on 2 cores did not finish
    2 training steps in 300 s); on a CPU, as many as there are cores that other programs leave
    free (:func:`busy_cores_of_others`), at least 1 and at most torch's current setting;
    elsewhere torch's current setting.

    Threads that wait on each other for a busy core are ruinous: with two other programs
    spinning on this 2-core machine, 2 threads trained 12x slower than idle and sampled 7x
    slower, where a fair share predicts 2x. Counting the others' load (not our own, as the
    load average does) keeps an idle machine at full speed right after our own busy run.
    """
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}.")
        cores = usable_cores()
        if threads > cores:
            raise ValueError(
                f"threads={threads} is more than the {cores} CPU core{'s' if cores > 1 else ''} "
                f"this process may use: give threads from 1 to {cores}, or None to choose."
            )
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

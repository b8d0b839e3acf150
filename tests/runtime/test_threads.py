"""CPU threads (runtime/threads.py): the cores other programs leave free, restored after use."""

import subprocess
import sys
import time

import pytest
import torch

from diffusion_helpers.runtime import threads
from diffusion_helpers.runtime.threads import (
    busy_cores_of_others,
    cpu_threads,
    pick_threads,
    usable_cores,
)

CPU = torch.device("cpu")


def test_cpu_threads_are_restored_even_on_errors():
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError):
        with cpu_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError
    assert torch.get_num_threads() == before


def test_given_threads_win_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    assert pick_threads(3, CPU) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            pick_threads(bad, CPU)


def test_more_threads_than_cores_are_refused(monkeypatch):
    """1000 threads on 2 cores wait on each other: 2 training steps took over 300 s."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    assert pick_threads(2, CPU) == 2
    with pytest.raises(ValueError, match="threads=1000 is more than the 2 CPU cores") as info:
        pick_threads(1000, CPU)
    assert "from 1 to 2" in str(info.value)


def test_threads_leave_the_cores_others_keep_busy(monkeypatch):
    """The rule, with the measurement replaced: free cores, at least 1, at most torch's own."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 4)
    for others, want in [(0.0, 4), (0.9, 3), (2.2, 2), (3.7, 1), (9.0, 1)]:
        monkeypatch.setattr(threads, "busy_cores_of_others", lambda o=others: o)
        assert pick_threads(None, CPU) == want, others
    monkeypatch.setattr(threads, "busy_cores_of_others", lambda: None)  # no /proc/stat
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert pick_threads(None, CPU) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_spinning_process_is_counted_and_our_own_work_is_not(monkeypatch):
    """A busy loop in another process shows up as about one more busy core; the same loop in
    a thread of this process does not (it is our own work, which the load average counts)."""
    import threading

    def measure():
        return min(busy_cores_of_others(0.4) for _ in range(2))  # min: less noise from others

    baseline = measure()
    if baseline > usable_cores() - 1.2:
        pytest.skip(f"other programs keep {baseline:.1f} cores busy: no free core to watch")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        other = measure()
    finally:
        spinner.kill()
        spinner.wait()
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        own = measure()
    finally:
        stop.set()
        worker.join()
    # One spinning process is one core (0.6 allows for other programs on a shared machine).
    assert other > baseline + 0.6, (baseline, other)
    assert own < baseline + 0.4, (baseline, own)

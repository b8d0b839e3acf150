"""Interruptions keep the work (interrupts.py, and train/CLI in real processes): SIGTERM and
Ctrl-C save, exit 143 / 130, skip --export, and say truthfully what is on disk."""

import os
import signal
import subprocess
import sys
import time

import pytest

from diffusion_helpers.runtime.interrupts import (
    EXIT_STATUS,
    Interrupted,
    StopRequests,
    stop_signals,
)
from diffusion_helpers.storage.checkpoint import read_checkpoint


def test_sigterm_becomes_an_exception_inside_the_block():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as info:
        with stop_signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(1)  # the handler runs at the next bytecode; this is never finished
    assert info.value.signal_name == "SIGTERM" and isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before


def test_during_a_run_a_signal_is_noted_and_a_second_one_raises():
    """The first Ctrl-C or SIGTERM waits for the step boundary; a second stops at once (a step
    that hangs), except while a checkpoint is written; the handlers are restored after."""
    with StopRequests() as stops:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        assert stops.noted == ["SIGTERM"] and stops.first == "SIGTERM"
        with stops.held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            finished = True  # the "save" was not cut short
        assert finished and stops.noted == ["SIGTERM", "SIGINT"]
        with pytest.raises(Interrupted) as info:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # the handler runs at the next bytecode; this is never finished
    assert info.value.signal_name == "SIGINT"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def start_training(tmp_path, *extra):
    """`train` in quick mode with a long step budget, in its own process; returns once it has
    done a few steps (its progress bar says so), with the process, the checkpoint path and a
    function that returns everything it wrote to stderr."""
    import re
    import threading

    out = tmp_path / "unet.pt"
    proc = subprocess.Popen(
        [sys.executable, "-m", "diffusion_helpers", "train", "--steps", "100000", "--size",
         "16", "--device", "cpu", "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "DIFFUSION_QUICK": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    chunks = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stderr.read(1), "")))
    reader.start()
    deadline = time.monotonic() + 180
    while not re.search(r" ([3-9]|\d\d+)/100000", "".join(chunks)):
        assert proc.poll() is None, "".join(chunks)[-2000:]
        assert time.monotonic() < deadline, "training did not reach step 3 within 3 minutes"
        time.sleep(0.1)
    return proc, out, lambda: (reader.join(timeout=60), "".join(chunks))[1]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_training_saves_exits_non_zero_and_skips_export(tmp_path, sig):
    proc, out, stderr_text = start_training(tmp_path, "--export", str(tmp_path / "small.pt"))
    proc.send_signal(sig)
    proc.wait(timeout=120)
    stdout, stderr = proc.stdout.read(), stderr_text()
    name = signal.Signals(sig).name
    assert proc.returncode == EXIT_STATUS[name], stderr[-2000:]
    steps = read_checkpoint(out)["step"]
    assert 0 < steps < 500  # saved on the signal, not at a scheduled checkpoint
    assert f"Stopped by {name} at step {steps}" in stdout
    assert f"holds {steps} training steps" in stderr and "--export was skipped" in stderr
    assert not (tmp_path / "small.pt").exists()
    assert not (tmp_path / "unet.pt.lock").exists()
    assert not list(tmp_path.glob("*.tmp"))

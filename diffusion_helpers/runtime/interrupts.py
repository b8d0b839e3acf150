"""Stopping long work without losing it: Ctrl-C and SIGTERM as exceptions, saves that finish.

- Ctrl-C (SIGINT, the notebook's interrupt button) raises ``KeyboardInterrupt`` as usual.
- SIGTERM (what a closing Colab runtime, ``timeout`` or ``kill`` send) would end the process
  at once; inside :func:`stop_signals` it raises :class:`Interrupted` instead, so training can
  save before it ends.
- Inside :func:`finish_first` (around a checkpoint save) both signals only take note: the save
  completes, and the caller learns that a second interrupt came.
Signal handlers can only be set from the main thread; elsewhere both do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

EXIT_STATUS = {"SIGINT": 130, "SIGTERM": 143}  # 128 + the signal number, as shells report


class Interrupted(KeyboardInterrupt):
    """A stop request by signal; ``signal_name`` is ``"SIGINT"`` or ``"SIGTERM"``."""

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


def main_thread() -> bool:
    """True in the main thread, the only one where signal handlers can be set."""
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` ("SIGTERM") like Ctrl-C raises
    ``KeyboardInterrupt``; the previous handler is restored afterwards."""
    if not main_thread():
        yield
        return

    def on_term(signum: int, frame: object) -> None:
        raise Interrupted("SIGTERM")

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def finish_first() -> Iterator[list[str]]:
    """Within the block, SIGINT and SIGTERM are noted in the yielded list instead of stopping
    the work (a second Ctrl-C during a save waits for the save)."""
    received: list[str] = []
    if not main_thread():
        yield received
        return

    def note(signum: int, frame: object) -> None:
        received.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, note) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)

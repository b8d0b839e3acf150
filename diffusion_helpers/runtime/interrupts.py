"""Stopping long work without losing it: Ctrl-C and SIGTERM, noted or raised.

- Outside a training run, Ctrl-C (SIGINT, the notebook's interrupt button) raises
  ``KeyboardInterrupt`` as usual, and inside :func:`stop_signals` SIGTERM (what a closing
  Colab runtime, ``timeout`` or ``kill`` send) raises :class:`Interrupted` instead of ending
  the process at once: the command line uses it to exit with a message.
- During a training run (:class:`StopRequests`) both are only noted: the run stops at the next
  step boundary and saves, so a checkpoint always holds whole steps. A second Ctrl-C raises at
  once (for a step that hangs), except while a checkpoint is being written.
Signal handlers can only be set from the main thread; elsewhere both do nothing.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Optional

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


class StopRequests:
    """Ctrl-C and SIGTERM noted in :attr:`noted` while the block runs, not raised.

    ``second_raises``: a second signal raises at once (:class:`Interrupted` with its name), for
    a step that would never reach its end; never inside :meth:`held` (a checkpoint being
    written). Several processes (torchrun) keep it False: one process leaving a collective
    halfway would hang the others.
    """

    def __init__(self, second_raises: bool = True) -> None:
        self.noted: list[str] = []
        self.second_raises = second_raises
        self.holding = False
        self.previous: dict = {}

    def __enter__(self) -> StopRequests:  # noqa: D105
        if main_thread():
            self.previous = {
                s: signal.signal(s, self._note) for s in (signal.SIGINT, signal.SIGTERM)
            }
        return self

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        for s, handler in self.previous.items():
            signal.signal(s, handler)
        self.previous = {}

    def _note(self, signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        again = bool(self.noted)
        self.noted.append(name)
        if again and self.second_raises and not self.holding:
            raise Interrupted(name)

    def note(self, name: str) -> None:
        """Note a stop asked for without a signal (a callback that raised KeyboardInterrupt)."""
        self.noted.append(name)

    @property
    def first(self) -> Optional[str]:
        """The stop asked for: "SIGTERM" before "SIGINT" (it ends the process), else None."""
        return "SIGTERM" if "SIGTERM" in self.noted else "SIGINT" if self.noted else None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Within the block no signal raises, not even a second one (a save must finish)."""
        holding, self.holding = self.holding, True
        try:
            yield
        finally:
            self.holding = holding

"""Time-boxing the learner's function: :func:`call_with_time_limit` raises :class:`TimeUp` inside
a call that runs too long, and leaves no timer, handler or thread behind. (Neither way stops a
function that catches every exception inside an endless loop.)"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from typing import Any, Callable


class TimeUp(BaseException):
    """Raised inside a call past its time limit; a ``BaseException``, as ``KeyboardInterrupt``
    is, so that the learner's ``except Exception:`` does not swallow it."""


def call_with_time_limit(fn: Callable[[], Any], seconds: float) -> Any:
    """Return ``fn()``, or raise :class:`TimeUp` if it runs longer than ``seconds``."""
    return with_alarm(fn, seconds) if alarm_usable() else with_watchdog(fn, seconds)


def alarm_usable() -> bool:
    """True on Unix in the main thread, with a SIGALRM handler Python can put back."""
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) is not None
    )


def with_alarm(fn: Callable[[], Any], seconds: float) -> Any:
    """A one-shot ``setitimer`` alarm whose handler raises inside ``fn``, even in a sleep; an
    alarm set before it gets back what is left of its time."""
    running = [True]  # an alarm that comes after fn has returned must not raise

    def on_alarm(signum: int, frame: object) -> None:
        if running[0]:
            raise TimeUp

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    started, previous_timer = time.monotonic(), (0.0, 0.0)
    try:
        try:
            previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
            return fn()
        finally:
            running[0] = False
    finally:  # outside the inner block: the one alarm has come or is now ignored
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        delay, interval = previous_timer
        if delay > 0:
            left = max(delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


# Our own function objects (CDLL's [] does not cache), so that their argtypes cannot clash with
# another library's use of the same C function. exc = NULL withdraws a pending exception.
try:
    raise_in = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    raise_in.argtypes = (ctypes.c_ulong, ctypes.py_object)
    clear_in = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    clear_in.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
except (AttributeError, TypeError):  # not CPython: no watchdog, the call runs unbounded
    raise_in = clear_in = None


def with_watchdog(fn: Callable[[], Any], seconds: float) -> Any:
    """Elsewhere (Windows, other threads): a watchdog thread raises in this thread with
    ``PyThreadState_SetAsyncExc``, between two bytecodes (a long C call finishes first)."""
    if raise_in is None:
        return fn()
    target, lock, state = threading.get_ident(), threading.Lock(), {"running": True}

    def fire() -> None:
        with lock:
            if state["running"]:
                state["fired"] = True
                raise_in(target, TimeUp)

    watchdog = threading.Timer(seconds, fire)
    watchdog.name, watchdog.daemon = "exercise time limit", True
    watchdog.start()
    try:
        try:
            return fn()
        finally:
            with lock:
                state["running"] = False
                if state.get("fired"):  # withdraw it, if fn returned before it was raised
                    clear_in(target, None)
    finally:
        watchdog.cancel()
        watchdog.join()

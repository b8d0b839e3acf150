"""Time-boxing the learner's function: :func:`call_with_time_limit` raises :class:`TimeUp`
inside a call that runs too long, and leaves no timer, handler or thread behind.

Two ways, because Python can only stop running Python code from inside its own thread:

- In the main thread on Linux and macOS (a plain script, and the Jupyter and Colab kernels,
  which run cells in the main thread), a one-shot ``signal.setitimer(ITIMER_REAL)`` alarm. Its
  handler raises ``TimeUp`` in the learner's code, even during a ``time.sleep``.
- Elsewhere (Windows has no SIGALRM; no thread but the main one may set signal handlers), a
  watchdog thread raises ``TimeUp`` in the calling thread with ``PyThreadState_SetAsyncExc``.
  We prefer it to ``_thread.interrupt_main()``: that one reaches only the main thread, arrives
  as a ``KeyboardInterrupt`` that looks like the learner's own Ctrl-C, and cannot be withdrawn
  when the function ends just as the watchdog fires; an asynchronous exception targets the
  calling thread, has its own type, and a pending one can be cleared. It is raised between two
  Python bytecodes, so a single long C call (a blocking sleep) finishes first.

Neither can stop a function that catches every exception (a bare ``except:``) inside an
endless loop: that one needs the notebook's stop button, or a restart of the kernel.
"""

from __future__ import annotations

import ctypes
import signal
import threading
import time
from typing import Any, Callable


class TimeUp(BaseException):
    """Raised inside a call that ran past its time limit. A ``BaseException``, like
    ``KeyboardInterrupt``, so that the learner's ``except Exception:`` does not swallow it."""


def call_with_time_limit(fn: Callable[[], Any], seconds: float) -> Any:
    """Return ``fn()``, or raise :class:`TimeUp` if it runs longer than ``seconds``."""
    if alarm_usable():
        return _with_alarm(fn, seconds)
    return _with_watchdog(fn, seconds)


def alarm_usable() -> bool:
    """True where a SIGALRM alarm can interrupt this thread: Unix, in the main thread, with a
    SIGALRM handler that Python can put back (not one installed from C)."""
    return (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGALRM) is not None
    )


def _with_alarm(fn: Callable[[], Any], seconds: float) -> Any:
    running = [True]  # an alarm that comes after fn has returned must not raise

    def on_alarm(signum: int, frame: object) -> None:
        if running[0]:
            raise TimeUp

    previous_handler = signal.signal(signal.SIGALRM, on_alarm)
    started = time.monotonic()
    previous_timer = (0.0, 0.0)
    try:
        try:
            previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)  # one shot
            return fn()
        finally:
            running[0] = False
    finally:  # outside the inner block: the one alarm has come or is now ignored
        signal.setitimer(signal.ITIMER_REAL, 0)  # disarm
        signal.signal(signal.SIGALRM, previous_handler)
        delay, interval = previous_timer
        if delay > 0:  # someone else's alarm was pending: give it back what is left of it
            left = max(delay - (time.monotonic() - started), 1e-3)
            signal.setitimer(signal.ITIMER_REAL, left, interval)


# A fresh function object of our own (CDLL's [] does not cache), so that its argtypes cannot
# clash with another library's use of the same C function. exc = NULL clears a pending one.
try:
    _raise_in = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    _raise_in.argtypes = (ctypes.c_ulong, ctypes.py_object)
    _clear_in = ctypes.pythonapi["PyThreadState_SetAsyncExc"]
    _clear_in.argtypes = (ctypes.c_ulong, ctypes.c_void_p)
except (AttributeError, TypeError):  # not CPython: no watchdog, the call runs unbounded
    _raise_in = _clear_in = None


def _with_watchdog(fn: Callable[[], Any], seconds: float) -> Any:
    if _raise_in is None:
        return fn()
    target = threading.get_ident()
    lock = threading.Lock()
    state = {"running": True, "fired": False}

    def fire() -> None:
        with lock:
            if state["running"]:
                state["fired"] = True
                _raise_in(target, TimeUp)

    watchdog = threading.Timer(seconds, fire)
    watchdog.name = "exercise time limit"
    watchdog.daemon = True
    watchdog.start()
    try:
        try:
            return fn()
        finally:
            with lock:
                state["running"] = False
                if state["fired"]:  # withdraw it, if fn returned before it was raised
                    _clear_in(target, None)
    finally:
        watchdog.cancel()
        watchdog.join()

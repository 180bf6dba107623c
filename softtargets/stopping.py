"""Stopping cleanly on a signal. While stop_on() is active, SIGTERM (scancel, preemption, the time limit itself)
raises Stopped in the main thread, as Ctrl-C raises KeyboardInterrupt: the run in progress abandons its hidden work
folder on the way out, so nothing half-written remains. SIGUSR1 (SLURM's warning before a time limit, asked for with
--signal=B:USR1@N) does the same, or, given a grace function, first lets the work go on for the seconds it answers
(the time left before the limit, less a margin): cells that finish in that time are kept, the one still running
then is abandoned. Inside protected() sections (publishing a run folder, writing a cache entry, taking or releasing
a lock) a stop waits until the section ends, so those steps are never cut in half.

Outside stop_on() nothing changes: signals keep their default actions.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Callable, Iterator

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
_state: dict = {"depth": 0, "pending": None, "grace": None, "warned": None}


class Stopped(BaseException):
    """A stop signal arrived. Like KeyboardInterrupt a BaseException: a sweep's per-cell `except Exception` does not
    record it as the cell's failure. cell and completed are filled in by the sweep runner on the way out."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.cell = None  # the cell that was running (sweep runner)
        self.completed = 0  # cells finished before the signal (sweep runner)
        self.outcomes: list = []  # the outcomes of the cells before it (sweep runner)


def _stop(signum: int) -> None:
    if _state["depth"]:
        _state["pending"] = _state["pending"] or signum
        return
    raise Stopped(signum)


def _handler(signum, frame) -> None:
    if signum == signal.SIGUSR1 and _state["grace"] is not None and _state["warned"] is None:
        _state["warned"] = signum
        seconds = _state["grace"]()
        if seconds is not None and seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, seconds)  # SIGALRM ends the grace
            return
    _stop(signum)


def _alarm(signum, frame) -> None:
    _stop(_state["warned"] or signal.SIGUSR1)


@contextmanager
def stop_on(signals: tuple = SIGNALS, grace: Callable[[], float | None] | None = None) -> Iterator[None]:
    """Turn the signals into Stopped for the duration of the block (main thread only), then restore them. grace():
    how many more seconds to work after SIGUSR1 (None or <= 0: stop at once)."""
    previous = {s: signal.signal(s, _handler) for s in signals}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, _alarm)
    _state.update(pending=None, grace=grace, warned=None)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.update(pending=None, grace=None, warned=None)


@contextmanager
def protected() -> Iterator[None]:
    """A section a stop signal must not cut: the signal raises Stopped only once the section has ended (and only
    if the section ended without an error of its own)."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    check()


def check() -> None:
    """Raise Stopped now if a signal arrived during a protected section (outside any section)."""
    if _state["pending"] and not _state["depth"]:
        signum, _state["pending"] = _state["pending"], None
        raise Stopped(signum)

"""Stopping cleanly on a signal. While stop_on() is active, SIGUSR1 (SLURM's warning before a time limit, asked for
with --signal=B:USR1@N) and SIGTERM (scancel, preemption, the time limit itself) raise Stopped in the main thread,
as Ctrl-C raises KeyboardInterrupt: the run in progress abandons its hidden work folder on the way out, so nothing
half-written remains. Inside protected() sections (publishing a run folder, writing a cache entry, taking or
releasing a lock) the signal is held back until the section ends, so those steps are never cut in half.

Outside stop_on() nothing changes: signals keep their default actions.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Iterator

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)
_state = {"depth": 0, "pending": None}


class Stopped(BaseException):
    """A stop signal arrived. Like KeyboardInterrupt a BaseException: a sweep's per-cell `except Exception` does not
    record it as the cell's failure. cell and completed are filled in by the sweep runner on the way out."""

    def __init__(self, signum: int):
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum
        self.cell = None  # the cell that was running (sweep runner)
        self.completed = 0  # cells finished before the signal (sweep runner)


def _handler(signum, frame) -> None:
    if _state["depth"]:
        _state["pending"] = _state["pending"] or signum
        return
    raise Stopped(signum)


@contextmanager
def stop_on(signals: tuple = SIGNALS) -> Iterator[None]:
    """Turn the signals into Stopped for the duration of the block (main thread only), then restore them."""
    previous = {s: signal.signal(s, _handler) for s in signals}
    _state["pending"] = None
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state["pending"] = None


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

"""Pool workers that die with the sweep: kill -9 of a sweep's process must not leave workers computing cells
(and multiprocessing's resource tracker, which lives as long as any worker) behind it.

This module imports nothing heavy: a spawned worker unpickles its initializer, die_with_parent, and arms the
parent-death signal before anything imports torch.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent: int) -> None:
    """End this process when the process `parent` ends, however it ends. Linux: the kernel's parent-death
    signal (prctl PR_SET_PDEATHSIG, SIGKILL); elsewhere a daemon thread polling the parent's id."""
    if sys.platform.startswith("linux"):
        try:
            prctl = ctypes.CDLL(None, use_errno=True).prctl
            if prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                if os.getppid() != parent:  # the parent died before the signal was armed
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)

"""Claims: a sweep cell is claimed before it starts, so two sweeps of one grid into one folder (or two SLURM
submissions, or a requeued task beside its old self) run each cell once.

A claim is a lock (softtargets.locks) on OUT/_claims/<run name>.lock, held while the cell runs. A cell whose claim
is busy is left to its holder; the claim of a process that died is free again (the kernel released it) or, where it
still looks held, recognised by its owner (this host: the pid is gone; another host: no heartbeat) and taken over.

OUT/_claims/<run name>.cutoffs counts how often in a row the cell was cut off by a time limit with nothing to show
for it (no cell finished, no model trained): a sweep task stops requeueing such a cell after CUTOFF_LIMIT tries.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from softtargets import locks
from softtargets.io import write_text_atomic
from softtargets.sweep.grid import Cell

log = logging.getLogger(__name__)
CLAIMS_DIR = "_claims"
CUTOFF_LIMIT = 3
_WARNED: set[str] = set()


def claim_path(cell: Cell) -> Path:
    return Path(cell.cfg.out) / CLAIMS_DIR / f"{cell.name}.lock"


def running(out: str | Path, name: str) -> dict | None:
    """The owner of run `name`'s claim in sweep folder out while a live process holds it (read only: no lock is
    taken, so looking never makes a sweep skip a cell), else None."""
    path = Path(out) / CLAIMS_DIR / f"{name}.lock"
    try:
        mtime = path.stat().st_mtime
        owner = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None
    owner = owner if isinstance(owner, dict) else {}
    return owner if locks.owner_alive(owner, mtime) else None


class Claim:
    """The claim of one cell: take() before running it, release() after."""

    def __init__(self, cell: Cell):
        self.cell = cell
        self.lock = locks.FileLock(claim_path(cell), f"running cell {cell.index}")

    def take(self) -> str:
        """HELD (run the cell), BUSY (another live process runs it) or, with a warning where it matters, one of
        STALE_OWNER (taken over), UNSUPPORTED or UNAVAILABLE (run without a claim)."""
        folder = self.lock.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass  # the lock cannot be made: UNAVAILABLE, and the cell meets the same problem writing its folder
        state = self.lock.try_acquire()
        if state == locks.STALE_OWNER:
            log.warning("cell %d: its claim is held by %s, which looks dead: running it here", self.cell.index,
                        locks.describe(self.lock.owner()))
        elif state == locks.UNSUPPORTED and str(folder) not in _WARNED:
            _WARNED.add(str(folder))
            log.warning("file locks do not work in %s: two sweeps of this grid at once may both run a cell "
                        "(see docs/hpc.md)", folder)
        return state

    def holder(self) -> dict:
        return self.lock.owner()

    def release(self) -> None:
        self.lock.release()


def _cutoff_path(cell: Cell) -> Path:
    return Path(cell.cfg.out) / CLAIMS_DIR / f"{cell.name}.cutoffs"


def count_cutoff(cell: Cell) -> int:
    """One more time-limit cut-off of cell without progress; returns how many in a row."""
    path = _cutoff_path(cell)
    try:
        count = int(json.loads(path.read_text())["count"]) + 1
    except (OSError, ValueError, KeyError, TypeError):
        count = 1
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps({"count": count}) + "\n")
    return count


def clear_cutoffs(cell: Cell) -> None:
    _cutoff_path(cell).unlink(missing_ok=True)

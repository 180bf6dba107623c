"""`softtargets sweep status`: where each cell of a sweep stands -- done (its folder has result.json), running (a live
process holds its claim), failed (OUT/_failed holds its one-line reason) or missing -- and, for a sweep submitted to
SLURM, the state of the array task that holds it.

Every sweep records itself when it starts (any backend) in OUT/_sweeps/<grid name>-<hash of the grid file's path>.json:
the grid file, every cell's index, run name, axis values and folder (a tuned grid's tuning cells write under
OUT/tuning; its evaluation cells join the record as their arms' tuning finishes), and each SLURM submission with
its array tasks' run names, so the status of a folder needs neither the grid file nor the data.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.io import write_text_atomic
from softtargets.sweep.claims import running
from softtargets.sweep.grid import Grid

SWEEPS_DIR = "_sweeps"
STATES = ("done", "running", "failed", "missing")


def record_path(grid: Grid) -> Path:
    """One record per grid file and sweep folder, whatever stage (tuning) or part (--only) of it runs."""
    where = hashlib.sha256(str(Path(grid.path).resolve()).encode()).hexdigest()[:8]
    return grid.out / SWEEPS_DIR / f"{grid.name}-{where}.json"


def record_sweep(grid: Grid, backend: str, submission=None, cells_per_task: int | None = None) -> Path:
    """Write (or update, adding a new SLURM submission) the sweep's record in OUT/_sweeps; grid: the whole grid."""
    from softtargets.sweep.local import array_tasks

    path = record_path(grid)
    previous = read_record(path) or {}
    submissions = previous.get("submissions", [])
    if submission is not None:
        tasks = array_tasks(grid, cells_per_task)
        submissions.append({"array_job": submission.array_job, "report_job": submission.report_job,
                            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cells_per_task": cells_per_task,
                            "tasks": {str(t): [c.name for c in tasks[t]] for t in submission.indices}})
    record = {"name": grid.name, "grid": str(Path(grid.path).resolve()), "fingerprint": grid.fingerprint(),
              "out": str(grid.out), "backend": backend, "started": previous.get("started") or
              time.strftime("%Y-%m-%dT%H:%M:%S%z"), "submissions": submissions,
              "cells": [entry(c) for c in grid.cells],
              "waiting": len(grid.pending), "unchosen": grid.unchosen_arms()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    except OSError as err:
        from softtargets.tracking.local import check_disk_full

        check_disk_full(err, grid.out)
        raise
    return path


def submitted_cells(grid: Grid, job: str | None, task: int) -> list | None:
    """The cells array task `task` of SLURM array job `job` was submitted with, found by run name in the grid as it
    is now (a tuned grid gains evaluation cells while its tuning tasks run); None when no record knows the job,
    or a cell is gone (the grid file was edited)."""
    record = read_record(record_path(grid)) if job else None
    submission = next((s for s in (record or {}).get("submissions", []) if s.get("array_job") == job), None)
    names = (submission or {}).get("tasks", {}).get(str(task))
    by_name = {c.name: c for c in grid.cells}
    if not names or any(name not in by_name for name in names):
        return None
    return [by_name[name] for name in names]


def read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("cells"), list) else None


@dataclass
class CellState:
    index: int
    name: str
    values: str  # the cell's axis values, as --dry-run shows them
    state: str  # one of STATES
    detail: str = ""  # running: who; failed: the one-line reason
    slurm: str = ""  # the state of the array task holding the cell (submitted sweeps)


@dataclass
class SweepStatus:
    name: str
    out: Path
    cells: list[CellState]
    jobs: dict[str, Counter] = field(default_factory=dict)  # array job -> its tasks' SLURM states
    waiting: int = 0  # a tuned grid's evaluation cells whose arm is still tuning (not among cells yet)
    unchosen: list[str] = field(default_factory=list)  # arms that finished tuning without a candidate to choose

    def counts(self) -> Counter:
        return Counter(c.state for c in self.cells)


def entry(cell) -> list:
    """A cell in the sweep record: index, run name, axis values, output folder, and an audit's legacy name (the
    name a sweep gave its finished folder before; None for other cells)."""
    return [cell.index, cell.name, cell.describe(), cell.cfg.out, cell.legacy_name]


def cell_state(out: Path, index: int, name: str, values: str, legacy: str | None = None) -> CellState:
    if any((out / n / "result.json").is_file() for n in (name, legacy) if n):
        return CellState(index, name, values, "done")
    owner = running(out, name)
    if owner is not None:
        return CellState(index, name, values, "running", f"host {owner.get('host', '?')} pid {owner.get('pid', '?')} "
                                                          f"since {owner.get('since', '?')}")
    from softtargets.sweep.local import FAILED_DIR

    try:
        failure = json.loads((out / FAILED_DIR / f"{name}.json").read_text())
        reason = failure.get("error") if isinstance(failure, dict) else None
    except (OSError, ValueError):
        reason = None
    if reason is not None:
        from softtargets.errors import one_line

        return CellState(index, name, values, "failed", one_line(reason))
    return CellState(index, name, values, "missing")


def status_of(record: dict, out: Path, slurm: bool = True) -> SweepStatus:
    """The state of every cell in a sweep record ([index, name, values, folder, legacy name] each; older records
    lack the last two), with its latest SLURM submission's task states."""
    cells = [cell_state(Path(e[3]) if len(e) > 3 else out, int(e[0]), e[1], e[2], e[4] if len(e) > 4 else None)
             for e in record["cells"]]
    waiting = record.get("waiting")
    unchosen = record.get("unchosen")
    status = SweepStatus(record.get("name", "?"), out, cells, waiting=waiting if isinstance(waiting, int) else 0,
                         unchosen=[str(u) for u in unchosen] if isinstance(unchosen, list) else [])
    if slurm and record.get("submissions"):
        from softtargets.sweep.slurm import job_states

        last = record["submissions"][-1]
        states = job_states(last["array_job"])
        status.jobs[last["array_job"]] = Counter(states.values())
        by_cell = {name: task for task, names in last["tasks"].items() for name in names}
        for cell in cells:
            task = by_cell.get(cell.name)
            if task is not None and cell.state != "done":
                cell.slurm = f"task {task}: {states.get(task, 'unknown')}"
    return status


def sweep_status(target: str, overrides: dict | None = None, filters: dict | None = None) -> list[SweepStatus]:
    """target: a sweep's folder (every sweep recorded in it) or a grid file (resolved with overrides: out etc.);
    filters (--only, axis -> value) narrow a grid file's cells as they narrow a sweep."""
    path = Path(target)
    if path.is_dir() and filters:
        raise SoftTargetsError("--only narrows a grid's cells by their axis values: give the grid file, softtargets "
                               "sweep status GRID --out FOLDER --only AXIS=VALUE")
    if path.is_dir():
        records = sorted((path / SWEEPS_DIR).glob("*.json"))
        found = [(r, read_record(r)) for r in records]
        if not any(record for _, record in found):
            raise SoftTargetsError(f"{path} holds no sweep record ({SWEEPS_DIR}/): give the grid file instead, "
                                   "softtargets sweep status GRID --out FOLDER")
        return [status_of(record, path) for _, record in found if record]
    if not path.is_file():
        raise SoftTargetsError(f"{target}: no such sweep folder or grid file")
    from softtargets.sweep.grid import expand_grid

    return [grid_status(expand_grid(path, overrides).where(filters or {}))]


def grid_status(grid: Grid, slurm: bool = True) -> SweepStatus:
    """The status of a loaded grid's cells (with the SLURM states of its recorded submissions)."""
    record = read_record(record_path(grid)) or {}
    record.update(name=grid.name, cells=[entry(c) for c in grid.cells],
                  waiting=len(grid.pending), unchosen=grid.unchosen_arms())
    return status_of(record, grid.out, slurm)

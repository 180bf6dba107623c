"""`softtargets sweep status`: where each cell of a sweep stands -- done (its folder has result.json), running (a live
process holds its claim), failed (OUT/_failed holds its one-line reason) or missing -- and, for a sweep submitted to
SLURM, the state of the array task that holds it.

Every sweep records itself when it starts (any backend) in OUT/_sweeps/<grid name>-<fingerprint>.json: the grid
file, every cell's index, run name and axis values, and each SLURM submission with its array tasks, so the status of
a folder needs neither the grid file nor the data.
"""

from __future__ import annotations

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
    return grid.out / SWEEPS_DIR / f"{grid.name}-{grid.fingerprint()}.json"


def record_sweep(grid: Grid, backend: str, submission=None, cells_per_task: int | None = None) -> Path:
    """Write (or extend with a new SLURM submission) the sweep's record in OUT/_sweeps."""
    from softtargets.sweep.local import array_tasks

    path = record_path(grid)
    previous = read_record(path) or {}
    submissions = previous.get("submissions", [])
    if submission is not None:
        tasks = array_tasks(grid, cells_per_task)
        submissions.append({"array_job": submission.array_job, "report_job": submission.report_job,
                            "submitted": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "cells_per_task": cells_per_task,
                            "tasks": {str(t): [c.index for c in tasks[t]] for t in submission.indices}})
    record = {"name": grid.name, "grid": str(Path(grid.path).resolve()), "fingerprint": grid.fingerprint(),
              "out": str(grid.out), "backend": backend, "started": previous.get("started") or
              time.strftime("%Y-%m-%dT%H:%M:%S%z"), "submissions": submissions,
              "cells": [[c.index, c.name, c.describe()] for c in grid.cells]}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(record, indent=1) + "\n")
    except OSError as err:
        from softtargets.tracking.local import check_disk_full

        check_disk_full(err, grid.out)
        raise
    return path


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

    def counts(self) -> Counter:
        return Counter(c.state for c in self.cells)


def cell_state(out: Path, index: int, name: str, values: str) -> CellState:
    if (out / name / "result.json").is_file():
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
    """The state of every cell in a sweep record, with its latest SLURM submission's task states."""
    cells = [cell_state(out, int(index), name, values) for index, name, values in record["cells"]]
    status = SweepStatus(record.get("name", "?"), out, cells)
    if slurm and record.get("submissions"):
        from softtargets.sweep.slurm import job_states

        last = record["submissions"][-1]
        states = job_states(last["array_job"])
        status.jobs[last["array_job"]] = Counter(states.values())
        by_cell = {index: task for task, indices in last["tasks"].items() for index in indices}
        for cell in cells:
            task = by_cell.get(cell.index)
            if task is not None and cell.state != "done":
                cell.slurm = f"task {task}: {states.get(task, 'unknown')}"
    return status


def sweep_status(target: str, overrides: dict | None = None) -> list[SweepStatus]:
    """target: a sweep's folder (every sweep recorded in it) or a grid file (resolved with overrides: out etc.)."""
    path = Path(target)
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

    return [grid_status(expand_grid(path, overrides))]


def grid_status(grid: Grid, slurm: bool = True) -> SweepStatus:
    """The status of a loaded grid's cells (with the SLURM states of its recorded submissions)."""
    record = read_record(record_path(grid)) or {}
    record.update(name=grid.name, cells=[[c.index, c.name, c.describe()] for c in grid.cells])
    return status_of(record, grid.out, slurm)

"""Running cells: one array task (a SLURM array task: a group of cells, or one cell by index), or every missing
cell in a local process pool.

Cells that share data, split, recipe and seed run together in one worker (one array task), so their original and
reference models are trained (or loaded from the shared cache) and evaluated once; `cells_per_task` splits a very
large group into several tasks (in the local pool, several jobs), whose shared models the cache's locks still
train once. Each cell is claimed before it starts (sweep/claims.py), so concurrent sweeps of one grid run it
once. A failing cell is recorded in OUT/_failed/<run name>.json and the others go on; a later success removes
the record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from softtargets import locks
from softtargets.hooks import HookList, Hooks
from softtargets.io import write_text_atomic
from softtargets.scheduler import check_workers, worker_pool
from softtargets.stopping import Stopped, protected
from softtargets.sweep.claims import Claim, clear_cutoffs
from softtargets.sweep.grid import Cell, Grid
from softtargets.tracking.local import check_disk_full

log = logging.getLogger(__name__)
FAILED_DIR = "_failed"


@dataclass(frozen=True)
class CellOutcome:
    index: int
    name: str
    status: str  # completed | diverged | failed | skipped (already done) | running (claimed by another process)
    error: str | None = None


def failure_path(cell: Cell) -> Path:
    return Path(cell.cfg.out) / FAILED_DIR / f"{cell.name}.json"


def record_failure(cell: Cell, err: BaseException, job: str | None = None) -> str:
    """Write OUT/_failed/<run name>.json (the one-line reason, the traceback, the SLURM job that recorded it)."""
    message = f"{type(err).__name__}: {err}"
    path = failure_path(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"index": cell.index, "name": cell.name, "values": cell.values, "error": message, "job": job,
              "traceback": "".join(traceback.format_exception(err))}
    with protected():
        write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")
    return message


def failure(cell: Cell) -> dict | None:
    """The cell's failure record, if any."""
    try:
        record = json.loads(failure_path(cell).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


class _Outcomes(list):
    """The outcomes so far, each also handed to report() as it arrives (an array task's log line per cell)."""

    def __init__(self, report: Callable[[CellOutcome], None] | None):
        super().__init__()
        self.report = report

    def append(self, outcome: CellOutcome) -> None:
        super().append(outcome)
        if self.report is not None:
            self.report(outcome)


def run_cells(cells: list[Cell], hooks: Hooks | None = None, tracker: str = "none", job: str | None = None,
              report: Callable[[CellOutcome], None] | None = None) -> list[CellOutcome]:
    """Run cells that share one preparation, in order; each failure is recorded and the rest go on. A cell is
    claimed first and left alone while another process holds its claim. job (a SLURM array task, kept across its
    requeues): cells whose failure this job already recorded are not tried again. report(outcome) is called as each
    cell ends. A stop signal (Stopped) ends the run with the current cell abandoned; Stopped.cell, .completed and
    .outcomes tell where."""
    from softtargets.experiment import prepare

    hooks = hooks or Hooks()
    prepared = None
    outcomes = _Outcomes(report)
    for cell in cells:
        record = failure(cell) if job else None
        if cell.done or (record and record.get("job") == job):
            outcomes.append(CellOutcome(cell.index, cell.name, "skipped" if cell.done else "failed",
                                        None if cell.done else record.get("error")))
            continue
        claim = Claim(cell)
        if claim.take() == locks.BUSY:
            outcomes.append(CellOutcome(cell.index, cell.name, "running",
                                        f"claimed by {locks.describe(claim.holder())}"))
            continue
        try:
            if cell.done:  # finished by the process whose claim just ended
                outcomes.append(CellOutcome(cell.index, cell.name, "skipped"))
                continue
            if cell.command in AUDITS:
                status = _audit(cell, hooks, tracker)
            else:
                if prepared is None:
                    prepared = prepare(cell.cfg, hooks)
                status = _run_tracked(cell, prepared, hooks, tracker)
            failure_path(cell).unlink(missing_ok=True)
            clear_cutoffs(cell)
            outcomes.append(CellOutcome(cell.index, cell.name, status))
        except Stopped as stop:
            stop.cell, stop.outcomes = cell, list(outcomes)
            stop.completed = sum(o.status in ("completed", "diverged") for o in outcomes)
            raise
        except Exception as err:  # isolate: record this cell and go on with the next
            check_disk_full(err, cell.cfg.out)  # a full disk ends the sweep: every next cell would meet it
            log.warning("cell %d (%s) failed: %s", cell.index, cell.describe(), err)
            outcomes.append(CellOutcome(cell.index, cell.name, "failed", record_failure(cell, err, job)))
        finally:
            claim.release()
    return list(outcomes)


def _run_tracked(cell: Cell, prepared, hooks: Hooks, tracker_kind: str) -> str:
    from softtargets.experiment import run_experiment
    from softtargets.tracking import open_tracker

    cfg = cell.cfg
    tracker = open_tracker(tracker_kind, name=cell.name, project="softtargets",
                           tags=[cfg.data.dataset, cfg.training.architecture, cfg.unlearning.method, cfg.targets.kind])
    tracker.connect({k: v for k, v in cfg.to_dict().items() if isinstance(v, dict)})
    try:
        result = run_experiment(cfg, HookList(hooks, tracker), prepared)
    except BaseException:
        tracker.close("failed")
        raise
    tracker.mirror(Path(result["path"]))
    tracker.close(result["status"])
    return result["status"]


def _audit(cell: Cell, hooks: Hooks, tracker_kind: str) -> str:
    """A forget-quality or relearn cell: the audit with the grid's options."""
    from softtargets import audit

    tracking = None if tracker_kind == "none" else {"kind": tracker_kind, "offline": False, "project": "softtargets",
                                                       "log_models": False}
    result = getattr(audit, AUDITS[cell.command])(cell.cfg, hooks=hooks, tracking=tracking, **dict(cell.options))
    return result["status"]


AUDITS = {"forget-quality": "forget_quality", "relearn": "relearn"}  # a grid command -> its softtargets.audit function


def group_cells(cells: list[Cell]) -> list[list[Cell]]:
    """Cells sharing a preparation (same data, split, recipe, seed), in grid order. An audit prepares for itself
    (its models come from the cache), so each audit is a group of its own: the audits of one seed run in
    parallel, in workers and in array tasks alike."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        key = cell.prepare_key() if cell.command == "run" else f"{cell.command} {cell.index}"
        groups.setdefault(key, []).append(cell)
    return list(groups.values())


def array_tasks(grid: Grid, cells_per_task: int | None = None) -> list[list[Cell]]:
    """The grid's array tasks: each group of cells sharing an original and reference (every cell of the grid, done
    or not, so task numbers stay the same across resubmissions), split into near-equal chunks of at most
    cells_per_task cells (None: whole groups). Task t of an array runs chunk t."""
    return [chunk for group in group_cells(grid.cells) for chunk in split_group(group, cells_per_task)]


def split_group(group: list[Cell], cells_per_task: int | None) -> list[list[Cell]]:
    """A group of cells in near-equal chunks of at most cells_per_task cells, in order (None: the whole group)."""
    chunks = math.ceil(len(group) / cells_per_task) if cells_per_task else 1
    size, extra = divmod(len(group), chunks)
    out, start = [], 0
    for i in range(chunks):
        end = start + size + (i < extra)
        out.append(group[start:end])
        start = end
    return out


def pool_jobs(groups: list[list[Cell]], cells_per_task: int | None) -> list[list[Cell]]:
    """The local pool's jobs: each group split as an array task is, the chunks interleaved (every group's first
    chunk, then every group's second, ...), so that the workers start on different groups, each training its own
    models, before two of them share one group's (the cache's lock trains a shared model once)."""
    split = [split_group(group, cells_per_task) for group in groups]
    return [chunks[i] for i in range(max(map(len, split), default=0)) for chunks in split if i < len(chunks)]


def check_cells_per_task(cells_per_task: int | None) -> None:
    from softtargets.errors import SoftTargetsError

    if cells_per_task is not None and cells_per_task < 1:
        raise SoftTargetsError(f"--cells-per-task must be >= 1 (or left out: whole groups), got {cells_per_task}")


def run_local(grid: Grid, workers: int = 1, hooks: Hooks | None = None, tracker: str = "none",
              cells_per_task: int | None = None, refill: Callable[[], list[Cell]] | None = None) -> list[CellOutcome]:
    """Every cell not yet done, in a pool of `workers` processes (in this process for 1). A worker takes a group
    of cells sharing their models, or a chunk of at most cells_per_task of them (pool_jobs): fewer groups than
    workers, or a few long groups, would otherwise leave workers idle. refill (a tuned grid, sweep_local): called
    whenever a worker would otherwise go idle, it returns the grid's cells as now known, and those not seen yet join
    the queue. Returns the outcomes of every cell given or refilled, done ones as 'skipped', by cell index."""
    hooks = hooks or Hooks()
    check_workers(workers)
    seen = {c.name for c in grid.cells}
    outcomes = [CellOutcome(c.index, c.name, "skipped") for c in grid.cells if c.done]
    todo = [c for c in grid.cells if not c.done]
    train_seeds_in_parallel(todo, hooks)
    groups = group_cells(todo)
    total = len(todo)
    with hooks.progress(f"sweep {grid.name}", total) as advance:

        def record(ran: list[CellOutcome]) -> None:
            for outcome in ran:
                outcomes.append(outcome)
                advance(1, status=outcome.status)

        def more() -> list[list[Cell]]:
            """The groups of the cells refill brings that are neither seen nor done (done ones count as skipped)."""
            nonlocal total
            new = [c for c in (refill() if refill else []) if c.name not in seen]
            seen.update(c.name for c in new)
            outcomes.extend(CellOutcome(c.index, c.name, "skipped") for c in new if c.done)
            fresh = [c for c in new if not c.done]
            if fresh:
                train_seeds_in_parallel(fresh, hooks)
                total += len(fresh)
                advance(0, total=total)
            return group_cells(fresh)

        if workers <= 1:
            while groups:
                for group in groups:
                    record(run_cells(group, hooks, tracker))
                groups = more()
        else:
            # every cell sets its own thread count (config `threads`), so results do not depend on --workers;
            # spawned workers (no inherited torch/CUDA state) that die with this process (softtargets.scheduler)
            with worker_pool(workers) as pool:
                futures: dict = {}

                def submit(groups: list[list[Cell]]) -> None:
                    for job in pool_jobs(groups, cells_per_task):
                        futures[pool.submit(run_cells, job, None, tracker)] = job

                submit(groups)
                while futures:
                    finished, _ = wait(futures, return_when=FIRST_COMPLETED)
                    for future in finished:
                        record(_collect(future, futures.pop(future)))
                    if len(futures) < workers:  # the queue is empty and a worker is free
                        submit(more())
    return sorted(outcomes, key=lambda o: o.index)


def sweep_local(grid: Grid, load: Callable[[], Grid], workers: int = 1, hooks: Hooks | None = None,
                tracker: str = "none", cells_per_task: int | None = None) -> tuple[Grid, list[CellOutcome]]:
    """A grid run locally to its end in one pass. A tuned grid's evaluation cells wait for their arm's tuning
    (Grid.pending): whenever a worker would go idle while some wait, the grid is loaded again (load(), which writes
    the tuning record) and the cells whose arm has finished tuning join the running pool, so no worker waits for
    the tuning of arms that are not its cells'. Returns the grid as last loaded and the outcome of each of its cells
    that this sweep met, numbered (Cell.index) as in that grid."""
    latest = grid

    def refill() -> list[Cell]:
        nonlocal latest
        if not latest.pending:
            return []
        latest = load()
        return latest.cells

    ran = {o.name: o for o in run_local(grid, workers, hooks, tracker, cells_per_task, refill)}
    return latest, [dataclasses.replace(ran[c.name], index=c.index) for c in latest.cells if c.name in ran]


def train_seeds_in_parallel(cells: list[Cell], hooks: Hooks) -> None:
    """Fill the model cache for cells that differ only in seed with seed-parallel training (one stacked model
    per recipe), so the cells themselves only load. On CUDA only: on CPU stacking is slower than sequential
    training (docs/benchmarks.md), and training here, in the parent, would leave the pool's workers idle, so
    each worker trains its own seeds. A failure here is left for the cells to meet and record."""
    from softtargets.experiment import train_models_in_parallel
    from softtargets.training.fit import resolve_device

    families: dict[str, tuple] = {}
    for cell in cells:
        c = cell.cfg
        key = json.dumps([dataclasses.asdict(c.data), dataclasses.asdict(c.training), c.device, c.cache_dir],
                         sort_keys=True, default=str)
        families.setdefault(key, (c, set()))[1].add(c.seed)
    for cfg, seeds in families.values():
        if len(seeds) > 1 and resolve_device(cfg.device).type == "cuda":
            try:
                train_models_in_parallel(cfg, sorted(seeds), hooks)
            except Exception as err:  # noqa: BLE001 - the cells retrain sequentially and record any error
                log.warning("seed-parallel training skipped: %s", err)


def _collect(future, group: list[Cell]) -> list[CellOutcome]:
    """A worker that died (killed, out of memory) fails the cells of its group it had not finished; those it had
    count as their result.json says. The pool's other groups are unaffected unless the pool itself broke."""
    try:
        return future.result()
    except Exception as err:
        return [_finished(c) if c.done else CellOutcome(c.index, c.name, "failed", record_failure(c, err))
                for c in group]


def _finished(cell: Cell) -> CellOutcome:
    status = json.loads((cell.folder / "result.json").read_text()).get("status")
    return CellOutcome(cell.index, cell.name, "diverged" if status == "diverged" else "completed")


def task_cells(grid: Grid, index: int | None = None, task: int | None = None,
               cells_per_task: int | None = None) -> list[Cell]:
    """The cells of array task `task` (array_tasks), or the one cell `index`; out of range names the range."""
    from softtargets.errors import SoftTargetsError

    if index is not None:
        if not 0 <= index < len(grid.cells):
            raise SoftTargetsError(f"--index {index} is outside the grid {grid.path} (cells 0..{len(grid.cells) - 1})")
        return [grid.cells[index]]
    tasks = array_tasks(grid, cells_per_task)
    if not 0 <= task < len(tasks):
        raise SoftTargetsError(f"--task {task} is outside the grid {grid.path}, which makes {len(tasks)} array tasks "
                               f"(0..{len(tasks) - 1}) with --cells-per-task {cells_per_task or 'left out'}: "
                               "softtargets sweep GRID --dry-run lists them")
    return tasks[task]

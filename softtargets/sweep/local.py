"""Running cells: one cell by index (a SLURM array task), or every missing cell in a local process pool.

Cells that share data, split, recipe and seed run together in one worker, so their original and reference
models are trained (or loaded from the shared cache) and evaluated once. A failing cell is recorded in
OUT/_failed/<run name>.json and the others go on; a later success removes the record.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from concurrent.futures import as_completed
from dataclasses import dataclass
from pathlib import Path

from softtargets.hooks import HookList, Hooks
from softtargets.io import write_text_atomic
from softtargets.scheduler import check_workers, worker_pool
from softtargets.sweep.grid import Cell, Grid

log = logging.getLogger(__name__)
FAILED_DIR = "_failed"


@dataclass(frozen=True)
class CellOutcome:
    index: int
    name: str
    status: str  # completed | diverged | failed | skipped (already done)
    error: str | None = None


def failure_path(cell: Cell) -> Path:
    return Path(cell.cfg.out) / FAILED_DIR / f"{cell.name}.json"


def record_failure(cell: Cell, err: BaseException) -> str:
    message = f"{type(err).__name__}: {err}"
    path = failure_path(cell)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"index": cell.index, "name": cell.name, "values": cell.values, "error": message,
              "traceback": "".join(traceback.format_exception(err))}
    write_text_atomic(path, json.dumps(record, indent=2, default=str) + "\n")
    return message


def run_cells(cells: list[Cell], hooks: Hooks | None = None, tracker: str = "none") -> list[CellOutcome]:
    """Run cells that share one preparation, in order; each failure is recorded and the rest go on."""
    from softtargets.experiment import prepare

    hooks = hooks or Hooks()
    prepared = None
    outcomes = []
    for cell in cells:
        if cell.done:
            outcomes.append(CellOutcome(cell.index, cell.name, "skipped"))
            continue
        try:
            if cell.command == "forget-quality":
                status = _forget_quality(cell, hooks, tracker)
            else:
                if prepared is None:
                    prepared = prepare(cell.cfg, hooks)
                status = _run_tracked(cell, prepared, hooks, tracker)
            failure_path(cell).unlink(missing_ok=True)
            outcomes.append(CellOutcome(cell.index, cell.name, status))
        except Exception as err:  # isolate: record this cell and go on with the next
            log.warning("cell %d (%s) failed: %s", cell.index, cell.describe(), err)
            outcomes.append(CellOutcome(cell.index, cell.name, "failed", record_failure(cell, err)))
    return outcomes


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


def _forget_quality(cell: Cell, hooks: Hooks, tracker_kind: str) -> str:
    from softtargets.audit import forget_quality

    tracking = None if tracker_kind == "none" else {"kind": tracker_kind, "offline": False, "project": "softtargets",
                                                       "log_models": False}
    result = forget_quality(cell.cfg, hooks=hooks, tracking=tracking, **dict(cell.options))
    return result["status"]


def group_cells(cells: list[Cell]) -> list[list[Cell]]:
    """Cells sharing a preparation (same data, split, recipe, seed), in grid order."""
    groups: dict[str, list[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.prepare_key(), []).append(cell)
    return list(groups.values())




def run_local(grid: Grid, workers: int = 1, hooks: Hooks | None = None, tracker: str = "none") -> list[CellOutcome]:
    """Every cell not yet done, in a pool of `workers` processes (in this process for 1). Returns all cells'
    outcomes, done ones as 'skipped'."""
    hooks = hooks or Hooks()
    check_workers(workers)
    done = [CellOutcome(c.index, c.name, "skipped") for c in grid.cells if c.done]
    todo = [c for c in grid.cells if not c.done]
    train_seeds_in_parallel(todo, hooks)
    groups = group_cells(todo)
    outcomes: list[CellOutcome] = []
    with hooks.progress(f"sweep {grid.name}", sum(map(len, groups))) as advance:
        if workers <= 1:
            for group in groups:
                for outcome in run_cells(group, hooks, tracker):
                    outcomes.append(outcome)
                    advance(1, status=outcome.status)
        else:
            # every cell sets its own thread count (config `threads`), so results do not depend on --workers;
            # spawned workers (no inherited torch/CUDA state) that die with this process (softtargets.scheduler)
            with worker_pool(workers) as pool:
                futures = {pool.submit(run_cells, group, None, tracker): group for group in groups}
                for future in as_completed(futures):
                    for outcome in _collect(future, futures[future]):
                        outcomes.append(outcome)
                        advance(1, status=outcome.status)
    return sorted(done + outcomes, key=lambda o: o.index)


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
    """A worker that died (killed, out of memory) fails its cells; the pool's other groups are unaffected
    unless the pool itself broke."""
    try:
        return future.result()
    except Exception as err:
        return [CellOutcome(c.index, c.name, "failed", record_failure(c, err)) for c in group]


def run_index(grid: Grid, index: int, hooks: Hooks | None = None, tracker: str = "none") -> CellOutcome:
    """One cell (a SLURM array task / a ClearML agent): skipped when its folder already has result.json."""
    from softtargets.errors import SoftTargetsError

    if not 0 <= index < len(grid.cells):
        raise SoftTargetsError(f"--index {index} is outside the grid {grid.path} (cells 0..{len(grid.cells) - 1})")
    (outcome,) = run_cells([grid.cells[index]], hooks, tracker)
    return outcome

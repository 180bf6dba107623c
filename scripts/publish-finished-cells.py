"""Publish the finished cells of a study still running: its report rebuilt from the runs, tuning rows,
forget-quality audits and relearning attacks of the cells named, next to the cells RESULTS_DIR already publishes.

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python scripts/publish-finished-cells.py \\
        --grid configs/sweeps/softtargets-study2.yaml RUNS_DIR RESULTS_DIR digits/mlp/class:5 digits/cnn/class:5

A cell is DATASET/ARCHITECTURE/FORGET_SPEC. A cell named is taken from RUNS_DIR whole (its rows in RESULTS_DIR, if
any, are replaced); every other cell of RESULTS_DIR is kept as published, so RUNS_DIR need hold only the new
cells (a study computed over several machines). A cell is published only once every run the grid (GRID) gives it
is done in RUNS_DIR, its tuning and every evaluation seed of every arm: a cell half done would publish a partial
tuning or fewer seeds, so it is refused in one line (exit 2) before anything is built or replaced. RESULTS_DIR's
machine.json is kept (write it under the study's kernel pins, as `make results2` does). Once every cell has
finished in one runs folder, `softtargets report RUNS_DIR --out RESULTS_DIR` gives the same files for all of them."""

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.report.aggregate import RUNS_CSV, read_csv, write_csv
from softtargets.report.build import build_report
from softtargets.report.relearn import RELEARN_CSV
from softtargets.sweep.grid import expand_grid
from softtargets.sweep.status import grid_status
from softtargets.tuning import TUNING_CSV

# each table's file and the columns naming a row's cell (dataset, architecture, forget spec)
TABLES = {RUNS_CSV: ("dataset", "architecture", "split.spec"), TUNING_CSV: ("dataset", "architecture", "forget"),
          "forget_quality.csv": ("dataset", "architecture", "split.spec"),
          RELEARN_CSV: ("dataset", "architecture", "forget")}


def complete_seeds(rows: list[dict]) -> list[dict]:
    """The attacks of the seeds on which every arm of the cell was attacked (a seed half done would compare
    arms on different seeds)."""
    arms = {(r["dataset"], r["architecture"], r["forget"], r["arm"]) for r in rows}
    done = {}
    for r in rows:
        done.setdefault((r["dataset"], r["architecture"], r["forget"], r["seed"]), set()).add(r["arm"])
    whole = {key for key, got in done.items() if got >= {a[3] for a in arms if a[:3] == key[:3]}}
    return [r for r in rows if (r["dataset"], r["architecture"], r["forget"], r["seed"]) in whole]


def cell_rows(path: Path, name: str, wanted: set, keep: bool) -> list[dict]:
    """The rows of table `name` at path of the cells named (keep=False), or of every other cell (keep=True)."""
    if not path.is_file():
        return []
    return [r for r in read_csv(path) if (tuple(r[c] for c in TABLES[name]) in wanted) != keep]


def unfinished(grid_file: str, runs_dir: Path, cell: tuple) -> str | None:
    """Why the cell (dataset, architecture, forget spec) is not finished in runs_dir by the grid, or None when every
    run the grid gives it (tuning and evaluation) is done there."""
    try:
        grid = expand_grid(grid_file, {"out": str(runs_dir)})
    except SoftTargetsError as err:
        return str(err)
    axes = {axis for c in grid.cells for axis in c.values}  # a cell's values an axis sets; the base fixes the rest
    try:
        grid = grid.where({a: v for a, v in zip(("dataset", "architecture", "forget"), cell) if a in axes})
        cells = [c for c in grid.cells if (c.cfg.data.dataset, c.cfg.training.architecture, c.cfg.data.forget) == cell]
    except SoftTargetsError:
        cells = []
    if not cells:
        return f"{grid_file} has no cell {'/'.join(cell)}: name one of its cells as DATASET/ARCHITECTURE/FORGET_SPEC"
    status = grid_status(dataclasses.replace(grid, cells=cells), slurm=False)
    done, why = status.counts()["done"], []
    if done < len(cells):
        why.append(f"{done} of {len(cells)} runs done")
    if status.waiting:
        why.append(f"{status.waiting} evaluation runs wait for their arm's tuning")
    why += status.unchosen
    if not why:
        return None
    only = " ".join(f"--only {a}={v}" for a, v in zip(("dataset", "architecture", "forget"), cell) if a in axes)
    return (f"{'/'.join(cell)} is not finished in {runs_dir}: {'; '.join(why)}. Publish it once `softtargets sweep "
            f"status {grid_file} --out {runs_dir} {only}` shows every run done")


def main(grid_file: str, runs_dir: str, results_dir: str, cells: list[str]) -> None:
    wanted = {tuple(c.split("/", 2)) for c in cells}
    runs_dir, results_dir = Path(runs_dir).resolve(), Path(results_dir).resolve()
    for cell in sorted(wanted):
        why = unfinished(grid_file, runs_dir, cell) if len(cell) == 3 else (
            f"{'/'.join(cell)}: name a cell as DATASET/ARCHITECTURE/FORGET_SPEC, e.g. digits/mlp/class:5")
        if why:
            print(why, file=sys.stderr)
            sys.exit(2)
    home = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # the report names its input: runs/<the runs folder's name>/runs.csv.xz, not a temporary path
        try:
            counts = publish(runs_dir, results_dir, wanted)
        finally:
            os.chdir(home)
    print(f"{counts[RUNS_CSV]} runs, {counts[TUNING_CSV]} tuning candidates of {len(wanted)} cells -> {results_dir}, "
          "with the cells it already published")


def publish(runs_dir: Path, results_dir: Path, wanted: set) -> dict[str, int]:
    """Build the report of the cells wanted from runs_dir plus RESULTS_DIR's other cells, then replace RESULTS_DIR
    with it (nothing is replaced unless the whole report was built). Returns each table's count of new rows."""
    full, picked = Path("full"), Path("runs") / runs_dir.name
    build_report(runs_dir, full)  # every run, audit and tuning row of the folder, labelled as the report does
    if (full / RELEARN_CSV).is_file():  # relearning attacks: all seeds that finished, every arm of each
        write_csv(full / RELEARN_CSV, complete_seeds(read_csv(full / RELEARN_CSV)))
    picked.mkdir(parents=True)
    counts = {}
    for name in TABLES:
        new = cell_rows(full / name, name, wanted, keep=False)
        rows = cell_rows(results_dir / name, name, wanted, keep=True) + new
        counts[name] = len(new)
        if rows:
            write_csv(picked / name, rows)
    machine = results_dir / "machine.json"
    kept = machine.read_text() if machine.is_file() else None
    built = Path("report").resolve()
    build_report(picked / RUNS_CSV, built)
    shutil.rmtree(results_dir, ignore_errors=True)
    shutil.copytree(built, results_dir)
    if kept is not None:
        machine.write_text(kept)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--grid", required=True,
                        help="the study's grid file, e.g. configs/sweeps/softtargets-study2.yaml")
    parser.add_argument("runs_dir", metavar="RUNS_DIR", help="the sweep folder holding the cells named")
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="the published study, e.g. docs/results/study2")
    parser.add_argument("cells", metavar="CELL", nargs="+",
                        help="DATASET/ARCHITECTURE/FORGET_SPEC, e.g. digits/mlp/class:5")
    args = parser.parse_args()
    main(args.grid, args.runs_dir, args.results_dir, args.cells)

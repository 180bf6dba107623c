"""Publish the finished cells of a study still running: its report rebuilt from the runs, tuning rows,
forget-quality audits and relearning attacks of the cells named, next to the cells RESULTS_DIR already publishes
(a cell half done would publish a partial tuning, so only whole cells are named).

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python scripts/publish-finished-cells.py \\
        RUNS_DIR RESULTS_DIR digits/mlp/class:5 digits/mlp/random:0.1 digits/cnn/class:5

A cell is DATASET/ARCHITECTURE/FORGET_SPEC. A cell named is taken from RUNS_DIR whole (its rows in RESULTS_DIR, if
any, are replaced); every other cell of RESULTS_DIR is kept as published, so RUNS_DIR need hold only the new
cells (a study computed over several machines). RESULTS_DIR's machine.json is kept (write it under the study's
kernel pins, as `make results2` does). Once every cell has finished in one runs folder, `softtargets report
RUNS_DIR --out RESULTS_DIR` gives the same files for all of them."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from softtargets.report.aggregate import RUNS_CSV, read_csv, write_csv
from softtargets.report.build import build_report
from softtargets.report.relearn import RELEARN_CSV
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


def main(runs_dir: str, results_dir: str, cells: list[str]) -> None:
    wanted = {tuple(c.split("/", 2)) for c in cells}
    runs_dir, results_dir = Path(runs_dir).resolve(), Path(results_dir).resolve()
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
    missing = wanted - {tuple(r[c] for c in TABLES[RUNS_CSV]) for r in read_csv(full / RUNS_CSV)}
    if missing:
        print(f"no runs of {', '.join('/'.join(m) for m in sorted(missing))} in {runs_dir}: name finished cells as "
              "DATASET/ARCHITECTURE/FORGET_SPEC, e.g. digits/mlp/class:5", file=sys.stderr)
        sys.exit(2)
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
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

"""Publish the finished cells of a study still running: its report rebuilt from the runs, tuning rows and
forget-quality audits of the cells named, and nothing else (a cell half done would publish a partial tuning).

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 python scripts/publish-finished-cells.py \\
        RUNS_DIR RESULTS_DIR digits/mlp/class:5 digits/mlp/random:0.1 digits/cnn/class:5

A cell is DATASET/ARCHITECTURE/FORGET_SPEC. RESULTS_DIR's machine.json is kept (write it under the study's kernel
pins, as `make results2` does). Once every cell has finished, `softtargets report RUNS_DIR --out RESULTS_DIR` gives
the same files for all of them."""

import os
import shutil
import sys
import tempfile
from pathlib import Path

from softtargets.report.aggregate import RUNS_CSV, read_csv, write_csv
from softtargets.report.build import build_report
from softtargets.report.relearn import RELEARN_CSV
from softtargets.tuning import TUNING_CSV


def complete_seeds(rows: list[dict]) -> list[dict]:
    """The attacks of the seeds on which every arm of the cell was attacked (a seed half done would compare
    arms on different seeds)."""
    arms = {(r["dataset"], r["architecture"], r["forget"], r["arm"]) for r in rows}
    done = {}
    for r in rows:
        done.setdefault((r["dataset"], r["architecture"], r["forget"], r["seed"]), set()).add(r["arm"])
    whole = {key for key, got in done.items() if got >= {a[3] for a in arms if a[:3] == key[:3]}}
    return [r for r in rows if (r["dataset"], r["architecture"], r["forget"], r["seed"]) in whole]


def main(runs_dir: str, results_dir: str, cells: list[str]) -> None:
    wanted = {tuple(c.split("/", 2)) for c in cells}
    runs_dir, results_dir = Path(runs_dir).resolve(), Path(results_dir).resolve()
    home = Path.cwd()
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # the report names its input: runs/<the runs folder's name>/runs.csv.xz, not a temporary path
        full, picked = Path("full"), Path("runs") / runs_dir.name
        build_report(runs_dir, full)  # every run and audit of the folder, labelled as the report labels them
        picked.mkdir(parents=True)
        runs = [r for r in read_csv(full / RUNS_CSV) if (r["dataset"], r["architecture"], r["split.spec"]) in wanted]
        write_csv(picked / RUNS_CSV, runs)
        tuning = [r for r in read_csv(Path(runs_dir) / TUNING_CSV)
                  if (r["dataset"], r["architecture"], r["forget"]) in wanted]
        write_csv(picked / TUNING_CSV, tuning)
        if (full / "forget_quality.csv").is_file():
            write_csv(picked / "forget_quality.csv", [r for r in read_csv(full / "forget_quality.csv")
                                                      if (r["dataset"], r["architecture"], r["split.spec"]) in wanted])
        if (full / RELEARN_CSV).is_file():  # relearning attacks: all seeds that finished, every arm of each
            attacks = [r for r in read_csv(full / RELEARN_CSV) if (r["dataset"], r["architecture"], r["forget"]) in wanted]
            write_csv(picked / RELEARN_CSV, complete_seeds(attacks))
        machine = Path(results_dir) / "machine.json"
        kept = machine.read_text() if machine.is_file() else None
        shutil.rmtree(results_dir, ignore_errors=True)
        build_report(picked / RUNS_CSV, results_dir)
        if kept is not None:
            machine.write_text(kept)
        os.chdir(home)
    print(f"{len(runs)} runs, {len(tuning)} tuning candidates of {len(wanted)} cells -> {results_dir}")


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])

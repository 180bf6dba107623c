"""scripts/publish-finished-cells.py: a study published cell by cell, from run folders on different machines, is
the study one report of all its runs gives."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from softtargets.report.aggregate import RUNS_CSV, read_csv

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "publish-finished-cells.py"
GRID = """
name: cells
base:
  training: {epochs: 1}
  unlearning: {epochs: 1}
  device: cpu
tune: {seeds: [1000], metric: js_forget_to_reference}
axes:
  forget: ["class:5", "class:3"]
  arm:
    - {method: gradasc, targets: hard, tune: {unlearn_lr: [1.0e-3, 1.0e-2]}}
    - {method: gradasc, targets: smooth, tune: {unlearn_lr: [1.0e-3, 1.0e-2]}}
  seed: [0, 1]
"""


def publish(grid: Path, runs: Path, results: Path, *cells: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--grid", str(grid), str(runs), str(results), *cells],
                          capture_output=True, text=True)


def specs(results: Path) -> list[str]:
    return sorted({r["split.spec"] for r in read_csv(results / RUNS_CSV)})


@pytest.mark.slow  # 16 digits runs (8 tuning) and four reports with their plots (about a minute)
def test_cells_published_one_by_one_from_two_folders_give_the_report_of_all_runs(cli, tmp_path):
    grid, runs = tmp_path / "cells.yaml", tmp_path / "all" / "study"
    grid.write_text(GRID)
    code, _, err = cli("--quiet", "sweep", str(grid), "--out", str(runs), "--cache-dir", str(tmp_path / "cache"))
    assert code == 0, err
    code, _, err = cli("--quiet", "report", str(runs), "--out", str(tmp_path / "whole"))
    assert code == 0, err
    # a second machine holds only class 3's runs, in a folder of the same name
    later = tmp_path / "later" / "study"
    later.mkdir(parents=True)
    for result in runs.glob("**/result.json"):  # evaluation and tuning runs
        if json.loads(result.read_text())["split"]["spec"] == "class:3":
            shutil.copytree(result.parent, later / result.parent.relative_to(runs))
    shutil.copy(runs / "tuning.csv", later)  # the sweep's tuning record: both cells' rows, the script picks
    results = tmp_path / "published"
    done = publish(grid, runs, results, "digits/mlp/class:5")
    assert done.returncode == 0, done.stderr
    assert specs(results) == ["class:5"]
    (results / "machine.json").write_text('{"cpu": "the machine the study ran on"}')

    before = {p.name: p.read_bytes() for p in results.iterdir()}
    bad = publish(grid, later, results, "digits/mlp/class:5")  # not in that folder
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "digits/mlp/class:5 is not finished in" in bad.stderr, bad.stderr
    assert "0 of 4 runs done; 4 evaluation runs wait for their arm's tuning" in bad.stderr
    # class 3 half evaluated: one seed of one arm not yet run
    evaluation = sorted(p for p in later.glob("digits-mlp-*") if (p / "result.json").is_file())
    assert len(evaluation) == 4
    shutil.move(evaluation[0], tmp_path / "aside")
    bad = publish(grid, later, results, "digits/mlp/class:3")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert "digits/mlp/class:3 is not finished" in bad.stderr and "7 of 8 runs done." in bad.stderr, bad.stderr
    bad = publish(grid, later, results, "digits/mlp/class:7")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1
    assert f"{grid} has no cell digits/mlp/class:7" in bad.stderr, bad.stderr
    assert {p.name: p.read_bytes() for p in results.iterdir()} == before  # nothing lost or half-written
    shutil.move(tmp_path / "aside", evaluation[0])

    done = publish(grid, later, results, "digits/mlp/class:3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 runs, 4 tuning candidates of 1 cells")
    assert specs(results) == ["class:3", "class:5"]
    for name in ("overview.csv", "paired.csv", "summary.csv", "arms.csv"):  # Holm over both cells' rows, as one report
        assert (results / name).read_text() == (tmp_path / "whole" / name).read_text(), name
    for name in (RUNS_CSV, "tuning.csv"):
        assert read_csv(results / name) == read_csv(tmp_path / "whole" / name), name
    assert json.loads((results / "machine.json").read_text()) == {"cpu": "the machine the study ran on"}

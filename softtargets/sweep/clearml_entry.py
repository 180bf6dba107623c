"""What a clearml-agent runs for one sweep task: `python -m softtargets.sweep.clearml_entry`.

The agent sets CLEARML_TASK_ID, so Task.init() attaches to the queued clone; its hyperparameters (written by
`softtargets sweep --backend clearml`, possibly edited in the UI) become the configurations of the task's cells, which
run one after another and share their original and reference models (sweep/local.py run_cells: claimed, failures
recorded in OUT/_failed, cells already done skipped).
"""

from __future__ import annotations

import sys
from pathlib import Path


def run_parameters(params: dict[str, dict]) -> tuple[int, list[Path]]:
    """Run the cells a task's hyperparameters describe; (exit code, result.json files written)."""
    from softtargets.sweep.clearml_queue import configs_from_parameters
    from softtargets.sweep.grid import Cell
    from softtargets.sweep.local import run_cells

    cells = [Cell(i, {}, cfg) for i, cfg in enumerate(configs_from_parameters(params))]
    outcomes = run_cells(cells)
    written = [cell.folder / "result.json" for cell, o in zip(cells, outcomes) if o.status in ("completed", "diverged")]
    return (0 if all(o.status in ("completed", "skipped", "running") for o in outcomes) else 1), written


def main() -> int:
    from clearml import Task

    task = Task.init()
    code, written = run_parameters(task.get_parameters_as_dict())
    for i, path in enumerate(written):
        task.upload_artifact("result.json" if len(written) == 1 else f"result-{i}.json", artifact_object=path)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""What a clearml-agent runs for one sweep cell: `python -m softtargets.sweep.clearml_entry`.

The agent sets CLEARML_TASK_ID, so Task.init() attaches to the queued clone; its hyperparameters (written by
`softtargets sweep --backend clearml`, possibly edited in the UI) become the run's configuration.
"""

from __future__ import annotations

import sys
from pathlib import Path


def main() -> int:
    from clearml import Task

    from softtargets.experiment import run_experiment
    from softtargets.sweep.clearml_queue import config_from_parameters

    task = Task.init()
    cfg = config_from_parameters(task.get_parameters_as_dict())
    result = run_experiment(cfg)
    task.upload_artifact("result.json", artifact_object=Path(result["path"]) / "result.json")
    return 0 if result["status"] == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())

"""ClearML backend: a template Task cloned once per missing cell, the cell's full configuration written into
the clone's hyperparameters, the clone enqueued for clearml-agent workers.

On the agent, the task runs `python -m softtargets.sweep.clearml_entry`, which reads the task's
hyperparameters back into a RunConfig (edits made in the ClearML UI apply) and runs that one cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import yaml

from softtargets.config import RunConfig, config_from_dict
from softtargets.errors import SoftTargetsError
from softtargets.sweep.grid import Cell, Grid

log = logging.getLogger(__name__)
ENTRY_MODULE = "softtargets.sweep.clearml_entry"
TOP_SECTION = "run"  # hyperparameter section of the top-level keys (seed, device, out, cache_dir)


@dataclass(frozen=True)
class Queued:
    template: str
    tasks: dict[int, str]  # cell index -> task id


def cell_parameters(cfg: RunConfig) -> dict[str, object]:
    """'section/key' -> value: ClearML's hyperparameter layout; method parameters as 'unlearning/params.KEY'."""
    out = {}
    for section, values in cfg.to_dict().items():
        if not isinstance(values, dict):
            out[f"{TOP_SECTION}/{section}"] = values
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                out.update({f"{section}/{key}.{k}": v for k, v in value.items()})
            else:
                out[f"{section}/{key}"] = value
    return out


def config_from_parameters(params: dict[str, dict]) -> RunConfig:
    """The inverse of cell_parameters, from Task.get_parameters_as_dict() (values may come back as text)."""
    values: dict[str, dict] = {}
    for section, keys in params.items():
        for key, value in (keys or {}).items():
            value = None if value in ("None", "") else value
            if section == TOP_SECTION:
                values[key] = value
            elif key.startswith("params."):  # untyped: read the text as YAML, as --param does
                parsed = yaml.safe_load(value) if isinstance(value, str) else value
                values.setdefault(section, {}).setdefault("params", {})[key.split(".", 1)[1]] = parsed
            else:
                values.setdefault(section, {})[key] = value
    top = {k: values.pop(k) for k in list(values) if not isinstance(values[k], dict)}
    if "seed" in top:
        top["seed"] = int(float(top["seed"]))
    return config_from_dict({**values, **top}, source="ClearML task hyperparameters")


def _template(project: str, grid: Grid, template_id: str | None):
    from clearml import Task

    if template_id:
        return Task.get_task(task_id=template_id)
    return Task.create(project_name=project, task_name=f"{grid.name} cell template", task_type="training",
                       module=ENTRY_MODULE, add_task_init_call=False, detect_repository=False,
                       packages=["softtargets[clearml]"])


def enqueue(grid: Grid, queue: str, project: str = "softtargets", template_id: str | None = None) -> Queued:
    """Clone the template per missing cell, set the cell's parameters and tags, enqueue it on `queue`."""
    try:
        from clearml import Task
    except ImportError:
        raise SoftTargetsError("--backend clearml needs the clearml package: pip install clearml") from None
    try:
        template = _template(project, grid, template_id)
        tasks = {}
        for cell in (c for c in grid.cells if not c.done):
            tasks[cell.index] = _enqueue_cell(Task, template, cell, queue)
    except ValueError as err:  # the SDK's way of saying 'no such queue / task'
        raise SoftTargetsError(f"ClearML refused the sweep: {err}") from None
    return Queued(template.id, tasks)


def _enqueue_cell(Task, template, cell: Cell, queue: str) -> str:
    cfg = cell.cfg
    task = Task.clone(source_task=template, name=cell.name, comment=f"sweep cell {cell.index}: {cell.describe()}")
    task.set_parameters(cell_parameters(cfg))
    task.add_tags([cfg.data.dataset, cfg.training.architecture, cfg.unlearning.method, cfg.targets.kind])
    Task.enqueue(task, queue_name=queue)
    log.info("enqueued cell %d as task %s", cell.index, task.id)
    return task.id

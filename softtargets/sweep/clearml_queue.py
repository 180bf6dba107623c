"""ClearML backend: a template Task cloned once per array task with missing cells (a group of cells sharing an
original and reference, split by cells_per_task: sweep/local.py array_tasks), each cell's full configuration written
into the clone's hyperparameters, the clone enqueued for clearml-agent workers. A one-cell task keeps the plain
layout (sections data, training, ...); a task of several cells puts cell I's under sections `cellI.data`, ...

On the agent, the task runs `python -m softtargets.sweep.clearml_entry`, which reads the task's hyperparameters
back into RunConfigs (edits made in the ClearML UI apply) and runs those cells, training their shared models once.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import yaml

from softtargets.config import RunConfig, config_from_dict
from softtargets.errors import SoftTargetsError
from softtargets.sweep.grid import Cell, Grid

log = logging.getLogger(__name__)
ENTRY_MODULE = "softtargets.sweep.clearml_entry"
TOP_SECTION = "run"  # hyperparameter section of the top-level keys (seed, device, out, cache_dir)
CELL_SECTION = re.compile(r"cell(\d+)\.(.+)")  # a several-cell task's sections: cell0.data, cell0.training, ...


@dataclass(frozen=True)
class Queued:
    template: str
    tasks: dict[int, str]  # array task number -> ClearML task id
    cells: int = 0  # cells enqueued in them


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


def task_parameters(cells: list[Cell]) -> dict[str, object]:
    """The hyperparameters of a task running cells: one cell's plain, several cells' under cellI. sections."""
    if len(cells) == 1:
        return cell_parameters(cells[0].cfg)
    return {f"cell{i}.{key}": value for i, cell in enumerate(cells) for key, value in cell_parameters(cell.cfg).items()}


def configs_from_parameters(params: dict[str, dict]) -> list[RunConfig]:
    """The inverse of task_parameters: the configurations of a task's cells, in order."""
    cells: dict[int, dict] = {}
    for section, keys in params.items():
        match = CELL_SECTION.fullmatch(section)
        if match:
            cells.setdefault(int(match[1]), {})[match[2]] = keys
    if not cells:
        return [config_from_parameters(params)]
    return [config_from_parameters(cells[i]) for i in sorted(cells)]


def _template(project: str, grid: Grid, template_id: str | None):
    from clearml import Task

    if template_id:
        return Task.get_task(task_id=template_id)
    return Task.create(project_name=project, task_name=f"{grid.name} cell template", task_type="training",
                       module=ENTRY_MODULE, add_task_init_call=False, detect_repository=False,
                       packages=["softtargets[clearml]"])


def enqueue(grid: Grid, queue: str, project: str = "softtargets", template_id: str | None = None,
            cells_per_task: int | None = None) -> Queued:
    """Clone the template per array task with missing cells, set those cells' parameters and tags, enqueue it."""
    from softtargets.sweep.local import array_tasks

    try:
        from clearml import Task
    except ImportError:
        raise SoftTargetsError("--backend clearml needs the clearml package: pip install clearml") from None
    try:
        template = _template(project, grid, template_id)
        tasks, count = {}, 0
        for number, cells in enumerate(array_tasks(grid, cells_per_task)):
            missing = [c for c in cells if not c.done]
            if missing:
                tasks[number] = _enqueue_task(Task, template, grid, number, missing, queue)
                count += len(missing)
    except ValueError as err:  # the SDK's way of saying 'no such queue / task'
        raise SoftTargetsError(f"ClearML refused the sweep: {err}") from None
    return Queued(template.id, tasks, count)


def _enqueue_task(Task, template, grid: Grid, number: int, cells: list[Cell], queue: str) -> str:
    cfg = cells[0].cfg
    if len(cells) == 1:
        name, comment = cells[0].name, f"sweep cell {cells[0].index}: {cells[0].describe()}"
    else:
        name = f"{grid.name} task {number}: {len(cells)} cells, seed {cfg.seed}"
        comment = "sweep cells " + "; ".join(f"{c.index}: {c.describe()}" for c in cells)
    task = Task.clone(source_task=template, name=name, comment=comment)
    task.set_parameters(task_parameters(cells))
    task.add_tags([cfg.data.dataset, cfg.training.architecture, cfg.unlearning.method, cfg.targets.kind])
    Task.enqueue(task, queue_name=queue)
    log.info("enqueued array task %d (cells %s) as ClearML task %s", number, [c.index for c in cells], task.id)
    return task.id

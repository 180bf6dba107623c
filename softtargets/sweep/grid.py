"""Grid files: YAML axes expanded into cells (fully resolved RunConfigs), validated before anything runs.

    name: smoke                     # optional; default: the file's stem
    base:                           # optional; the --config file format, applied to every cell
      training: {epochs: 2}
    axes:                           # the Cartesian product of these, the last axis varying fastest
      dataset: [digits]
      method: [gradasc, graddiff]
      targets: [hard, soft]
      seed: {start: 0, stop: 3}     # a range (stop excluded, step default 1), or a list
      unlearning.lr: [1.0e-4, 1.0e-3]   # any config key by its dotted name; method parameters too
      arm:                          # an axis of mappings: each value sets several keys together
        - {targets: hard}
        - {targets: soft, temperature: 2.0}

A cell's run folder is experiment.run_name(cfg) under cfg.out, so "done" means that folder has result.json.

`command: forget-quality` makes every cell a forget-quality audit instead of a run (the challenge score of a
population of n_models unlearned and retrained models; `forget_quality: {n_models: 32, retrain_null: true}`), with
its own folder name (audit.forget_quality_name).
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from softtargets.config import SECTIONS, TOP_LEVEL, RunConfig, load_config, read_yaml
from softtargets.errors import SoftTargetsError, brief

GRID_KEYS = ("name", "description", "command", "forget_quality", "base", "axes")
COMMANDS = ("run", "forget-quality")
MAX_CELLS = 100_000  # resolving a cell takes milliseconds: a bigger grid is a mistake (a range stop off by 10^6)
# short axis names for the keys a grid usually varies (the CLI's flag names)
ALIASES = {
    "dataset": "data.dataset", "forget": "data.forget", "architecture": "training.architecture",
    "method": "unlearning.method", "targets": "targets.kind", "retain_targets": "targets.retain_kind",
    "temperature": "targets.temperature", "smoothing": "targets.smoothing", "epochs": "training.epochs",
    "unlearn_epochs": "unlearning.epochs", "unlearn_lr": "unlearning.lr",
}


@dataclass(frozen=True)
class Cell:
    """One fully resolved run of a sweep; index is its position in the grid (the SLURM array index)."""

    index: int
    values: dict  # axis -> value, as written in the grid
    cfg: RunConfig
    command: str = "run"  # or forget-quality
    options: tuple = ()  # the command's options as (key, value) pairs (forget-quality: n_models, null)

    @property
    def name(self) -> str:
        if self.command == "forget-quality":
            from softtargets.audit import forget_quality_name

            return forget_quality_name(self.cfg, **dict(self.options))
        from softtargets.experiment import run_name

        return run_name(self.cfg)

    @property
    def folder(self) -> Path:
        return Path(self.cfg.out) / self.name

    @property
    def done(self) -> bool:
        return (self.folder / "result.json").is_file()

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.values.items())

    def prepare_key(self) -> str:
        """Cells with equal keys share data, split, original and reference models."""
        c = self.cfg
        parts = [c.data.dataset, c.data.forget, c.data.root, dataclasses.asdict(c.training), c.seed, c.device,
                 c.cache_dir]
        return json.dumps(parts, sort_keys=True, default=str)


@dataclass(frozen=True)
class Grid:
    path: Path
    name: str
    cells: list[Cell]

    @property
    def out(self) -> Path:
        return Path(self.cells[0].cfg.out)

    def fingerprint(self) -> str:
        """Changes when any cell changes: array tasks check it so an edited grid is not run by index."""
        names = "\n".join(c.name for c in self.cells)
        return hashlib.sha256(names.encode()).hexdigest()[:12]


def axis_key(axis: str, source: str, where: str = "axes") -> str:
    """The dotted config key of an axis (or base) name; unknown keys are rejected naming the key."""
    key = ALIASES.get(axis, axis) if where == "axes" else axis
    if key in TOP_LEVEL:
        return key
    section, _, field = key.partition(".")
    if section not in SECTIONS or not field:
        raise SoftTargetsError(
            f"{source}: unknown key '{where}.{axis}' (use {', '.join(ALIASES)}, seed, or a dotted config key "
            "such as training.lr)")
    names = {f.name for f in dataclasses.fields(SECTIONS[section])}
    if section == "unlearning" and field not in names:  # a method parameter, checked per cell
        return key if field.startswith("params.") else f"unlearning.params.{field}"
    if field not in names or field == "params":
        raise SoftTargetsError(f"{source}: unknown key '{where}.{axis}' (section '{section}' has "
                               f"{', '.join(sorted(names))})")
    return key


def axis_values(axis: str, spec: Any, source: str) -> list:
    """A list, a single value, or a range mapping {start, stop, step} (stop excluded)."""
    if isinstance(spec, dict):
        unknown = set(spec) - {"start", "stop", "step"}
        if unknown or "stop" not in spec:
            raise SoftTargetsError(f"{source}: axis '{axis}' range must look like {{start: 0, stop: 30, step: 1}}"
                                   f"{' (unknown key ' + repr(sorted(unknown)[0]) + ')' if unknown else ''}")
        start, stop, step = spec.get("start", 0), spec["stop"], spec.get("step", 1)
        try:
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in (start, stop, step)) or step <= 0:
                raise ValueError
            count = max(0, math.ceil((stop - start) / step))
        except (ValueError, OverflowError):
            raise SoftTargetsError(f"{source}: axis '{axis}' range needs finite numbers with step > 0") from None
        if count > MAX_CELLS:  # counted before a single value is made
            raise SoftTargetsError(f"{source}: axis '{axis}' has {count:,} values; a grid holds at most "
                                   f"{MAX_CELLS:,} cells: narrow the range or split the sweep")
        values = [start + i * step for i in range(count)]
    else:
        values = spec if isinstance(spec, list) else [spec]
    if not values:
        raise SoftTargetsError(f"{source}: axis '{axis}' is empty: give at least one value")
    seen: set[str] = set()
    for value in values:
        key = json.dumps(value, sort_keys=True, default=str)
        if key in seen:
            raise SoftTargetsError(f"{source}: axis '{axis}' repeats the value {brief(value)}")
        seen.add(key)
    if any(v is None for v in values):
        raise SoftTargetsError(f"{source}: axis '{axis}' has an empty (null) value: give a value or leave it out")
    return values


def flatten_base(base: dict, source: str) -> dict:
    """The base mapping (config-file format) as dotted overrides; unknown keys name the key."""
    if not isinstance(base, dict):
        raise SoftTargetsError(f"{source}: 'base' must be a mapping in the --config file format")
    flat = {}
    for key, value in base.items():
        if key in TOP_LEVEL:
            flat[key] = value
        elif key in SECTIONS and isinstance(value, dict):
            for field, v in value.items():
                flat[axis_key(f"{key}.{field}", source, "base")] = v
        else:
            raise SoftTargetsError(f"{source}: unknown key 'base.{key}' (allowed: "
                                   f"{', '.join([*SECTIONS, *sorted(TOP_LEVEL)])}; sections must be mappings)")
    return flat


def load_grid(path: str | Path, overrides: dict | None = None) -> Grid:
    """Read, expand and validate a grid. overrides (dotted keys: out, cache_dir, device) apply to every cell."""
    grid = expand_grid(path, overrides)
    validate_grid(grid)
    return grid


def expand_grid(path: str | Path, overrides: dict | None = None) -> Grid:
    """Read a grid and resolve every cell's RunConfig (config-level checks only; no data is loaded)."""
    path = Path(path)
    source = str(path)
    raw = read_yaml(path)
    for key in raw:
        if key not in GRID_KEYS:
            raise SoftTargetsError(f"{source}: unknown key '{key}' (allowed: {', '.join(GRID_KEYS)})")
    axes = raw.get("axes")
    if not isinstance(axes, dict) or not axes:
        raise SoftTargetsError(f"{source}: 'axes' must be a non-empty mapping, e.g. axes: {{seed: [0, 1]}}")
    odd = next((axis for axis in axes if not isinstance(axis, str)), None)
    if odd is not None:
        raise SoftTargetsError(f"{source}: axis name {brief(odd)} must be a config key such as seed or training.lr")
    name = str(raw.get("name") or path.stem)
    command, options = _command(raw, source)
    base = flatten_base(raw.get("base") or {}, source)
    values = {axis: axis_values(axis, spec, source) for axis, spec in axes.items()}
    count = math.prod(len(v) for v in values.values())
    if count > MAX_CELLS:
        raise SoftTargetsError(f"{source}: the axes make {count:,} cells; a grid holds at most {MAX_CELLS:,}: "
                               "split the sweep into several grids")
    keys = {axis: _bundle_keys(axis, values[axis], source) if _is_bundle(values[axis]) else axis_key(axis, source)
            for axis in axes}
    forced = {k: v for k, v in (overrides or {}).items() if v is not None}
    cells = []
    for index, combo in enumerate(itertools.product(*values.values())):
        chosen = dict(zip(axes, combo))
        settings = {}
        for axis, value in chosen.items():
            settings.update({keys[axis][k]: v for k, v in value.items()} if isinstance(value, dict)
                            else {keys[axis]: value})
        cell_overrides = {"out": str(Path("runs") / name), **base, **settings, **forced}
        try:
            cfg = load_config(None, cell_overrides)
        except SoftTargetsError as err:
            raise SoftTargetsError(f"{source}: cell {index} ({_describe(chosen)}): {err}") from None
        cells.append(Cell(index, chosen, cfg, command, options))
    return Grid(path, name, cells)


def _command(raw: dict, source: str) -> tuple[str, tuple]:
    """The grid's command and its options, checked."""
    command = str(raw.get("command", "run"))
    if command not in COMMANDS:
        raise SoftTargetsError(f"{source}: unknown command '{command}' (choose one of {', '.join(COMMANDS)})")
    settings = raw.get("forget_quality")
    if settings is not None and command != "forget-quality":
        raise SoftTargetsError(f"{source}: 'forget_quality' needs 'command: forget-quality'")
    if command == "run":
        return command, ()
    settings = settings or {}
    if not isinstance(settings, dict) or set(settings) - {"n_models", "retrain_null"}:
        raise SoftTargetsError(f"{source}: 'forget_quality' takes n_models (>= 2) and retrain_null (true/false)")
    n_models, null = settings.get("n_models", 32), settings.get("retrain_null", True)
    if isinstance(n_models, bool) or not isinstance(n_models, int) or not 2 <= n_models <= 4096:
        raise SoftTargetsError(f"{source}: forget_quality.n_models must be an integer from 2 to 4096, got {n_models!r}")
    if not isinstance(null, bool):
        raise SoftTargetsError(f"{source}: forget_quality.retrain_null must be true or false, got {null!r}")
    return command, (("n_models", n_models), ("null", null))


def _is_bundle(values: list) -> bool:
    return any(isinstance(v, dict) for v in values)


def _bundle_keys(axis: str, values: list, source: str) -> dict[str, str]:
    """An axis of mappings ({targets: soft, temperature: 2}): each key of each value resolved like an axis name;
    the axis' own name is free (it only labels the axis)."""
    if not all(isinstance(v, dict) and v for v in values):
        raise SoftTargetsError(f"{source}: axis '{axis}' mixes mappings with plain values: make every value a "
                               "mapping such as {targets: soft, temperature: 2.0}")
    return {k: axis_key(str(k), source) for v in values for k in v}


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def validate_grid(grid: Grid) -> None:
    """Every cell through experiment.validate, every (dataset, forget spec) resolved once against the data,
    and no two cells with the same run folder -- all before anything is submitted."""
    from softtargets.data.datasets import load_configured
    from softtargets.experiment import split_for, validate

    source = str(grid.path)
    seen: dict[str, Cell] = {}
    checked_splits: set[tuple] = set()
    bundles: dict[tuple, Any] = {}
    for cell in grid.cells:
        cfg = cell.cfg
        try:
            validate(cfg)
            d = cfg.data
            data_key = (d.dataset, d.root, d.holdout, d.subset, cfg.cache_dir)
            if data_key not in bundles:
                bundles[data_key] = load_configured(cfg)
            split_key = (*data_key, d.forget)
            if split_key not in checked_splits:
                split_for(cfg, bundles[data_key], estimate=False)  # the spec, without training estimates
                checked_splits.add(split_key)
        except SoftTargetsError as err:
            raise SoftTargetsError(f"{source}: cell {cell.index} ({cell.describe()}): {err}") from None
        if cell.name in seen:
            raise SoftTargetsError(f"{source}: cells {seen[cell.name].index} and {cell.index} resolve to the same "
                                   "run: make the axes differ")
        seen[cell.name] = cell


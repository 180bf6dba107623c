"""Grid files: YAML axes expanded into cells (fully resolved RunConfigs), validated before anything runs.

    name: smoke                     # optional; default: the file's stem
    base:                           # optional; the --config file format, applied to every cell
      training: {epochs: 2}
    axes:                           # the Cartesian product of these, the last axis varying fastest (a list of
                                    # such mappings: their products one after another)
      dataset: [digits]
      method: [gradasc, graddiff]
      targets: [hard, soft]
      seed: {start: 0, stop: 3}     # a range (stop excluded, step default 1), or a list
      unlearning.lr: [1.0e-4, 1.0e-3]   # any config key by its dotted name; method parameters too
      arm:                          # an axis of mappings: each value sets several keys together
        - {targets: hard}
        - {targets: soft, temperature: 2.0}

A cell's run folder is experiment.run_name(cfg) under cfg.out, so "done" means that folder has result.json.

`tune:` gives every arm (a cell without its seed) its own settings, chosen on tuning seeds (softtargets/tuning.py):

    tune:
      seeds: [100, 101, 102]        # disjoint from the seed axis
      metric: js_forget_to_reference  # the default; the lowest mean over the tuning seeds wins
      max_test_drop: 0.05           # optional: only candidates whose mean test accuracy (kept classes) is at
                                    # most this far below the reference's may win (no forgetting by wrecking)
      params: {unlearn_lr: [1.0e-4, 1.0e-3, 1.0e-2]}   # candidates of every arm
    axes:
      arm:
        - {targets: hard}
        - {targets: smooth, smoothing: -0.5, tune: {smoothing: [-0.2, -0.5, -1.0]}}  # more candidates, this arm

The tuning cells (arm x candidate x tuning seed) come first and write under OUT/tuning; once all have finished,
the grid also holds the evaluation cells, each with its arm's chosen values, and OUT/tuning.csv records every
candidate's score and the choice. `sweep` runs both stages locally; with SLURM or ClearML, submit again after the
tuning cells have finished.

`command: forget-quality` makes every cell a forget-quality audit instead of a run (the challenge score of a
population of n_models unlearned and retrained models; `forget_quality: {n_models: 32, retrain_null: true}`), with
its own folder name (audit.forget_quality_name). `command: relearn` makes every cell a relearning attack on the
cell's unlearned model and its retrained reference (`relearn: {types: [retain], k: [0, 10, 100], epochs: 10}`,
the `softtargets relearn` options; audit.relearn_name); the reference's curves are computed once per seed.
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

from softtargets.config import SECTIONS, TOP_LEVEL, RunConfig, check_seed, load_config, read_yaml
from softtargets.errors import SoftTargetsError, brief
from softtargets.report.aggregate import NOT_SETTING, arm_label, flatten
from softtargets.tuning import DEFAULT_METRIC, TUNING_FOLDER, Arm, candidates, check_test_drop, read_result

GRID_KEYS = ("name", "description", "command", "forget_quality", "relearn", "base", "axes", "tune")
TUNE_KEYS = ("seeds", "metric", "params", "max_test_drop")
COMMANDS = ("run", "forget-quality", "relearn")
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
    command: str = "run"  # or forget-quality, relearn
    options: tuple = ()  # the command's options as (key, value) pairs (forget-quality: n_models, null; relearn:
    # types, ks, settings)
    tuning: bool = False  # a tuning run of a tuned grid (under OUT/tuning), not an evaluation run

    @property
    def name(self) -> str:
        if self.command == "forget-quality":
            from softtargets.audit import forget_quality_name

            return forget_quality_name(self.cfg, **dict(self.options))
        if self.command == "relearn":
            from softtargets.audit import relearn_name

            return relearn_name(self.cfg, **dict(self.options))
        from softtargets.experiment import run_name

        return run_name(self.cfg)

    @property
    def legacy_name(self) -> str | None:
        """An audit's name as earlier versions wrote it (their digest covered out and cache_dir); None for a run,
        whose name never did."""
        if self.command == "forget-quality":
            from softtargets.audit import forget_quality_name

            return forget_quality_name(self.cfg, **dict(self.options), legacy=True)
        if self.command == "relearn":
            from softtargets.audit import relearn_name

            return relearn_name(self.cfg, **dict(self.options), legacy=True)
        return None

    @property
    def folder(self) -> Path:
        """Where the cell's results are: its run folder, or an audit's finished folder under its legacy name."""
        folder = Path(self.cfg.out) / self.name
        if self.legacy_name and not (folder / "result.json").is_file():
            legacy = folder.with_name(self.legacy_name)
            if (legacy / "result.json").is_file():
                return legacy
        return folder

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
    tuning: list[Arm] = dataclasses.field(default_factory=list)  # a grid with `tune`: its arms, candidates and results
    # the axis values of evaluation cells whose arm's tuning cells have not all finished (no settings chosen yet)
    pending: list[dict] = dataclasses.field(default_factory=list)
    # (axis values, why) of evaluation cells whose arm finished tuning without a candidate it may choose: they are
    # not run, the other arms are, and the sweep ends with exit code 1 naming each such arm
    unchosen: list[tuple[dict, str]] = dataclasses.field(default_factory=list)

    def unchosen_arms(self) -> list[str]:
        """One line per arm that finished tuning without a candidate it may choose: which, why and the fix."""
        return list(dict.fromkeys(why for _, why in self.unchosen))

    def tuning_rows(self) -> list[dict]:
        """tuning.csv rows (softtargets/tuning.py) of every arm whose tuning cells have all finished."""
        return [row for arm in self.tuning if arm.finished for row in arm.rows()]

    def where(self, filters: dict[str, str]) -> "Grid":
        """The cells (and pending cells) whose axis values match every filter (axis name -> value as text)."""
        def match(values: dict, tuning: bool = False) -> bool:  # a tuning cell serves every evaluation seed
            return all(str(values.get(axis)) == wanted for axis, wanted in filters.items()
                       if not (tuning and axis == "seed"))

        if not filters:
            return self
        narrowed = dataclasses.replace(self, cells=[c for c in self.cells if match(c.values, c.tuning)],
                                       pending=[v for v in self.pending if match(v)],
                                       unchosen=[(v, why) for v, why in self.unchosen if match(v)])
        evaluation = [c for c in narrowed.cells if not c.tuning] + narrowed.pending + narrowed.unchosen
        if not narrowed.cells or (not evaluation and (self.pending or self.unchosen
                                                      or any(not c.tuning for c in self.cells))):
            wanted = ", ".join(f"{k}={v}" for k, v in filters.items())
            raise SoftTargetsError(f"{self.path}: no cell has {wanted} (--only takes axis names and values as the "
                                   "grid writes them)")
        return narrowed

    @property
    def out(self) -> Path:
        """The evaluation runs' folder (a tuned grid's first cells write under its tuning subfolder)."""
        first = Path(self.cells[0].cfg.out)
        return first.parent if self.tuning and first.name == TUNING_FOLDER else first

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
    blocks = axes if isinstance(axes, list) and axes else [axes]
    for block in blocks:
        if not isinstance(block, dict) or not block:
            raise SoftTargetsError(f"{source}: 'axes' must be a non-empty mapping, e.g. axes: {{seed: [0, 1]}}, or a "
                                   "list of such mappings (their cells one after another)")
        odd = next((axis for axis in block if not isinstance(axis, str)), None)
        if odd is not None:
            raise SoftTargetsError(f"{source}: axis name {brief(odd)} must be a config key such as seed or "
                                   "training.lr")
    name = str(raw.get("name") or path.stem)
    command, options = _command(raw, source)
    base = flatten_base(raw.get("base") or {}, source)
    block_values = [{axis: axis_values(axis, spec, source) for axis, spec in block.items()} for block in blocks]
    merged: dict[str, list] = {}
    for values in block_values:
        for axis, listed in values.items():
            merged.setdefault(axis, []).extend(listed)
    tune = _tune(raw.get("tune"), merged, command, source)
    count = sum(math.prod(len(v) for v in values.values()) for values in block_values)
    if count > MAX_CELLS:
        raise SoftTargetsError(f"{source}: the axes make {count:,} cells; a grid holds at most {MAX_CELLS:,}: "
                               "split the sweep into several grids")
    forced = {k: v for k, v in (overrides or {}).items() if v is not None}
    planned = []  # (axis values, overrides, tuned values) per evaluation cell
    for values in block_values:
        keys = {axis: _bundle_keys(axis, listed, source) if _is_bundle(listed) else axis_key(axis, source)
                for axis, listed in values.items()}
        for combo in itertools.product(*values.values()):
            chosen = dict(zip(values, combo))
            settings, tuned = {}, dict(tune["params"]) if tune else {}
            for axis, value in chosen.items():
                if isinstance(value, dict):
                    settings.update({keys[axis][k]: v for k, v in value.items() if k != "tune"})
                    tuned.update(_tuned_values(value.get("tune"), f"axis '{axis}' value {_describe(value)}", source))
                else:
                    settings[keys[axis]] = value
            planned.append((chosen, {"out": str(Path("runs") / name), **base, **settings, **forced}, tuned))
    if not tune:
        cells = [_cell(i, chosen, cell_overrides, command, options, source)
                 for i, (chosen, cell_overrides, _) in enumerate(planned)]
        return Grid(path, name, cells)
    return _tuned_grid(path, name, planned, tune, options, source)


def _check_arm_labels(arms: list[tuple[RunConfig, set[str], dict, set[str]]], source: str) -> None:
    """The report and the tuning record tell a tuned grid's arms apart by their label ("soft T=2", "hard, retain
    soft") within a setting: two arms (each: a cell's config, the labels it can end with, its axis values, the
    grid's tuned keys) that differ only in their targets or tuned keys must not share a label, or their seeds and
    tuning rows would be merged. Refused here, before anything runs. (An untuned grid may cross, say, hard targets
    with temperatures they do not use: the report merges runs of one label only where their results agree.)"""
    seen: dict[tuple, tuple[dict, dict]] = {}
    for cfg, labels, values, tuned in arms:
        flat = flatten(cfg.to_dict())
        targets = {k: v for k, v in flat.items() if k.startswith("targets.")}
        rest = {k: v for k, v in flat.items() if k not in NOT_SETTING and k not in tuned and k != "seed"}
        for label in labels:
            key = (cfg.data.dataset, cfg.training.architecture, cfg.unlearning.method,
                   json.dumps(rest, sort_keys=True, default=str), cfg.seed, label)
            other, other_targets = seen.setdefault(key, (values, targets))
            differ = sorted(k for k in {**targets, **other_targets} if targets.get(k) != other_targets.get(k))
            if differ:
                raise SoftTargetsError(f"{source}: the arms of {_describe(other)} and {_describe(values)} would both "
                                       f"be reported as '{label}' (they differ in {', '.join(differ)} only): the "
                                       "report would merge their seeds; give them target settings the label names "
                                       "(kind, T of soft, a of smooth, retain kind) or put them in separate grids")


def _cell(index: int, values: dict, cell_overrides: dict, command: str, options: tuple, source: str) -> Cell:
    try:
        cfg = load_config(None, cell_overrides)
    except SoftTargetsError as err:
        raise SoftTargetsError(f"{source}: cell {index} ({_describe(values)}): {err}") from None
    return Cell(index, values, cfg, command, options)


def _tune(spec: Any, values: dict, command: str, source: str) -> dict | None:
    """The grid's `tune` section, checked: seeds (a list or a range, disjoint from the seed axis), the metric
    (an unlearned metric, lowest mean wins), params (config keys -> candidate values, every arm) and the optional
    max_test_drop (a number from 0 to 1)."""
    bundled = any(isinstance(v, dict) and "tune" in v for vs in values.values() for v in vs)
    if spec is None:
        if bundled:
            raise SoftTargetsError(f"{source}: an axis value has 'tune' but the grid has no 'tune' section (it "
                                   "names the tuning seeds): add tune: {seeds: [...]}")
        return None
    if command != "run":
        raise SoftTargetsError(f"{source}: 'tune' applies to run grids, not to command: {command}")
    if not isinstance(spec, dict) or set(spec) - set(TUNE_KEYS) or "seeds" not in spec:
        raise SoftTargetsError(f"{source}: 'tune' takes {', '.join(TUNE_KEYS)}, seeds required, e.g. tune: "
                               "{seeds: [100, 101, 102], params: {unlearn_lr: [1.0e-4, 1.0e-3]}}")
    seeds = axis_values("tune.seeds", spec["seeds"], source)
    for seed in seeds:
        check_seed(seed, f"{source}: tune.seeds: each seed")
    overlap = sorted(set(seeds) & set(values.get("seed", [])))
    if overlap:
        raise SoftTargetsError(f"{source}: tune.seeds and the seed axis share seed {overlap[0]}: tuning seeds must "
                               "be disjoint from the evaluation seeds")
    from softtargets.metrics.headline import HEADLINE

    metric = str(spec.get("metric", DEFAULT_METRIC))
    if metric not in HEADLINE or HEADLINE[metric][1] != "lower":
        lower = [m for m, (_, better) in HEADLINE.items() if better == "lower"]
        raise SoftTargetsError(f"{source}: tune.metric {brief(metric)} must be a metric whose lower value is "
                               f"better: {', '.join(lower)}")
    return {"seeds": seeds, "metric": metric, "params": _tuned_values(spec.get("params"), "tune.params", source),
            "max_test_drop": check_test_drop(spec.get("max_test_drop"), f"{source}: tune.max_test_drop")}


def _tuned_values(spec: Any, where: str, source: str) -> dict[str, list]:
    """A mapping of config keys (axis names) to candidate values, resolved to dotted keys."""
    if spec is None:
        return {}
    if not isinstance(spec, dict) or not spec:
        raise SoftTargetsError(f"{source}: {where}: 'tune' must map config keys to candidate lists, e.g. "
                               "{unlearn_lr: [1.0e-4, 1.0e-3]}")
    return {axis_key(str(k), source): axis_values(f"{where}.{k}", v, source) for k, v in spec.items()}


def _tuned_grid(path: Path, name: str, planned: list, tune: dict, options: tuple, source: str) -> Grid:
    """Tuning cells first (every arm x candidate x tuning seed, under OUT/tuning), then the evaluation cells of
    every arm whose tuning cells have all finished, with that arm's chosen values (softtargets/tuning.py). The
    other arms' evaluation cells are pending (Grid.pending) until theirs have."""
    cells, arms, evaluation = [], [], []
    by_arm: dict[str, tuple[Arm, list[list[Cell]]]] = {}
    _check_evaluation_seeds(planned, tune["seeds"], source)
    for chosen, cell_overrides, tuned in planned:
        arm_key = json.dumps({k: v for k, v in cell_overrides.items() if k != "seed"}, sort_keys=True, default=str)
        if arm_key not in by_arm:
            options_of_arm = candidates(tuned) if tuned else [{}]
            arm_cells = []
            for candidate in options_of_arm:
                row = []
                for seed in tune["seeds"]:
                    values = {**{k: v for k, v in chosen.items() if k != "seed"}, **candidate, "seed": seed}
                    tuning_out = str(Path(cell_overrides["out"]) / TUNING_FOLDER)
                    row.append(dataclasses.replace(_cell(len(cells), values, {**cell_overrides, **candidate,
                                                                              "seed": seed, "out": tuning_out},
                                                         "run", (), source), tuning=True))
                    cells.append(row[-1])
                arm_cells.append(row)
            first = arm_cells[0][0].cfg
            label = {"dataset": first.data.dataset, "architecture": first.training.architecture,
                     "method": first.unlearning.method, "forget": first.data.forget}
            labels = [arm_label(dataclasses.asdict(row[0].cfg.targets)) for row in arm_cells]
            arm = Arm(label, options_of_arm, labels, list(tune["seeds"]), tune["metric"], tune.get("max_test_drop"))
            by_arm[arm_key] = (arm, arm_cells)
            arms.append(arm)
        evaluation.append((chosen, cell_overrides, by_arm[arm_key]))
    tuned_keys = {k for arm, _ in by_arm.values() for c in arm.candidates for k in c}  # as the report reads them
    _check_arm_labels([(arm_cells[0][0].cfg, set(arm.arm_labels), arm_cells[0][0].values, tuned_keys)
                       for arm, arm_cells in by_arm.values()], source)
    for arm, arm_cells in by_arm.values():
        arm.results = [[read_result(c.folder) if c.done else None for c in row] for row in arm_cells]
        arm.finished = all(c.done for row in arm_cells for c in row)
    pending, unchosen = [], []
    for chosen, cell_overrides, (arm, _) in evaluation:
        if not arm.finished:
            pending.append(chosen)
            continue
        best = arm.chosen()
        if best is None:  # the other arms go on; the sweep names this one and ends with exit code 1
            kinds = " / ".join(dict.fromkeys(arm.arm_labels))
            looser = " or loosen tune.max_test_drop" if arm.max_test_drop is not None else ""
            unchosen.append((chosen, f"{source}: {_describe(arm.label)}, arm {kinds}: {arm.why_none()} (see "
                                     f"{Path(cell_overrides['out']) / TUNING_FOLDER}): widen or lower its tune "
                                     f"values{looser}"))
            continue
        values = {**chosen, **arm.candidates[best]}
        cells.append(_cell(len(cells), values, {**cell_overrides, **arm.candidates[best]}, "run", options, source))
    return Grid(path, name, cells, tuning=arms, pending=pending, unchosen=unchosen)


def _check_evaluation_seeds(planned: list, tuning_seeds: list, source: str) -> None:
    """Every evaluation cell's seed, wherever it is set (the seed axis, base, a bundle, a protocol), lies outside
    tune.seeds: checked before any tuning runs, not when the evaluation cells appear."""
    seeds: dict[str, int | None] = {}  # resolved once per way a cell can get its seed
    for chosen, cell_overrides, _ in planned:
        key = json.dumps([cell_overrides.get(k) for k in ("seed", "protocol")], default=str)
        if key not in seeds:
            try:
                seeds[key] = load_config(None, cell_overrides).seed
            except SoftTargetsError:
                seeds[key] = None  # the cell itself reports its error
        if seeds[key] in tuning_seeds:
            raise SoftTargetsError(f"{source}: the evaluation cell {_describe(chosen)} runs on seed {seeds[key]}, "
                                   "one of tune.seeds: tuning seeds must be disjoint from the evaluation seeds")


def _command(raw: dict, source: str) -> tuple[str, tuple]:
    """The grid's command and its options, checked."""
    command = str(raw.get("command", "run"))
    if command not in COMMANDS:
        raise SoftTargetsError(f"{source}: unknown command '{command}' (choose one of {', '.join(COMMANDS)})")
    for section, needs in (("forget_quality", "forget-quality"), ("relearn", "relearn")):
        if raw.get(section) is not None and command != needs:
            raise SoftTargetsError(f"{source}: '{section}' needs 'command: {needs}'")
    if command == "run":
        return command, ()
    if command == "relearn":
        return command, _relearn_options(raw.get("relearn") or {}, source)
    settings = raw.get("forget_quality") or {}
    if not isinstance(settings, dict) or set(settings) - {"n_models", "retrain_null"}:
        raise SoftTargetsError(f"{source}: 'forget_quality' takes n_models (>= 2) and retrain_null (true/false)")
    n_models, null = settings.get("n_models", 32), settings.get("retrain_null", True)
    if isinstance(n_models, bool) or not isinstance(n_models, int) or not 2 <= n_models <= 4096:
        raise SoftTargetsError(f"{source}: forget_quality.n_models must be an integer from 2 to 4096, got {n_models!r}")
    if not isinstance(null, bool):
        raise SoftTargetsError(f"{source}: forget_quality.retrain_null must be true or false, got {null!r}")
    return command, (("n_models", n_models), ("null", null))


RELEARN_KEYS = ("types", "k", "epochs", "steps", "lr", "batch_size", "eval_every", "recover_fraction", "selection")


def _relearn_options(spec: Any, source: str) -> tuple:
    """`relearn: {types: [retain, only_forget], k: [0, 10, 100], epochs: 10, ...}` (the `softtargets relearn`
    options; left out: the paper's) as the cells' options: types, ks and the attack settings, checked."""
    from softtargets.metrics import relearn as rl  # imports torch: only for relearn grids

    if not isinstance(spec, dict) or set(spec) - set(RELEARN_KEYS):
        raise SoftTargetsError(f"{source}: 'relearn' takes {', '.join(RELEARN_KEYS)}")
    types, ks = spec.get("types", list(rl.DEFAULT_TYPES)), spec.get("k")
    types = [types] if isinstance(types, str) else types
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise SoftTargetsError(f"{source}: relearn.types must be a list of relearn sets, got {types!r}")
    if ks is not None and (not isinstance(ks, list) or not all(isinstance(k, int) and not isinstance(k, bool)
                                                                for k in ks)):
        raise SoftTargetsError(f"{source}: relearn.k must be a list of integers, got {ks!r}")
    fields = {name: spec[name] for name in RELEARN_KEYS[2:] if name in spec}
    wrong = [f"{name}={brief(value)}" for name, value in fields.items()
             if isinstance(value, bool) or not isinstance(value, (int, float) if name in ("lr", "recover_fraction")
                                                          else str if name == "selection" else int)]
    if wrong:
        raise SoftTargetsError(f"{source}: relearn {', '.join(wrong)}: the wrong type (lr and recover_fraction are "
                               "numbers, selection a name, the others integers)")
    settings = rl.RelearnSettings(**fields)
    try:
        rl.check_settings(types, ks, settings)
    except SoftTargetsError as err:
        raise SoftTargetsError(f"{source}: {err}") from None
    return (("types", tuple(types)), ("ks", None if ks is None else tuple(ks)), ("settings", settings))


def _is_bundle(values: list) -> bool:
    return any(isinstance(v, dict) for v in values)


def _bundle_keys(axis: str, values: list, source: str) -> dict[str, str]:
    """An axis of mappings ({targets: soft, temperature: 2}): each key of each value resolved like an axis name;
    the axis' own name is free (it only labels the axis)."""
    if not all(isinstance(v, dict) and v for v in values):
        raise SoftTargetsError(f"{source}: axis '{axis}' mixes mappings with plain values: make every value a "
                               "mapping such as {targets: soft, temperature: 2.0}")
    return {k: axis_key(str(k), source) for v in values for k in v if k != "tune"}  # tune: candidates, not a key


def _describe(values: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in values.items())


def validate_grid(grid: Grid) -> None:
    """Every cell through experiment.validate, every (dataset, forget spec) resolved once against the data,
    and no two cells with the same run folder -- all before anything is submitted."""
    from softtargets.data.datasets import load_configured
    from softtargets.experiment import split_for, validate
    from softtargets.training.fit import use_threads

    use_threads(1)  # the checks' tensor work on one thread: cells run in this process with --workers 1 (use_compute)

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


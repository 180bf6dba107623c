"""Collect run folders into records: one per cell, grouped by (dataset, architecture, method, setting).

A run folder counts when it has result.json and its name does not start with '.' (hidden folders are runs
still being written or abandoned). The same run found twice (copied folders, a resumed sweep) counts once.
Forget-quality audits become QualityRecords (one per target kind), joined to the runs' groups and arms.

Every record also has a flat row (runs.csv.xz, forget_quality.csv): identity columns as text, everything else
as JSON (numbers in Python's shortest round-trip form), the resolved configuration included. Reading those
CSVs back gives the same records, so a report regenerates from its CSVs alone (load_csvs). The runs table is
xz-compressed (a study's is megabytes of repeated configuration; `pandas.read_csv` and `xzcat` read it); a plain
runs.csv, as reports before it wrote, reads the same.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import lzma
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from softtargets.catalogue import retain_parents
from softtargets.errors import SoftTargetsError
from softtargets.io import atomic_write
from softtargets.tuning import TUNING_CSV, TUNING_FOLDER

log = logging.getLogger(__name__)
RUNS_CSV = "runs.csv.xz"  # a report's table of every run, compressed
LEGACY_RUNS_CSV = "runs.csv"  # what reports wrote before, still read
# config keys that identify a cell's place in a comparison rather than its setting (the arm names the targets)
NOT_SETTING = {"seed", "out", "cache_dir", "device", "plots", "targets.kind", "targets.retain_kind",
               "targets.temperature", "targets.smoothing", "data.dataset", "training.architecture", "unlearning.method"}


def arm_label(targets: dict) -> str:
    """A run's arm: its target kind with the parameter that shapes it ("soft T=2", "smooth e=0.1"), and the
    retain kind where it differs ("soft T=2, retain hard"; a forget-side kind's own retain kind, e.g. masked's
    soft, is not named). hard, uniform and pseudo have no parameter; masked names T where it is not 1."""
    kind = targets["kind"]
    label = kind
    if kind == "soft" and targets.get("temperature") is not None:
        label = f"soft T={targets['temperature']:g}"
    elif kind == "masked" and targets.get("temperature") not in (None, 1):
        label = f"masked T={targets['temperature']:g}"
    elif kind == "smooth" and targets.get("smoothing") is not None:
        label = f"smooth e={targets['smoothing']:g}"
    retain = targets.get("retain_kind")
    return label if retain in (None, kind, retain_parents().get(kind)) else f"{label}, retain {retain}"


@dataclass
class RunRecord:
    name: str
    path: Path
    dataset: str
    architecture: str
    method: str
    targets: str  # the arm (arm_label): hard, soft T=1, soft T=2, smooth e=0.1, uniform, pseudo
    seed: int
    status: str
    unlearned: dict  # metric -> value (empty for runs whose outputs became non-finite)
    reference: dict
    config: dict = field(default_factory=dict)  # flattened, dotted keys
    finished_at: str = ""
    setting: str = ""  # what distinguishes this run's configuration inside its group ('' when nothing)
    uses_targets: bool = True  # False: the method sees labels only, so its arms are identical
    row: dict = field(default_factory=dict)  # the runs table row (every metric, the configuration)
    original: dict = field(default_factory=dict)  # the original model's metrics (its distance to the reference)
    floor: dict = field(default_factory=dict)  # a second exact retrain's metrics (config floor: true), else empty

    @property
    def group(self) -> tuple[str, str, str, str]:
        return self.dataset, self.architecture, self.method, self.setting


@dataclass
class QualityRecord:
    """One target kind of a forget-quality audit (the challenge score of a population, not a single run)."""

    name: str
    dataset: str
    architecture: str
    method: str
    targets: str  # the arm, as RunRecord.targets
    seed: int
    values: dict  # F, F_ci95, score, epsilon stats, n_models, null_F, null_F_ci95, ...
    config: dict = field(default_factory=dict)
    finished_at: str = ""
    setting: str = ""
    row: dict = field(default_factory=dict)

    @property
    def group(self) -> tuple[str, str, str, str]:
        return self.dataset, self.architecture, self.method, self.setting


IDENTITY = ["name", "dataset", "architecture", "method", "arm", "setting", "seed", "status"]


def run_row(result: dict, config: dict) -> dict:
    """A run's runs table row: identity, the target settings, every metric of the three models, the loss-term
    probe, the unlearning outcome, timings, versions and the resolved configuration."""
    targets = result["targets"]
    row = {"name": result["name"], "dataset": result["dataset"], "architecture": result["architecture"],
           "method": result["method"], "arm": arm_label(targets), "seed": result["seed"],
           "status": result.get("status", "completed")}
    row.update({f"targets.{k}": v for k, v in targets.items() if k != "terms"})
    row["targets.terms"] = targets.get("terms")
    row.update({f"split.{k}": v for k, v in result.get("split", {}).items()})
    for role in ("unlearned", "reference", "original", "floor"):  # floor: a second exact retrain, where run
        row.update({f"{role}.{k}": v for k, v in (result.get("metrics", {}).get(role) or {}).items()})
    unlearning = result.get("unlearning", {})
    row.update({f"unlearning.{k}": unlearning.get(k) for k in ("epochs_run", "steps", "stopped")})
    if "uses_targets" in unlearning:  # a labels-only plugin (False): its arms are identical by construction
        row["unlearning.uses_targets"] = unlearning["uses_targets"]
    row.update({f"timings.{k}": v for k, v in result.get("timings", {}).items()})
    row.update({"device": result.get("device"), "versions": result.get("versions"),
                "finished_at": result.get("finished_at", ""), "config": config})
    return row


def quality_rows(result: dict, config: dict) -> list[dict]:
    """A forget-quality audit's forget_quality.csv rows, one per target kind."""
    rows = []
    targets = config.get("targets", {})
    null = result.get("null") or {}
    for kind, values in result["kinds"].items():
        row = {"name": result["name"], "dataset": result["dataset"], "architecture": result["architecture"],
               "method": result["method"], "arm": arm_label({**targets, "kind": kind}), "seed": result["seed"],
               "status": result.get("status", "completed"), "n_models": result["n_models"]}
        row.update(values)
        row.update({"null_F": null.get("F"), "null_F_ci95": null.get("F_ci95"),
                    "reference.acc_retain": result["reference"]["acc_retain"],
                    "reference.acc_test": result["reference"]["acc_test"], "split.spec": result["split"]["spec"],
                    "finished_at": result.get("finished_at", ""), "config": config})
        rows.append(row)
    return rows


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in d.items():
        if isinstance(value, dict) and key != "params":
            out.update(flatten(value, f"{prefix}{key}."))
        elif isinstance(value, dict):
            out.update({f"{prefix}{key}.{k}": v for k, v in value.items()})
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_folder(folder: Path) -> list[RunRecord | QualityRecord]:
    """The records of one result folder: a run, the kinds of a forget-quality audit, or nothing (other audits
    and unreadable folders, logged)."""
    try:
        result = json.loads((folder / "result.json").read_text())
        config_file = folder / "config.yaml"
        config = (yaml.safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}
    except (OSError, ValueError, yaml.YAMLError) as err:
        log.warning("skipping %s: unreadable result.json or config.yaml (%s)", folder, err)
        return []
    if not isinstance(result, dict) or not isinstance(config, dict):
        log.warning("skipping %s: result.json or config.yaml is not a mapping", folder)
        return []
    result.setdefault("name", folder.name)
    try:
        if result.get("command") == "forget-quality":
            return [quality_record(row, folder) for row in quality_rows(result, config)]
        if "command" in result:  # relearn, lmc, amnesia: not part of a comparison
            return []
        return [run_record(run_row(result, config), folder)]
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        log.warning("skipping %s: not a run folder softtargets can read (%s: %s)", folder, type(err).__name__, err)
        return []


def read_run(folder: Path) -> RunRecord | None:
    records = [r for r in read_folder(folder) if isinstance(r, RunRecord)]
    return records[0] if records else None


def run_record(row: dict, path: Path) -> RunRecord:
    def role(name: str) -> dict:
        prefix = f"{name}."
        return {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix) and v is not None}

    return RunRecord(name=row["name"], path=path, dataset=row["dataset"], architecture=row["architecture"],
                     method=row["method"], targets=row["arm"], seed=int(row["seed"]), status=row["status"],
                     unlearned=role("unlearned"), reference=role("reference"), config=flatten(row["config"] or {}),
                     finished_at=row.get("finished_at") or "", row=row, original=role("original"), floor=role("floor"),
                     uses_targets=row.get("unlearning.uses_targets") is not False)


def quality_record(row: dict, path: Path) -> QualityRecord:
    skip = {*IDENTITY, "config", "finished_at"}
    return QualityRecord(name=row["name"], dataset=row["dataset"], architecture=row["architecture"],
                         method=row["method"], targets=row["arm"], seed=int(row["seed"]),
                         values={k: v for k, v in row.items() if k not in skip}, config=flatten(row["config"] or {}),
                         finished_at=row.get("finished_at") or "", row=row)


def find_run_folders(root: Path) -> list[Path]:
    """Folders under root holding result.json, skipping hidden ones and anything inside them, and a sweep's
    tuning runs (root/tuning: they chose the settings; tuning.csv records them, softtargets/tuning.py)."""
    found = []
    for result in sorted(root.rglob("result.json")):
        parts = result.parent.relative_to(root).parts
        if not any(p.startswith(".") for p in parts) and parts[:1] != (TUNING_FOLDER,):
            found.append(result.parent)
    return found


def find_unfinished(root: Path) -> list[Path]:
    """Hidden work folders (.NAME.incomplete-*, .NAME.old-*) under root: runs in progress, or left by killed
    processes that a later run into the same folder cleans up (see tracking/local.py)."""
    from softtargets.tracking.local import WORK_FOLDER

    found = []
    for folder, subfolders, _ in os.walk(root):
        found += [Path(folder) / name for name in subfolders if WORK_FOLDER.match(name)]
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
    return sorted(found)


def collect(root: str | Path) -> list[RunRecord]:
    """Every run under root, each cell once, with settings labelled inside each (dataset, arch, method)."""
    return load_results(root)[0]


def load_results(source: str | Path) -> tuple[list[RunRecord], list[QualityRecord]]:
    """The runs and forget-quality audits of a runs folder, or of a results folder / runs.csv.xz written by
    `softtargets report` (its runs.csv.xz and forget_quality.csv), labelled and each cell once."""
    source = Path(source)
    table = source if source.is_file() and source.name.endswith((".csv", ".csv.xz")) else runs_table(source)
    if table and (source.is_file() or not find_run_folders(source)):
        runs, quality = load_csvs(table)
    elif source.is_dir():
        runs, quality = _scan(source)
    else:
        raise SoftTargetsError(f"runs folder {source} not found: give the folder a sweep or compare wrote, or a "
                               f"{RUNS_CSV} written by softtargets report")
    if not runs:
        raise SoftTargetsError(f"no run folders with result.json under {source}: run a sweep first")
    tuned = {key for row in tuning_record(source) for key in row["params"]}
    label_settings(runs, quality, tuned)
    return dedupe_cells(runs, tuned), sorted(quality, key=lambda q: (*q.group, q.targets, q.seed))


def runs_table(folder: Path) -> Path | None:
    """The runs table of a results folder: its runs.csv.xz, or the runs.csv of an older report; None without."""
    return next((folder / name for name in (RUNS_CSV, LEGACY_RUNS_CSV) if (folder / name).is_file()), None)


def tuning_record(source: str | Path) -> list[dict]:
    """The tuning.csv of a sweep's runs folder or of a results folder (next to its runs table); [] without one."""
    source = Path(source)
    path = (source.parent if source.is_file() else source) / TUNING_CSV
    return read_csv(path) if path.is_file() else []


def _scan(root: Path) -> tuple[list[RunRecord], list[QualityRecord]]:
    latest: dict[tuple, RunRecord | QualityRecord] = {}
    for folder in find_run_folders(root):
        for record in read_folder(folder):
            key = (type(record).__name__, record.name, record.targets)
            if key not in latest or record.finished_at > latest[key].finished_at:
                latest[key] = record
    records = list(latest.values())
    return [r for r in records if isinstance(r, RunRecord)], [r for r in records if isinstance(r, QualityRecord)]


def label_settings(records: list[RunRecord], quality: list[QualityRecord] = (), tuned: set[str] = frozenset()) -> None:
    """Name each run's setting by the config keys that vary inside its (dataset, architecture, method); an
    audit of the same family gets the setting its configuration has on those keys. Keys tuned per arm (tuned,
    from tuning.csv) belong to the arm, not to the setting: arms tuned to different learning rates still compare."""
    families: dict[tuple, list[RunRecord]] = {}
    for r in records:
        families.setdefault((r.dataset, r.architecture, r.method), []).append(r)
    varying_keys = {}
    for family_key, family in families.items():
        keys = sorted({k for r in family for k in r.config} - NOT_SETTING - set(tuned))
        varying = [k for k in keys if len({json.dumps(r.config.get(k), default=str) for r in family}) > 1]
        varying_keys[family_key] = varying
        for r in family:
            r.setting = ", ".join(f"{k}={r.config.get(k)}" for k in varying)
    for q in quality:
        q.setting = ", ".join(f"{k}={q.config.get(k)}" for k in varying_keys.get((q.dataset, q.architecture,
                                                                                   q.method), []))


# ---------------------------------------------------------------- CSV files

def write_csv(path: Path, rows: list[dict]) -> None:
    """Identity columns as text, every other value as JSON; columns: identity, then the rest sorted; xz-compressed
    where the name ends in .xz (the same bytes for the same rows: no timestamp goes in)."""
    columns = [c for c in IDENTITY if any(c in r for r in rows)]
    columns += sorted({k for r in rows for k in r} - set(columns))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in rows:
        writer.writerow([_cell(c, r.get(c)) for c in columns])
    data = buffer.getvalue().encode("utf-8")
    atomic_write(path, lambda f: f.write(lzma.compress(data) if path.suffix == ".xz" else data))  # never half


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if column in IDENTITY:
        return str(value)
    return json.dumps(finite_or_none(value), sort_keys=True)


def finite_or_none(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def read_csv(path: Path) -> list[dict]:
    """A table write_csv wrote (xz-compressed where its name ends in .xz) as rows of values."""
    path = Path(path)
    try:
        data = path.read_bytes()
        text = (lzma.decompress(data) if path.suffix == ".xz" else data).decode("utf-8")
        rows = list(csv.DictReader(io.StringIO(text, newline="")))
        return [{k: (v if k in IDENTITY else (json.loads(v) if v != "" else None)) for k, v in row.items()}
                for row in rows]
    except (OSError, ValueError, csv.Error, lzma.LZMAError) as err:
        raise SoftTargetsError(f"cannot read {path}: {err}: give a {RUNS_CSV} written by softtargets "
                               "report") from None


def load_csvs(runs_csv: Path) -> tuple[list[RunRecord], list[QualityRecord]]:
    """The runs table and, next to it, forget_quality.csv (optional) as records."""
    runs = [run_record(row, runs_csv) for row in read_csv(runs_csv)]
    quality_csv = runs_csv.with_name("forget_quality.csv")
    quality = [quality_record(row, quality_csv) for row in read_csv(quality_csv)] if quality_csv.is_file() else []
    return runs, quality


def dedupe_cells(records: list[RunRecord], tuned: set[str] = frozenset()) -> list[RunRecord]:
    """One record per (group, targets, seed): runs that differ only in out/cache_dir/device are the same
    cell; the most recently finished is kept, and so are runs that differ in a target setting they do not use
    (hard targets at two temperatures: the same results). Two runs that share group, arm label and seed but differ
    in their targets or a tuned key, and in their results, are refused (two arms the labels cannot tell apart:
    'hard, retain soft' at T = 2 and at T = 4): merging them would report one arm's seeds as another's."""
    cells: dict[tuple, RunRecord] = {}
    for r in sorted(records, key=lambda r: r.finished_at):
        key = (*r.group, r.targets, r.seed)
        if key in cells:
            differ = sorted(k for k in {*arm_keys(r, tuned), *arm_keys(cells[key], tuned)}
                            if r.config.get(k) != cells[key].config.get(k))
            if differ and r.unlearned != cells[key].unlearned:
                raise SoftTargetsError(
                    f"{cells[key].name} and {r.name} are both arm '{r.targets}', seed {r.seed}, of "
                    f"{' / '.join(p for p in r.group if p)}, but differ in {', '.join(differ)}: the report cannot "
                    "tell them apart; report them from separate folders")
        cells[key] = r
    return sorted(cells.values(), key=lambda r: (*r.group, r.targets, r.seed))


def arm_keys(record: RunRecord, tuned: set[str]) -> list[str]:
    """The config keys that make a run's arm: its targets and the keys tuned per arm."""
    return [k for k in record.config if k.startswith("targets.") or k in tuned]


def read_failures(root: str | Path) -> list[dict]:
    """Cells a sweep recorded as failed (OUT/_failed/*.json) and that have not succeeded since."""
    failures = []
    for path in sorted(Path(root).glob("_failed/*.json")):
        try:
            failures.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return failures

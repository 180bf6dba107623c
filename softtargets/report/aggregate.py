"""Collect run folders into records: one per cell, grouped by (dataset, architecture, method, setting).

A run folder counts when it has result.json and its name does not start with '.' (hidden folders are runs
still being written or abandoned). The same run found twice (copied folders, a resumed sweep) counts once.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from softtargets.errors import SoftTargetsError

log = logging.getLogger(__name__)
# config keys that identify a cell's place in a comparison rather than its setting
NOT_SETTING = {"seed", "out", "cache_dir", "device", "targets.kind", "data.dataset", "training.architecture",
               "unlearning.method"}


@dataclass
class RunRecord:
    name: str
    path: Path
    dataset: str
    architecture: str
    method: str
    targets: str  # the arm: hard, soft, smooth, uniform
    seed: int
    status: str
    unlearned: dict  # metric -> value (empty for runs whose outputs became non-finite)
    reference: dict
    config: dict = field(default_factory=dict)  # flattened, dotted keys
    finished_at: str = ""
    setting: str = ""  # what distinguishes this run's configuration inside its group ('' when nothing)
    uses_targets: bool = True  # False: the method sees labels only, so its arms are identical

    @property
    def group(self) -> tuple[str, str, str, str]:
        return self.dataset, self.architecture, self.method, self.setting


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


def read_run(folder: Path) -> RunRecord | None:
    """The record of a `run` folder; None (skipped) for other commands' folders (forget-quality, relearn, lmc,
    amnesia: result.json names its command) and for unreadable or malformed files."""
    try:
        result = json.loads((folder / "result.json").read_text())
    except (OSError, ValueError) as err:
        log.warning("skipping %s: unreadable result.json (%s)", folder, err)
        return None
    if not isinstance(result, dict) or "command" in result:
        return None
    try:
        config_file = folder / "config.yaml"
        config = flatten(yaml.safe_load(config_file.read_text()) or {}) if config_file.is_file() else {}
        metrics = result.get("metrics", {})
        return RunRecord(
            name=result.get("name", folder.name), path=folder, dataset=result["dataset"],
            architecture=result["architecture"], method=result["method"], targets=result["targets"]["kind"],
            seed=int(result["seed"]), status=result.get("status", "completed"),
            unlearned=metrics.get("unlearned") or {}, reference=metrics.get("reference") or {}, config=config,
            finished_at=result.get("finished_at", ""),
            uses_targets=bool((result.get("unlearning") or {}).get("uses_targets", True)),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, yaml.YAMLError) as err:
        log.warning("skipping %s: not a run folder softtargets can read (%s: %s)", folder, type(err).__name__, err)
        return None


def find_run_folders(root: Path) -> list[Path]:
    """Folders under root holding result.json, skipping hidden ones and anything inside them."""
    found = []
    for result in sorted(root.rglob("result.json")):
        parts = result.parent.relative_to(root).parts
        if not any(p.startswith(".") for p in parts):
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
    root = Path(root)
    if not root.is_dir():
        raise SoftTargetsError(f"runs folder {root} not found: give the folder a sweep or compare wrote")
    by_name: dict[str, RunRecord] = {}
    for folder in find_run_folders(root):
        record = read_run(folder)
        if record and (record.name not in by_name or record.finished_at > by_name[record.name].finished_at):
            by_name[record.name] = record
    if not by_name:
        raise SoftTargetsError(f"no run folders with result.json under {root}: run a sweep first")
    records = list(by_name.values())
    label_settings(records)
    return dedupe_cells(records)


def label_settings(records: list[RunRecord]) -> None:
    """Name each run's setting by the config keys that vary inside its (dataset, architecture, method)."""
    families: dict[tuple, list[RunRecord]] = {}
    for r in records:
        families.setdefault((r.dataset, r.architecture, r.method), []).append(r)
    for family in families.values():
        keys = sorted({k for r in family for k in r.config} - NOT_SETTING)
        varying = [k for k in keys if len({json.dumps(r.config.get(k), default=str) for r in family}) > 1]
        for r in family:
            r.setting = ", ".join(f"{k}={r.config.get(k)}" for k in varying)


def dedupe_cells(records: list[RunRecord]) -> list[RunRecord]:
    """One record per (group, targets, seed): runs that differ only in out/cache_dir/device are the same
    cell; the most recently finished is kept."""
    cells: dict[tuple, RunRecord] = {}
    for r in sorted(records, key=lambda r: r.finished_at):
        cells[(*r.group, r.targets, r.seed)] = r
    return sorted(cells.values(), key=lambda r: (*r.group, r.targets, r.seed))


def read_failures(root: str | Path) -> list[dict]:
    """Cells a sweep recorded as failed (OUT/_failed/*.json) and that have not succeeded since."""
    failures = []
    for path in sorted(Path(root).glob("_failed/*.json")):
        try:
            failures.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return failures

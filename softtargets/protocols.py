"""Protocols: named presets that reproduce a seed system's setup (configs/protocols/<name>.yaml).

A protocol file has a `description`, a `config` mapping (the same sections as a --config file), applied as a
layer below --config files and flags, an optional `methods` mapping from a method name to that method's
unlearning settings under the protocol (the source's own per-method configs), and an optional `report`
mapping from the protocol's own metric names to softtargets metrics of the unlearned model (e.g.
MLS-Bench's retain_acc is acc_test_retain_classes).
`--protocol` also takes a path to such a YAML file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from softtargets.config import SECTIONS, TOP_LEVEL, configs_dir, read_yaml
from softtargets.errors import SoftTargetsError, brief

PROTOCOL_KEYS = ("description", "config", "methods", "report")


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    config: dict  # a config layer: sections data/training/unlearning/targets and top-level keys
    report: dict[str, str]  # protocol metric name -> softtargets metric of the unlearned model
    source: str
    methods: dict[str, dict] = field(default_factory=dict)  # method name -> its unlearning settings


def protocols_dir() -> Path:
    return configs_dir() / "protocols"


def available() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def load_protocol(name: str) -> Protocol:
    """A shipped protocol by name, or a protocol YAML file by path; every key is checked."""
    is_file = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_file else protocols_dir() / f"{name}.yaml"
    if not path.is_file() or not (is_file or name in available()):  # a name never reaches outside the folder
        raise SoftTargetsError(f"unknown protocol {brief(name)}: choose one of {', '.join(available())} "
                               f"or give a protocol .yaml file")
    values = read_yaml(path)
    unknown = sorted(set(values) - set(PROTOCOL_KEYS))
    if unknown:
        raise SoftTargetsError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(PROTOCOL_KEYS)})")
    layer, report, methods = values.get("config") or {}, values.get("report") or {}, values.get("methods") or {}
    if not isinstance(layer, dict) or not isinstance(report, dict) or not isinstance(methods, dict):
        raise SoftTargetsError(f"{path}: 'config', 'methods' and 'report' must be mappings")
    for method, settings in methods.items():
        if not isinstance(settings, dict):
            raise SoftTargetsError(f"{path}: 'methods.{method}' must be a mapping of unlearning settings")
    for key in layer:
        if key not in SECTIONS and key not in TOP_LEVEL - {"protocol"}:
            raise SoftTargetsError(f"{path}: unknown key 'config.{key}' (allowed: "
                                   f"{', '.join([*SECTIONS, *sorted(TOP_LEVEL - {'protocol'})])})")
        if key in SECTIONS and not isinstance(layer[key], dict):
            raise SoftTargetsError(f"{path}: section 'config.{key}' must be a mapping")
    return Protocol(path.stem, str(values.get("description", "")), layer, {str(k): str(v) for k, v in report.items()},
                    str(path), {str(k): dict(v) for k, v in methods.items()})


def protocol_metrics(name: str | None, metrics: dict) -> dict | None:
    """The protocol's report for result.json: its metric names with the unlearned model's values, plus the
    same numbers for the original and the reference; names whose metric this run has not (e.g. class-only
    metrics on a random forget set) are listed under `missing`."""
    if not name:
        return None
    report = load_protocol(name).report
    out: dict = {"name": name, "report": dict(report)}
    for role in ("unlearned", "original", "reference"):
        values = metrics.get(role, {})
        out[role] = {mine: values[theirs] for mine, theirs in report.items() if theirs in values}
    out["missing"] = [mine for mine, theirs in report.items() if theirs not in metrics.get("reference", {})]
    return out

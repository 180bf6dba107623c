"""What a protocol reports: its own metric names with softtargets' values (result.json's `protocol`).

A protocol (configs/protocols/<name>.yaml, or a path to such a file) is a named config layer; config.py
loads and applies it (config.load_protocol, whose docstring describes the file).
"""

from __future__ import annotations

from softtargets.config import load_protocol


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

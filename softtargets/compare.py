"""compare: the same method with hard and with soft targets on the same seeds, paired statistics."""

from __future__ import annotations

import json
import math
from pathlib import Path

from softtargets.config import RunConfig, replace
from softtargets.data.datasets import dataset_label
from softtargets.evaluation import HEADLINE, clean_json
from softtargets.experiment import prepare, train_models_in_parallel, validate
from softtargets.hooks import Hooks
from softtargets.report.stats import mean_ci, paired
from softtargets.targets import check_kind
from softtargets.tracking.local import write_text_atomic
from softtargets.tracking.runs import run_tracked, track_comparison, under_agent


def compare(cfg: RunConfig, seeds: list[int], soft_kind: str = "soft", hooks: Hooks | None = None,
            out: str | Path | None = None, tracking: dict | None = None) -> dict:
    """Run hard and soft_kind targets for every seed (sharing each seed's original and reference models).
    tracking (see tracking/runs.py): one tracker Task per run, then one for the comparison linking them."""
    hooks = hooks or Hooks()
    check_kind(soft_kind)
    kinds = ("hard", soft_kind)
    for kind in kinds:
        validate(replace(cfg, **{"targets.kind": kind}))
    folder = Path(out or cfg.out) / compare_name(cfg, seeds, soft_kind)
    runs: dict[str, list[dict]] = {k: [] for k in kinds}
    bundle = train_models_in_parallel(cfg, seeds, hooks)
    for seed in seeds:
        seeded = replace(cfg, seed=seed)
        prepared = prepare(seeded, hooks, bundle)
        for kind in kinds:
            # under clearml-agent the process owns one Task (the comparison's): no Task per run there
            result = run_tracked(replace(seeded, **{"targets.kind": kind}), hooks, prepared, folder / "runs",
                                 None if under_agent() else tracking, extra_tags=(folder.name,))
            runs[kind].append(result)
    table = comparison_table(runs, kinds)
    summary = {"method": cfg.unlearning.method, "dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
               "forget": cfg.data.forget, "seeds": seeds, "kinds": list(kinds),
               "status": {k: [r["status"] for r in runs[k]] for k in kinds},
               "runs": {k: [r["path"] for r in runs[k]] for k in kinds}, "table": table}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "comparison.json", json.dumps(clean_json(summary), indent=2) + "\n")
    write_text_atomic(folder / "comparison.md", to_markdown(summary))
    summary["path"] = str(folder)
    if tracking:
        links = {k: [r["tracker"] for r in runs[k]] for k in kinds}
        summary["tracker"] = track_comparison(cfg, summary, format_rows(summary), headers(summary), links, tracking)
    return summary


def compare_name(cfg: RunConfig, seeds: list[int], soft_kind: str) -> str:
    method = cfg.unlearning.method.rpartition(":")[2].replace("/", "_")
    seed_part = f"seeds{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        "seeds" + "_".join(map(str, seeds))
    return f"compare-{dataset_label(cfg.data.dataset)}-{cfg.training.architecture}-{method}-hard-vs-{soft_kind}-{seed_part}"


def comparison_table(runs: dict[str, list[dict]], kinds: tuple[str, str]) -> list[dict]:
    """One row per headline metric: reference mean, each kind's mean and CI, the paired difference."""
    hard, soft = kinds
    rows = []
    for metric, (label, better) in HEADLINE.items():
        values = {k: [r["metrics"].get("unlearned", {}).get(metric) for r in runs[k]] for k in kinds}
        if all(v is None for v in values[hard] + values[soft]):
            continue
        ref = [r["metrics"]["reference"].get(metric) for r in runs[hard]]
        row = {"metric": metric, "label": label, "better": better, "reference": mean_ci(ref)[0]}
        for k in kinds:
            row[k] = dict(zip(("mean", "ci_low", "ci_high"), mean_ci(values[k])))
        row["paired"] = paired(values[hard], values[soft])
        rows.append(row)
    return rows


def _fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _p(p: float | None) -> str:
    return "–" if p is None or math.isnan(p) else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def _mean_pm(stat: dict, digits: int = 4) -> str:
    """'mean ± half-width' of a 95% interval (compact, for the terminal)."""
    if stat["ci_low"] is None or math.isnan(stat["ci_low"]):
        return _fmt(stat.get("mean", stat.get("mean_diff")), digits)
    centre = stat.get("mean", stat.get("mean_diff"))
    return f"{_fmt(centre, digits)} ± {_fmt((stat['ci_high'] - stat['ci_low']) / 2, digits)}"


def format_rows(summary: dict, compact: bool = False) -> list[list[str]]:
    """Table cells shared by the markdown file ([low, high] intervals) and the terminal (± half-widths)."""
    hard, soft = summary["kinds"]

    def cell(stat: dict) -> str:
        if compact:
            return _mean_pm(stat)
        centre = stat.get("mean", stat.get("mean_diff"))
        return f"{_fmt(centre)} [{_fmt(stat['ci_low'])}, {_fmt(stat['ci_high'])}]"

    return [[row["metric"], _fmt(row["reference"]), cell(row[hard]), cell(row[soft]), cell(row["paired"]),
             _p(row["paired"]["p_wilcoxon"]), row["better"]] for row in summary["table"]]


def headers(summary: dict) -> list[str]:
    hard, soft = summary["kinds"]
    return ["metric", "reference", f"{hard} mean [95% CI]", f"{soft} mean [95% CI]",
            f"{soft} - {hard} [95% CI]", "Wilcoxon p", "better"]


def to_markdown(summary: dict) -> str:
    hard, soft = summary["kinds"]
    n = len(summary["seeds"])
    lines = [
        f"# {summary['method']} on {summary['dataset']} ({summary['architecture']}): {hard} vs {soft} targets",
        "",
        f"Forget spec `{summary['forget']}`, {n} seeds ({', '.join(map(str, summary['seeds']))}); each seed shares "
        "its original and retrained reference models between the two runs. Means with 95% t-intervals; the "
        "paired difference is over seeds, tested with the Wilcoxon signed-rank test (two-sided). "
        "'better: reference' means closer to the retrained reference's value is better.",
        "",
        "| " + " | ".join(headers(summary)) + " |",
        "|" + "---|" * len(headers(summary)),
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in format_rows(summary)]
    for kind in summary["kinds"]:
        bad = [s for s, st in zip(summary["seeds"], summary["status"][kind]) if st != "completed"]
        if bad:
            lines += ["", f"**{kind}: runs for seeds {bad} diverged** (their metrics are excluded where missing)."]
    return "\n".join(lines) + "\n"

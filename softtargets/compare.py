"""compare: the same method with hard and with soft targets on the same seeds, paired statistics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from softtargets.config import RunConfig, replace
from softtargets.data.datasets import DataBundle, dataset_label, load_configured
from softtargets.experiment import prepare, train_models_in_parallel, validate
from softtargets.hooks import Hooks
from softtargets.io import clean_json, write_text_atomic
from softtargets.report.comparison import METHOD_TEXT, cells, compare_arms, fmt, headers, mean_ci_text
from softtargets.scheduler import check_workers, run_cells
from softtargets.targets import check_kind
from softtargets.tracking.runs import run_tracked, track_comparison, under_agent
from softtargets.training.fit import resolve_device


def compare(cfg: RunConfig, seeds: list[int], soft_kind: str = "soft", hooks: Hooks | None = None,
            out: str | Path | None = None, tracking: dict | None = None, workers: int = 1) -> dict:
    """Run hard and soft_kind targets for every seed (sharing each seed's original and reference models).
    tracking (see tracking/runs.py): one tracker Task per run, then one for the comparison linking them.
    workers: seeds in flight at once (softtargets.scheduler); the metrics are the same for any number."""
    hooks = hooks or Hooks()
    check_kind(soft_kind)
    check_workers(workers)
    kinds = ("hard", soft_kind)
    for kind in kinds:
        method_cls = validate(replace(cfg, **{"targets.kind": kind}))
    folder = Path(out or cfg.out) / compare_name(cfg, seeds, soft_kind)
    if workers == 1:
        bundle = train_models_in_parallel(cfg, seeds, hooks)
        per_seed = [compare_seed(cfg, seed, kinds, folder, tracking, hooks, bundle) for seed in seeds]
    else:
        # CUDA: the seeds' models trained stacked here first, the workers load them. CPU: each worker trains
        # its own seed's models (training here would leave the workers idle; stacking does not pay on CPU)
        if resolve_device(cfg.device).type == "cuda":
            train_models_in_parallel(cfg, seeds, hooks)
        per_seed = run_cells(compare_seed, [(cfg, seed, kinds, folder, tracking) for seed in seeds], workers, hooks,
                             f"compare x{len(seeds)}")
    runs = {kind: [results[kind] for results in per_seed] for kind in kinds}
    summary = {"method": cfg.unlearning.method, "dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
               "forget": cfg.data.forget, "seeds": seeds, "kinds": list(kinds),
               "status": {k: [r["status"] for r in runs[k]] for k in kinds},
               "runs": {k: [r["path"] for r in runs[k]] for k in kinds},
               "comparison": comparison_table(runs, kinds),
               "labels_only": not method_cls.uses_targets}
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(folder / "comparison.json", json.dumps(clean_json(summary), indent=2) + "\n")
    write_text_atomic(folder / "comparison.md", to_markdown(summary))
    summary["path"] = str(folder)
    if tracking:
        links = {k: [r["tracker"] for r in runs[k]] for k in kinds}
        summary["tracker"] = track_comparison(cfg, summary, cells(summary["comparison"], kinds), headers(kinds), links,
                                              tracking)
    return summary


def compare_seed(cfg: RunConfig, seed: int, kinds: tuple[str, str], folder: Path, tracking: dict | None,
                 hooks: Hooks | None = None, bundle: DataBundle | None = None) -> dict[str, dict]:
    """One seed's cell: its original and reference (trained or from the cache), then a run per target kind."""
    seeded = replace(cfg, seed=seed)
    prepared = prepare(seeded, hooks, bundle if bundle is not None else _loaded(cfg))
    # under clearml-agent the process owns one Task (the comparison's): no Task per run there
    return {kind: run_tracked(replace(seeded, **{"targets.kind": kind}), hooks, prepared, folder / "runs",
                              None if under_agent() else tracking, extra_tags=(folder.name,))
            for kind in kinds}


_BUNDLES: dict[str, DataBundle] = {}  # per process: a worker's later seeds reuse its loaded dataset


def _loaded(cfg: RunConfig) -> DataBundle:
    key = json.dumps([dataclasses.asdict(cfg.data), cfg.cache_dir], sort_keys=True, default=str)
    if key not in _BUNDLES:
        _BUNDLES.clear()
        _BUNDLES[key] = load_configured(cfg)
    return _BUNDLES[key]


def compare_name(cfg: RunConfig, seeds: list[int], soft_kind: str) -> str:
    method = cfg.unlearning.method.rpartition(":")[2].replace("/", "_")
    seed_part = f"seeds{seeds[0]}-{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        "seeds" + "_".join(map(str, seeds))
    return f"compare-{dataset_label(cfg.data.dataset)}-{cfg.training.architecture}-{method}-hard-vs-{soft_kind}-{seed_part}"


def labels_only_note(summary: dict) -> str | None:
    """One line in place of the tables when the method never sees targets (adapted plugins): its hard and soft
    runs are the same computation, so a paired comparison would only show zeros."""
    if not summary.get("labels_only"):
        return None
    return (f"{summary['method']} sees labels only (adapted plugin code gets (images, labels)): its hard and "
            f"{summary['kinds'][1]} runs are identical, so there is nothing to compare; per-seed results are in "
            f"the run folders.")


def comparison_table(runs: dict[str, list[dict]], kinds: tuple[str, str]) -> dict:
    """The paired comparison of the two kinds over the seeds (report/comparison.py)."""
    pairs = {k: [(r["metrics"].get("unlearned") or {}, r["metrics"]["reference"]) for r in runs[k]] for k in kinds}
    comparison = compare_arms(pairs[kinds[0]], pairs[kinds[1]], kinds)
    for kind in kinds:
        degenerate = sorted({name for r in runs[kind] for name, row in r["targets"]["terms"].items()
                             if row["degenerate"]})
        if degenerate:
            seeds = sum(any(row["degenerate"] for row in r["targets"]["terms"].values()) for r in runs[kind])
            comparison["notes"].append(f"{kind} targets give {', '.join(degenerate)} no gradient at the original "
                                       f"weights ({seeds} of {len(runs[kind])} seeds): that arm's loss cannot start "
                                       "the unlearning (README: degenerate soft targets)")
    return comparison


def to_markdown(summary: dict) -> str:
    hard, soft = kinds = tuple(summary["kinds"])
    comparison = summary["comparison"]
    n = len(summary["seeds"])
    title = f"# {summary['method']} on {summary['dataset']} ({summary['architecture']}): {hard} vs {soft} targets"
    labels_only = labels_only_note(summary)
    lines = [title, "", labels_only] if labels_only else [
        title,
        "",
        f"**{comparison['answer']}.**",
        "",
        *[f"*Note: {note}.*\n" for note in comparison["notes"]],
        f"Forget spec `{summary['forget']}`, {n} seeds ({', '.join(map(str, summary['seeds']))}). {METHOD_TEXT}",
        "",
        md_table(headers(kinds), cells(comparison, kinds)),
        "",
        "Raw values of every metric (means over seeds with 95% t-intervals):",
        "",
        md_table(["metric", "reference", f"{hard}", f"{soft}"],
                 [[row["metric"], fmt(row["reference"]), mean_ci_text(row["raw"][hard]), mean_ci_text(row["raw"][soft])]
                  for row in comparison["rows"]]),
    ]
    for kind in summary["kinds"]:
        bad = [s for s, st in zip(summary["seeds"], summary["status"][kind]) if st != "completed"]
        if bad:
            lines += ["", f"**{kind}: runs for seeds {bad} diverged** (their metrics are excluded where missing)."]
    return "\n".join(lines) + "\n"


def md_table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in rows])

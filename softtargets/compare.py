"""compare: the same method with hard and with soft targets on the same seeds, paired statistics."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from softtargets.config import RunConfig, replace
from softtargets.data.datasets import DataBundle, dataset_label, load_configured
from softtargets.errors import SoftTargetsError
from softtargets.experiment import prepare, run_experiment, run_name, train_models_in_parallel, validate
from softtargets.hooks import Hooks
from softtargets.io import clean_json, write_text_atomic
from softtargets.metrics.headline import PRIMARY
from softtargets.report.comparison import (METHOD_TEXT, cells, compare_arms, families_line, fmt, headers,
                                           md_table, mean_ci_text)
from softtargets.scheduler import check_workers, run_cells
from softtargets.report.aggregate import arm_label, write_csv
from softtargets.report.arms import params_text
from softtargets.targets import check_kind
from softtargets.tuning import DEFAULT_METRIC, TUNING_CSV, TUNING_FOLDER, Arm, candidates, read_result
from softtargets.tracking.runs import run_tracked, track_comparison, under_agent
from softtargets.training.fit import resolve_device, use_compute


def compare(cfg: RunConfig, seeds: list[int], soft_kind: str = "soft", hooks: Hooks | None = None,
            out: str | Path | None = None, tracking: dict | None = None, workers: int = 1, base_kind: str = "hard",
            tune: dict | None = None) -> dict:
    """Run base_kind (hard) and soft_kind targets for every seed (sharing each seed's original and reference
    models). tracking (see tracking/runs.py): one tracker Task per run, then one for the comparison linking them.
    workers: seeds in flight at once (softtargets.scheduler); the metrics are the same for any number.
    tune: {"params": {dotted key: [values]}, "seeds": [...], "metric": name, "max_test_drop": x or None}: each
    kind's values chosen first on the tuning seeds (disjoint from seeds) by the lowest mean metric among the
    candidates that keep test accuracy (softtargets/tuning.py), the record in the comparison folder's tuning.csv."""
    hooks = hooks or Hooks()
    check_kind(soft_kind)
    check_kind(base_kind)
    check_workers(workers)
    if soft_kind == base_kind:
        raise SoftTargetsError(f"--soft-kind and --base-kind are both {soft_kind}: compare two different kinds")
    kinds = (base_kind, soft_kind)
    arms = {kind: {"targets.kind": kind} for kind in kinds}
    for kind in kinds:
        method_cls = validate(replace(cfg, **arms[kind]))
    name = compare_name(cfg, seeds, soft_kind) if base_kind == "hard" else \
        compare_name(cfg, seeds, soft_kind).replace("-hard-vs-", f"-{base_kind}-vs-")
    folder = Path(out or cfg.out) / name
    tuning_rows = []
    if tune:
        arms, tuning_rows = tune_arms(cfg, arms, tune, seeds, folder, hooks, workers)
    if workers == 1:
        bundle = train_models_in_parallel(cfg, seeds, hooks)
        per_seed = [compare_seed(cfg, seed, arms, folder, tracking, hooks, bundle) for seed in seeds]
    else:
        # CUDA: the seeds' models trained stacked here first, the workers load them. CPU: each worker trains
        # its own seed's models (training here would leave the workers idle; stacking does not pay on CPU)
        if resolve_device(cfg.device).type == "cuda":
            train_models_in_parallel(cfg, seeds, hooks)
        per_seed = run_cells(compare_seed, [(cfg, seed, arms, folder, tracking) for seed in seeds], workers, hooks,
                             f"compare x{len(seeds)}")
    runs = {kind: [results[kind] for results in per_seed] for kind in kinds}
    summary = {"method": cfg.unlearning.method, "dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
               "forget": cfg.data.forget, "seeds": seeds, "kinds": list(kinds),
               "status": {k: [r["status"] for r in runs[k]] for k in kinds},
               "runs": {k: [r["path"] for r in runs[k]] for k in kinds},
               "comparison": comparison_table(runs, kinds),
               "labels_only": not method_cls.uses_targets,
               "tuned": {kind: {k: v for k, v in arms[kind].items() if k != "targets.kind"} for kind in kinds}
               if tune else None,
               "max_test_drop": tune.get("max_test_drop") if tune else None}
    folder.mkdir(parents=True, exist_ok=True)
    if tuning_rows:
        write_csv(folder / TUNING_CSV, tuning_rows)
    write_text_atomic(folder / "comparison.json", json.dumps(clean_json(summary), indent=2) + "\n")
    write_text_atomic(folder / "comparison.md", to_markdown(summary))
    summary["path"] = str(folder)
    if tracking:
        links = {k: [r["tracker"] for r in runs[k]] for k in kinds}
        summary["tracker"] = track_comparison(cfg, summary, cells(summary["comparison"], kinds), headers(kinds), links,
                                              tracking)
    return summary


def compare_seed(cfg: RunConfig, seed: int, arms: dict[str, dict], folder: Path, tracking: dict | None,
                 hooks: Hooks | None = None, bundle: DataBundle | None = None) -> dict[str, dict]:
    """One seed's cell: its original and reference (trained or from the cache), then a run per target kind with
    that kind's settings (arms: kind -> dotted changes, the kind and any tuned values)."""
    seeded = replace(cfg, seed=seed)
    prepared = prepare(seeded, hooks, bundle if bundle is not None else _loaded(cfg))
    # under clearml-agent the process owns one Task (the comparison's): no Task per run there
    return {kind: run_tracked(replace(seeded, **changes), hooks, prepared, folder / "runs",
                              None if under_agent() else tracking, extra_tags=(folder.name,))
            for kind, changes in arms.items()}


def tune_arms(cfg: RunConfig, arms: dict[str, dict], tune: dict, seeds: list[int], folder: Path, hooks: Hooks,
              workers: int) -> tuple[dict[str, dict], list[dict]]:
    """Each kind's candidates (the product of tune["params"]) on the tuning seeds, in folder/tuning (finished runs
    are reused); returns each kind's changes with its chosen values and the tuning.csv rows."""
    overlap = sorted(set(tune["seeds"]) & set(seeds))
    if overlap:
        raise SoftTargetsError(f"--tune-seeds and --seeds share seed {overlap[0]}: tuning seeds must be disjoint "
                               "from the evaluation seeds")
    options = candidates(tune["params"])
    for kind, changes in arms.items():
        for candidate in options:
            validate(replace(cfg, **changes, **candidate))
    results = run_cells(tune_seed, [(cfg, seed, arms, options, folder / TUNING_FOLDER) for seed in tune["seeds"]],
                        workers, hooks, f"tune x{len(tune['seeds'])}")
    chosen, rows = {}, []
    for kind, changes in arms.items():
        labels = [arm_label({"kind": kind, "temperature": cfg.targets.temperature, "smoothing": cfg.targets.smoothing,
                             "retain_kind": cfg.targets.retain_kind,
                             **{k.split(".")[1]: v for k, v in {**changes, **c}.items() if k.startswith("targets.")}})
                  for c in options]
        arm = Arm({"dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
                   "method": cfg.unlearning.method, "forget": cfg.data.forget}, options, labels, list(tune["seeds"]),
                  tune.get("metric", DEFAULT_METRIC), tune.get("max_test_drop"))
        arm.results = [[per_seed[kind][i] for per_seed in results] for i in range(len(options))]
        best = arm.chosen()
        if best is None:
            raise SoftTargetsError(f"--tune, {kind}: {arm.why_none()} (see {folder / TUNING_FOLDER}): give other "
                                   "values" + (" or a larger --tune-max-test-drop" if arm.max_test_drop is not None
                                               else ""))
        chosen[kind] = {**changes, **options[best]}
        rows += arm.rows()
    return chosen, rows


def tune_seed(cfg: RunConfig, seed: int, arms: dict[str, dict], options: list[dict], out: Path) -> dict[str, list]:
    """One tuning seed: every kind's every candidate (kind -> result per candidate); finished runs are reused."""
    seeded = replace(cfg, seed=seed)
    prepared = None
    results: dict[str, list] = {}
    for kind, changes in arms.items():
        for candidate in options:
            run_cfg = replace(seeded, **changes, **candidate)
            done = read_result(out / run_name(run_cfg))
            if done is None:
                prepared = prepared or prepare(seeded, None, _loaded(cfg))
                done = run_experiment(run_cfg, prepared=prepared, out=out)
            results.setdefault(kind, []).append(done)
    return results


_BUNDLES: dict[str, DataBundle] = {}  # per process: a worker's later seeds reuse its loaded dataset


def _loaded(cfg: RunConfig) -> DataBundle:
    key = json.dumps([dataclasses.asdict(cfg.data), cfg.cache_dir], sort_keys=True, default=str)
    if key not in _BUNDLES:
        use_compute(cfg)  # before the first tensor operation (training.fit.use_compute says why)
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
    # a second exact retrain's distance to the reference (the floor), where the runs measured it
    floor = [(r["metrics"].get("floor") or {}).get(PRIMARY) for r in runs[kinds[0]]]
    comparison = compare_arms(pairs[kinds[0]], pairs[kinds[1]], kinds,
                              floor if any(f is not None for f in floor) else None)
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
        *([] if not summary.get("tuned") else [
            "", "Each kind ran with its own values, chosen on the tuning seeds by the lowest mean primary metric "
            + ("" if summary.get("max_test_drop") is None else "among the candidates whose mean test accuracy on the "
               f"kept classes was at most {summary['max_test_drop']:g} below the reference's ")
            + "(every candidate's score: tuning.csv): " + "; ".join(
                f"{kind}: {params_text(values)}" for kind, values in summary["tuned"].items()) + "."]),
        "",
        md_table(headers(kinds), cells(comparison, kinds)),
        "",
        families_line(comparison) + ".",
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


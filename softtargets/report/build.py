"""`softtargets report RUNS_DIR`: run folders (or a runs.csv.xz written by a report) -> statistics per (dataset,
architecture, method, setting), paired hard-vs-other comparisons, forget-quality audits joined to them,
figures, report.md and report.html (both showing the PNGs next to them), and the CSVs every number of it
regenerates from.

Statistics: per arm, n, mean, sample std and the mean's 95% t-interval of every metric; per comparison
(report/comparison.py), on the tested quantity (the metric, or its per-seed distance to the reference): the
mean paired difference over shared seeds with the 95% interval of its test, the two-sided sign-flip
permutation p (report/stats.py), Holm-adjusted in the report's families (every primary comparison of the
report; every secondary test of the report), d_z with its interval (descriptive), where a retrain-vs-retrain
floor is known the difference in floors, and a one-line answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

from softtargets.errors import SoftTargetsError
from softtargets.io import clean_json
from softtargets.metrics.headline import HEADLINE
from softtargets.metrics.headline import PRIMARY
from softtargets.report.aggregate import (RUNS_CSV, QualityRecord, RunRecord, find_unfinished, load_results,
                                          read_failures, tuning_record, write_csv)
from softtargets.report.arms import (ARM_FIELDS, BASELINES, adjust_gap_tests, arm_rows, mark_edges, pareto_figure,
                                    tuning_rows_of)
from softtargets.report.comparison import compare_arms, report_families
from softtargets.report.contents import Report
from softtargets.report.relearn import RELEARN_CSV, SUMMARY_FIELDS as RELEARN_FIELDS, load_relearn, relearn_summary
from softtargets.report.render import to_html, to_markdown
from softtargets.report.stats import describe
from softtargets.tracking.local import publish, work_path
from softtargets.tuning import TUNING_CSV

SUMMARY_FIELDS = ["dataset", "architecture", "method", "setting", "targets", "metric", "n", "mean", "std",
                  "ci_low", "ci_high", "reference"]
TEST_FIELDS = ["n", "n_nonzero", "mean_diff", "ci_low", "ci_high", "p", "p_min", "test", "p_holm", "holm_family",
               "effect_dz", "dz_ci_low", "dz_ci_high"]  # report/stats.paired() and the family's adjustment
FLOOR_FIELDS = ["floor", "diff_floor", "diff_floor_ci_low", "diff_floor_ci_high"]  # only where a floor is known
PAIRED_FIELDS = ["dataset", "architecture", "method", "setting", "comparison", "metric", "tested", "family",
                 *TEST_FIELDS, "better"]
OVERVIEW_FIELDS = ["dataset", "architecture", "method", "setting", "arm", "original", "hard", "other", *TEST_FIELDS,
                   "F_hard", "F_other", "F_other_ci_low", "F_other_ci_high", "F_null", "fq_n_models"]
# 'hard' holds the baseline arm's value; 'baseline' names it where it is not hard (delete: masked_pseudo)


def by_group(records: list[RunRecord]) -> dict[tuple, dict[str, dict[int, RunRecord]]]:
    """group -> arm -> seed -> record."""
    out: dict[tuple, dict[str, dict[int, RunRecord]]] = {}
    for r in records:
        out.setdefault(r.group, {}).setdefault(r.targets, {})[r.seed] = r
    return out


def baseline(arms) -> str | None:
    """The arm every other arm of a group is compared against: the first of BASELINES the group has."""
    return next((b for b in BASELINES if b in arms), None)


def arm_order(arms) -> list[str]:
    first = baseline(arms)
    return sorted(arms, key=lambda a: (a != first, a))


def summary_rows(records: list[RunRecord]) -> list[dict]:
    rows = []
    for group, arms in sorted(by_group(records).items()):
        for metric in HEADLINE:
            stats_per_arm = {arm: describe([r.unlearned.get(metric) for r in arms[arm].values()])
                             for arm in arm_order(arms)}
            if all(s["n"] == 0 for s in stats_per_arm.values()):
                continue
            seeds = {seed: r for runs in arms.values() for seed, r in runs.items()}
            reference = describe([r.reference.get(metric) for r in seeds.values()])["mean"]
            for arm, s in stats_per_arm.items():
                rows.append({**_group_fields(group), "targets": arm, "metric": metric, **s, "reference": reference})
    return rows


def comparisons(records: list[RunRecord]) -> list[dict]:
    """Every other arm of each group with hard runs against hard on the seeds both have (report/comparison.py:
    distances to the reference, one primary metric), adjusted in the report's families: Holm over all primary
    comparisons of the report, and over all its secondary tests. A method that sees labels only has identical
    arms: nothing to compare. Each: compare_arms()'s dict with its group, arm, seeds and the original's mean
    primary distance."""
    out = []
    for group, arms in sorted(by_group(records).items()):
        base = baseline(arms)
        if base is None or not all(r.uses_targets for runs in arms.values() for r in runs.values()):
            continue
        for arm in arm_order(arms)[1:]:
            seeds = sorted(set(arms[base]) & set(arms[arm]))
            pairs = [[(arms[a][s].unlearned, arms[a][s].reference) for s in seeds] for a in (base, arm)]
            floor = [arms[base][s].floor.get(PRIMARY) for s in seeds]
            comparison = compare_arms(*pairs, (base, arm), floor if any(f is not None for f in floor) else None)
            original = describe([arms[base][s].original.get(PRIMARY) for s in seeds])["mean"]
            out.append({**comparison, "group": group, "arm": arm, "baseline": base, "seeds": seeds,
                        "original": original})
    report_families(out)
    return out


def paired_rows(compared: list[dict]) -> tuple[list[dict], list[dict]]:
    """The paired table (one row per comparison and tested metric) and one answer per comparison."""
    rows, answers = [], []
    for c in compared:
        name = f"{c['arm']} - {c['baseline']}"
        answers.append({**_group_fields(c["group"]), "comparison": name, "answer": c["answer"], "notes": c["notes"],
                        "n": c["n"]})
        for row in c["rows"]:
            stat = row.get("paired")
            if stat and stat["n"]:
                rows.append({**_group_fields(c["group"]), "comparison": name, "metric": row["metric"],
                             "tested": row["tested"], "family": row["family"], **stat, "better": row["better"]})
    return rows, answers


def overview_rows(compared: list[dict], quality: list[QualityRecord]) -> list[dict]:
    """One row per group and non-hard arm: the primary metric for the original model (where it starts), hard
    and the arm (means over the paired seeds), their mean difference with the interval of its test, p (raw, and
    Holm-adjusted over all rows: the report's primary family), where a floor is known the difference in
    floors, d_z with its interval, and the forget-quality F of hard, of the arm (with its bootstrap interval)
    and of exact retraining (the null) where an audit exists."""
    audits: dict[tuple, dict] = {}
    names: dict[tuple, str] = {}
    for q in quality:
        key = (*q.group, q.targets)
        if key in audits and audits[key].get("F") != q.values.get("F"):
            raise SoftTargetsError(f"forget-quality audits {names[key]} and {q.name} are both arm '{q.targets}' of "
                                   f"{' / '.join(p for p in q.group if p)} with different F: the overview can join "
                                   "one audit per arm; report them from separate folders")
        audits[key], names[key] = q.values, q.name
    rows = []
    for c in compared:
        primary = next((r for r in c["rows"] if r["metric"] == PRIMARY), None)
        if primary is None or not primary["paired"]["n"]:
            continue
        stat = primary["paired"]
        base = c["baseline"]
        hard_fq, arm_fq = audits.get((*c["group"], base), {}), audits.get((*c["group"], c["arm"]), {})
        ci = arm_fq.get("F_ci95") or [None, None]
        rows.append({**_group_fields(c["group"]), "arm": c["arm"], "original": c["original"],
                     "hard": primary[base]["mean"], "other": primary[c["arm"]]["mean"],
                     **({"baseline": base} if base != "hard" else {}),
                     **{k: v for k, v in stat.items() if k in OVERVIEW_FIELDS or k in FLOOR_FIELDS},
                     "F_hard": hard_fq.get("F"), "F_other": arm_fq.get("F"), "F_other_ci_low": ci[0],
                     "F_other_ci_high": ci[1], "F_null": arm_fq.get("null_F", hard_fq.get("null_F")),
                     "fq_n_models": arm_fq.get("n_models", hard_fq.get("n_models"))})
    return rows


def with_baseline(fields: list[str], rows: list[dict]) -> list[str]:
    """fields with 'baseline' after 'arm' where some row's baseline is not hard."""
    if not any("baseline" in r for r in rows):
        return fields
    at = fields.index("arm") + 1
    return fields[:at] + ["baseline"] + fields[at:]


def with_floor(fields: list[str], rows: list[dict]) -> list[str]:
    """fields with the floor columns after the difference's interval where some row has a floor."""
    if not any("floor" in r for r in rows):
        return fields
    at = fields.index("ci_high") + 1
    return fields[:at] + FLOOR_FIELDS + fields[at:]


def _group_fields(group: tuple) -> dict:
    return dict(zip(("dataset", "architecture", "method", "setting"), group))


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(p for p in parts if p)).strip("_")[:120]


def make_figures(report: Report, folder: Path) -> None:
    """Per group: the original tool's distribution plots, and one scatter of every arm against hard per
    metric (one point per seed); for the whole report: the forest plot of the primary comparisons."""
    from softtargets.report.figures import DISTRIBUTION_METRICS, distributions, forest, paired_scatter  # matplotlib

    for group, arms in sorted(by_group(report.records).items()):
        title = " / ".join(p for p in group if p)
        ordered = arm_order(arms)
        values = {m: {arm: [r.unlearned.get(m) for r in arms[arm].values()] for arm in ordered}
                  for m in DISTRIBUTION_METRICS}
        pngs = [distributions(folder / f"{slug(*group)}-distributions.png", title, values)]
        base = baseline(arms)
        if base is not None and len(ordered) > 1:
            pairs: dict[str, dict[str, tuple[list, list]]] = {}
            for arm in ordered[1:]:
                seeds = sorted(set(arms[base]) & set(arms[arm]))
                for metric in HEADLINE:
                    kept = [(x, y) for x, y in ((arms[base][s].unlearned.get(metric),
                                                 arms[arm][s].unlearned.get(metric)) for s in seeds)
                            if x is not None and y is not None]
                    if kept:
                        pairs.setdefault(metric, {})[arm] = ([x for x, _ in kept], [y for _, y in kept])
            if pairs:
                pngs.append(paired_scatter(folder / f"{slug(*group)}-scatter.png",
                                           f"{title}: {base} (x) vs each other arm (y), one point per seed", pairs,
                                           base))
        tuned = tuning_rows_of(report.tuning, list(r for runs in arms.values() for r in runs.values()))
        if tuned:
            pngs.append(pareto_figure(folder / f"{slug(*group)}-pareto.png",
                                      f"{title}\ntuning candidates (means over the tuning seeds), the chosen ringed",
                                      tuned))
        report.figures[group] = pngs
    if report.overview:
        report.forest = forest(folder / "forest.png", report.overview, PRIMARY)


def table_csv(rows: list[dict], fields: list[str]) -> str:
    """summary.csv, paired.csv, overview.csv: a plain table (read it back with read_table)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(clean_json(rows))
    return buffer.getvalue()


TEXT_FIELDS = {"dataset", "architecture", "method", "setting", "arm", "targets", "comparison", "metric", "tested",
               "family", "better", "test", "holm_family", "baseline", "forget", "type"}


def read_table(path: str | Path) -> list[dict]:
    """A table table_csv wrote, as its rows: the text columns as text, every other cell as the number it
    holds, an empty one as None (the inverse of table_csv for finite values)."""
    with open(path, newline="") as f:
        return [{k: v if k in TEXT_FIELDS else (json.loads(v) if v != "" else None) for k, v in row.items()}
                for row in csv.DictReader(f)]


def table_json(report: Report) -> str:
    return json.dumps(clean_json({"runs_dir": str(report.runs_dir), "runs": len(report.records),
                                  "status": dict(report.status_counts()), "failed_cells": report.failures,
                                  "unfinished_folders": [str(p) for p in report.unfinished],
                                  "answers": report.answers, "overview": report.overview,
                                  "summary": report.summary, "paired": report.paired}),
                      indent=2) + "\n"


def build_report(runs_dir: str | Path, out: str | Path | None = None) -> Report:
    """Aggregate runs_dir (a runs folder, or a results folder / runs.csv.xz a report wrote) and write the report
    folder (default runs_dir/report) atomically. The same inputs give byte-identical files: the date shown
    is the latest run's finish time, not the build time."""
    runs_dir = Path(runs_dir)
    records, quality = load_results(runs_dir)
    compared = comparisons(records)
    paired, answers = paired_rows(compared)
    failures = read_failures(runs_dir) if runs_dir.is_dir() else []
    unfinished = find_unfinished(runs_dir) if runs_dir.is_dir() else []
    report = Report(runs_dir, records, summary_rows(records), paired, failures, answers, unfinished, quality,
                    overview_rows(compared, quality))
    report.tuning = mark_edges(tuning_record(runs_dir))
    report.relearn = load_relearn(runs_dir)
    report.relearn_summary = relearn_summary(report.relearn)
    report.arms = [row for group, arms in sorted(by_group(records).items())
                   for row in arm_rows({a: arms[a] for a in arm_order(arms)}, group, report.tuning)]
    adjust_gap_tests(report.arms)
    final = Path(out) if out else runs_dir / "report"
    tmp = work_path(final)
    tmp.mkdir(parents=True)
    try:
        make_figures(report, tmp)
        generated = max(r.finished_at for r in [*records, *quality]) or "unknown"
        write_csv(tmp / RUNS_CSV, [{**r.row, "setting": r.setting} for r in records])
        if quality:
            write_csv(tmp / "forget_quality.csv", [{**q.row, "setting": q.setting} for q in quality])
        (tmp / "summary.csv").write_text(table_csv(report.summary, SUMMARY_FIELDS))
        (tmp / "paired.csv").write_text(table_csv(report.paired, with_floor(PAIRED_FIELDS, report.paired)))
        (tmp / "overview.csv").write_text(table_csv(report.overview, with_baseline(with_floor(OVERVIEW_FIELDS,
                                                                                           report.overview),
                                                                                report.overview)))
        if report.tuning:  # the arms and the tuning record: a tuned sweep's
            (tmp / "arms.csv").write_text(table_csv([{**r, "params": json.dumps(r["params"], sort_keys=True)}
                                                     for r in report.arms], ARM_FIELDS))
            write_csv(tmp / TUNING_CSV, report.tuning)
        if report.relearn:
            write_csv(tmp / RELEARN_CSV, report.relearn)
            (tmp / "relearn_summary.csv").write_text(table_csv(report.relearn_summary, RELEARN_FIELDS))
        (tmp / "report.json").write_text(table_json(report))
        (tmp / "report.md").write_text(to_markdown(report, generated))
        (tmp / "report.html").write_text(to_html(report, generated))
        publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.path = final
    report.figures = {g: [final / p.name for p in pngs] for g, pngs in report.figures.items()}
    report.forest = final / report.forest.name if report.forest else None
    return report


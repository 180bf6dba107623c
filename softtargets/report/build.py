"""`softtargets report RUNS_DIR`: run folders -> statistics per (dataset, architecture, method, setting),
paired hard-vs-other comparisons, figures, report.md and a self-contained report.html.

Statistics: per arm, n, mean, sample std and the mean's 95% t-interval of every metric; per comparison
(report/comparison.py), on the tested quantity (the metric, or its per-seed distance to the reference): the
paired difference over shared seeds with its 95% t-interval, the two-sided Wilcoxon signed-rank p (the
primary metric at alpha 0.05, the secondary family Holm-adjusted), two effect sizes (d_z, matched-pairs
rank-biserial r), and a one-line answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from softtargets.evaluation import clean_json
from softtargets.metrics.headline import HEADLINE
from softtargets.report.aggregate import RunRecord, collect, find_unfinished, read_failures
from softtargets.report.figures import DISTRIBUTION_METRICS, distributions, paired_scatter
from softtargets.report.render import to_html, to_markdown
from softtargets.report.comparison import compare_arms
from softtargets.report.stats import describe
from softtargets.tracking.local import publish, work_path

BASELINE = "hard"
SUMMARY_FIELDS = ["dataset", "architecture", "method", "setting", "targets", "metric", "n", "mean", "std",
                  "ci_low", "ci_high", "reference"]
PAIRED_FIELDS = ["dataset", "architecture", "method", "setting", "comparison", "metric", "tested", "family", "n",
                 "mean_diff", "ci_low", "ci_high", "p_wilcoxon", "p_holm", "effect_dz", "rank_biserial", "better"]


@dataclass
class Report:
    runs_dir: Path
    records: list[RunRecord]
    summary: list[dict]
    paired: list[dict]
    failures: list[dict]
    answers: list[dict] = field(default_factory=list)  # one line per comparison: which arm is closer, p, d_z
    unfinished: list[Path] = field(default_factory=list)  # hidden work folders: runs in progress or killed
    figures: dict[tuple, list[Path]] = field(default_factory=dict)  # group -> PNGs
    path: Path | None = None

    @property
    def groups(self) -> list[tuple]:
        return sorted({r.group for r in self.records})

    def status_counts(self) -> Counter:
        return Counter(r.status for r in self.records)


def by_group(records: list[RunRecord]) -> dict[tuple, dict[str, dict[int, RunRecord]]]:
    """group -> arm -> seed -> record."""
    out: dict[tuple, dict[str, dict[int, RunRecord]]] = {}
    for r in records:
        out.setdefault(r.group, {}).setdefault(r.targets, {})[r.seed] = r
    return out


def arm_order(arms) -> list[str]:
    return sorted(arms, key=lambda a: (a != BASELINE, a))


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


def paired_rows(records: list[RunRecord]) -> tuple[list[dict], list[dict]]:
    """For each group with hard runs: every other arm against hard on the seeds both have
    (report/comparison.py: distances to the reference, one primary metric, Holm over the secondary family).
    Returns the table rows and one answer per comparison."""
    rows, answers = [], []
    for group, arms in sorted(by_group(records).items()):
        if BASELINE not in arms:
            continue
        for arm in arm_order(arms)[1:]:
            seeds = sorted(set(arms[BASELINE]) & set(arms[arm]))
            pairs = [[(arms[a][s].unlearned, arms[a][s].reference) for s in seeds] for a in (BASELINE, arm)]
            comparison = compare_arms(*pairs, (BASELINE, arm))
            name = f"{arm} - {BASELINE}"
            answers.append({**_group_fields(group), "comparison": name, "answer": comparison["answer"],
                            "notes": comparison["notes"], "n": comparison["n"]})
            for row in comparison["rows"]:
                stat = row.get("paired")
                if stat and stat["n"]:
                    rows.append({**_group_fields(group), "comparison": name, "metric": row["metric"],
                                 "tested": row["tested"], "family": row["family"], **stat, "better": row["better"]})
    return rows, answers


def _group_fields(group: tuple) -> dict:
    return dict(zip(("dataset", "architecture", "method", "setting"), group))


def slug(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(p for p in parts if p)).strip("_")[:120]


def make_figures(report: Report, folder: Path) -> None:
    for group, arms in sorted(by_group(report.records).items()):
        title = " / ".join(p for p in group if p)
        ordered = arm_order(arms)
        values = {m: {arm: [r.unlearned.get(m) for r in arms[arm].values()] for arm in ordered}
                  for m in DISTRIBUTION_METRICS}
        pngs = [distributions(folder / f"{slug(*group)}-distributions.png", title, values)]
        for arm in ordered[1:] if BASELINE in arms else []:
            seeds = sorted(set(arms[BASELINE]) & set(arms[arm]))
            pairs = {}
            for metric in HEADLINE:
                xs = [arms[BASELINE][s].unlearned.get(metric) for s in seeds]
                ys = [arms[arm][s].unlearned.get(metric) for s in seeds]
                keep = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None]
                if keep:
                    pairs[metric] = ([x for x, _ in keep], [y for _, y in keep])
            if pairs:
                pngs.append(paired_scatter(folder / f"{slug(*group)}-scatter-{arm}.png",
                                           f"{title}: {BASELINE} (x) vs {arm} (y), one point per seed", pairs,
                                           (BASELINE, arm)))
        report.figures[group] = pngs


def table_csv(rows: list[dict], fields: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(clean_json(rows))
    return buffer.getvalue()


def table_json(report: Report) -> str:
    return json.dumps(clean_json({"runs_dir": str(report.runs_dir), "runs": len(report.records),
                                  "status": dict(report.status_counts()), "failed_cells": report.failures,
                                  "unfinished_folders": [str(p) for p in report.unfinished],
                                  "answers": report.answers, "summary": report.summary, "paired": report.paired}),
                      indent=2) + "\n"


def build_report(runs_dir: str | Path, out: str | Path | None = None) -> Report:
    """Aggregate runs_dir and write the report folder (default runs_dir/report) atomically."""
    runs_dir = Path(runs_dir)
    records = collect(runs_dir)
    paired, answers = paired_rows(records)
    report = Report(runs_dir, records, summary_rows(records), paired, read_failures(runs_dir), answers,
                    find_unfinished(runs_dir))
    final = Path(out) if out else runs_dir / "report"
    tmp = work_path(final)
    tmp.mkdir(parents=True)
    try:
        make_figures(report, tmp)
        generated = time.strftime("%Y-%m-%d %H:%M:%S")
        (tmp / "summary.csv").write_text(table_csv(report.summary, SUMMARY_FIELDS))
        (tmp / "paired.csv").write_text(table_csv(report.paired, PAIRED_FIELDS))
        (tmp / "report.json").write_text(table_json(report))
        (tmp / "report.md").write_text(to_markdown(report, generated))
        (tmp / "report.html").write_text(to_html(report, generated))
        publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.path = final
    report.figures = {g: [final / p.name for p in pngs] for g, pngs in report.figures.items()}
    return report


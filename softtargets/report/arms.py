"""What each arm of a group did, next to the retrained reference: how much of the original's distance it closed,
its accuracies against the reference's, the floor exact retraining leaves, and (for tuned sweeps) its tuning record
with a Pareto figure over the candidates.

fraction closed = 1 - mean JS(arm, reference) / mean JS(original, reference) over the arm's seeds, both on the forget
set: 0 where the arm stayed at the original, 1 at the reference itself. The floor is the mean JS between two exact
retrains (config `floor: true`: the reference and a second retrain with seed + 1): the distance exact retraining
itself leaves. 'floor reached' = (original - arm) / (original - floor), undefined where the original already lies
within the floor (random forgetting on a small dataset: there is nothing to unlearn). It is no lower bound for
unlearning: the original and the reference share their initialisation (the run's seed) and the floor model does
not, so a model unlearned from the original can end closer to the reference than the floor.

The average gap is the metric UGradSL (Di et al., arXiv 2406.07698, after SalUn, Fan et al. ICLR 2024) report:
the mean over UA (1 - forget accuracy), RA (retain accuracy), TA (test accuracy) and MIA-efficacy of |unlearned -
retrained|, in percentage points; here per run against its own reference, then averaged over seeds, and each arm's
paired difference to the baseline arm (hard; masked_pseudo for delete) tested like the report's comparisons
(sign-flip permutation test, Holm-adjusted over every arm of the report: its own family).
"""

from __future__ import annotations

import math
from pathlib import Path

from softtargets.report.stats import describe, paired

ACCURACIES = ("acc_forget", "acc_retain", "acc_test")
MIA = "mia_svc_efficacy"  # SalUn's MIA-efficacy (metrics/mia.py)
JS = "js_forget_to_reference"
BASELINES = ("hard", "masked_pseudo")  # a group's baseline: hard, or where a method refuses hard (delete) its
# hard relabelling onto the original's runner-up class (PRU's switch)
GAP_FIELDS = ["avg_gap", "gap_diff", "gap_ci_low", "gap_ci_high", "gap_p", "gap_p_min", "gap_p_holm"]
ARM_FIELDS = ["dataset", "architecture", "method", "setting", "forget", "arm", "n", "params", "js", "js_ci_low",
              "js_ci_high", "original", "floor", "closed", "floor_reached",
              *[f"{a}{s}" for a in (*ACCURACIES, MIA) for s in ("", "_reference")], *GAP_FIELDS]


def avg_gap(record) -> float | None:
    """One run's average gap to its reference in percentage points: the mean |unlearned - reference| of forget
    accuracy (UA's gap is the same), retain and test accuracy and MIA-efficacy; None where one is missing."""
    gaps = [abs(record.unlearned[m] - record.reference[m]) for m in (*ACCURACIES, MIA)
            if record.unlearned.get(m) is not None and record.reference.get(m) is not None]
    return 100 * sum(gaps) / len(gaps) if len(gaps) == len(ACCURACIES) + 1 else None


def arm_rows(by_arm: dict[str, dict[int, object]], group: tuple, tuning: list[dict]) -> list[dict]:
    """One row per arm of a group (records by arm and seed): its JS to the reference with its interval, the
    original's and the floor's, the fraction closed, its accuracies and the reference's, and its tuned values."""
    rows = []
    dataset, architecture, method, setting = group
    base = next((b for b in BASELINES if b in by_arm), None)
    for arm, seeds in by_arm.items():
        records = list(seeds.values())
        js = describe([r.unlearned.get(JS) for r in records])
        original = _mean([r.original.get(JS) for r in records])
        floor = _mean([r.floor.get(JS) for r in records])
        chosen = chosen_row(tuning, records[0], arm)
        row = {"dataset": dataset, "architecture": architecture, "method": method, "setting": setting,
               "forget": records[0].config.get("data.forget"), "arm": arm,
               "n": js["n"], "params": chosen["params"] if chosen else None, "tuning": chosen, "js": js["mean"],
               "js_ci_low": js["ci_low"], "js_ci_high": js["ci_high"], "original": original, "floor": floor,
               "closed": _ratio(original - js["mean"], original) if original is not None else None,
               "floor_reached": _ratio(original - js["mean"], original - floor)
               if original is not None and floor is not None and original > floor else None}
        for metric in (*ACCURACIES, MIA):
            row[metric] = _mean([r.unlearned.get(metric) for r in records])
            row[f"{metric}_reference"] = _mean([r.reference.get(metric) for r in records])
        row["avg_gap"] = _mean([avg_gap(r) for r in records])
        if base is not None and arm != base:
            common = sorted(set(seeds) & set(by_arm[base]))
            stat = paired([avg_gap(by_arm[base][s]) for s in common], [avg_gap(seeds[s]) for s in common])
            row.update({"gap_diff": stat["mean_diff"], "gap_ci_low": stat["ci_low"], "gap_ci_high": stat["ci_high"],
                        "gap_p": stat["p"], "gap_p_min": stat["p_min"]})
        rows.append(row)
    return rows


def chosen_row(tuning: list[dict], record, arm: str) -> dict | None:
    """An arm's chosen tuning.csv row (the values its evaluation runs used), or None if it was not tuned."""
    for row in tuning:
        if row["chosen"] and row["arm"] == arm and row["dataset"] == record.dataset and \
                row["architecture"] == record.architecture and row["method"] == record.method and \
                row["forget"] == record.config.get("data.forget"):
            return row
    return None


def mark_edges(tuning: list[dict]) -> list[dict]:
    """tuning.csv rows with 'edge' on each chosen row: the tuned keys whose chosen value is the smallest or the
    largest its arm tried (the best value may lie beyond the grid)."""
    def arm_key(row):
        return row["dataset"], row["architecture"], row["method"], row["forget"], row["arm"]

    out = []
    for row in tuning:
        edge = []
        if row["chosen"]:
            tried = [r["params"] for r in tuning if arm_key(r) == arm_key(row)]
            for key, value in row["params"].items():
                values = [p[key] for p in tried if key in p]
                if len(set(values)) > 1 and value in (min(values), max(values)):
                    edge.append(key)
        out.append({**row, "edge": edge})
    return out


def tuning_rows_of(tuning: list[dict], records: list) -> list[dict]:
    """The tuning.csv rows of a group's arms (same dataset, architecture, method and forget spec)."""
    keys = {(r.dataset, r.architecture, r.method, r.config.get("data.forget")) for r in records}
    return [row for row in tuning if (row["dataset"], row["architecture"], row["method"], row["forget"]) in keys]


def pareto_figure(path: Path, title: str, rows: list[dict]) -> Path:
    """Each tuning candidate of each arm as a point: mean test accuracy (x) against mean JS to the reference on the
    forget set (y, lower is closer), over the tuning seeds; the chosen candidate ringed; the reference's test
    accuracy as a vertical line. Candidates that did not complete every tuning seed are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from softtargets.report.figures import arm_colour

    arms = list(dict.fromkeys(r["arm"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm and r["score"] is not None and r["unlearned.acc_test"] is not None]
        if not mine:
            continue
        colour = arm_colour(arm, arms)
        ax.scatter([r["unlearned.acc_test"] for r in mine], [r["score"] for r in mine], color=colour, s=22,
                   alpha=0.8, label=arm)
        for r in mine:
            if r["chosen"]:
                ax.scatter([r["unlearned.acc_test"]], [r["score"]], s=110, facecolors="none", edgecolors=colour,
                           linewidths=1.8)
    reference = _mean([r.get("reference.acc_test") for r in rows])
    if reference is not None:
        ax.axvline(reference, color="grey", ls="--", lw=1, label="reference test accuracy")
    ax.set_xlabel("test accuracy (mean over tuning seeds)")
    ax.set_ylabel("JS to reference on the forget set")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def params_text(params: dict | None) -> str:
    if not params:
        return "–"
    short = {"unlearning.lr": "lr", "targets.smoothing": "a", "targets.temperature": "T"}
    return ", ".join(f"{short.get(k, k)} {v:g}" if isinstance(v, float) else f"{short.get(k, k)} {v}"
                     for k, v in sorted(params.items()))


def _mean(values) -> float | None:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return sum(finite) / len(finite) if finite else None


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def adjust_gap_tests(rows: list[dict]) -> None:
    """Holm-adjust the average-gap comparisons of every arm row given (one family), in place."""
    from softtargets.report.stats import holm

    tested = [r for r in rows if r.get("gap_p") is not None]
    for r, p in zip(tested, holm([r["gap_p"] for r in tested])):
        r["gap_p_holm"] = p

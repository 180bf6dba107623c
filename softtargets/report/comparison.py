"""Paired comparisons of two target kinds on the same seeds, answering "which is closer to the reference?".

Shared by `compare` (one method, two kinds) and `report` (every group of a sweep). For each headline metric
the tested quantity is the metric itself or, where the ideal is the retrained reference's value, the per-seed
distance |m - m_reference| (metrics/headline.py). The primary metric is tested at alpha without correction;
the secondary family is Holm-adjusted; "info" rows are described, never tested. When the number of paired
seeds cannot reach alpha at all (the smallest two-sided exact Wilcoxon p with n pairs is 2 / 2^n), the
comparison says so instead of reporting a meaningless p.
"""

from __future__ import annotations

import math

from softtargets.metrics.headline import ALPHA, HEADLINE, PRIMARY, family, compared_better, compared_label, compared_value
from softtargets.report.stats import describe, holm, paired, rank_biserial


def smallest_p(n: int) -> float:
    """The smallest two-sided p the exact Wilcoxon signed-rank test can give with n non-zero pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


def seeds_needed(family_size: int = 1, alpha: float = ALPHA) -> int:
    """The fewest paired seeds whose smallest Wilcoxon p, times the Holm factor of a family, is <= alpha."""
    n = 1
    while smallest_p(n) * max(1, family_size) > alpha:
        n += 1
    return n


def compare_arms(base: list[tuple[dict, dict]], other: list[tuple[dict, dict]], names: tuple[str, str]) -> dict:
    """base and other: per seed, in the same seed order, (unlearned metrics, reference metrics). Returns
    {"rows": [...], "answer": str, "notes": [str], "n": paired seeds}; rows follow HEADLINE's order."""
    rows = []
    for metric, (label, _) in HEADLINE.items():
        a = [compared_value(metric, u, r) for u, r in base]
        b = [compared_value(metric, u, r) for u, r in other]
        if all(v is None for v in a + b):
            continue
        raw = {name: describe([u.get(metric) for u, _ in runs]) for name, runs in zip(names, (base, other))}
        row = {"metric": metric, "label": label, "tested": compared_label(metric), "family": family(metric),
               "better": compared_better(metric), "reference": describe([r.get(metric) for _, r in base])["mean"],
               names[0]: describe(a), names[1]: describe(b), "raw": raw}
        if row["family"] != "info":
            stat = paired(a, b)
            diffs = [y - x for x, y in zip(a, b) if x is not None and y is not None]
            row["paired"] = {**stat, "rank_biserial": rank_biserial(diffs), "p_holm": math.nan}
        rows.append(row)
    secondary = [r for r in rows if r["family"] == "secondary"]
    for row, p in zip(secondary, holm([r["paired"]["p_wilcoxon"] for r in secondary])):
        row["paired"]["p_holm"] = p
    primary = next((r for r in rows if r["family"] == "primary"), None)
    return {"rows": rows, "n": primary["paired"]["n"] if primary else 0,
            "answer": answer(primary, names), "notes": notes(primary, len(secondary))}


def answer(primary: dict | None, names: tuple[str, str]) -> str:
    """One line: which kind is closer to the reference on the primary metric, with p and the effect size."""
    base, other = names
    if primary is None:
        return f"no {PRIMARY} values: the primary comparison could not be made"
    s = primary["paired"]
    if s["n"] == 0:
        return f"{PRIMARY}: no seed has both a {base} and an {other} value"
    if math.isnan(s["p_wilcoxon"]) and s["mean_diff"] == 0:
        return f"{other} and {base} give the same {primary['tested']} on every one of the {s['n']} seeds"
    stats = (f"{other} - {base} = {fmt(s['mean_diff'])} [95% CI {fmt(s['ci_low'])}, {fmt(s['ci_high'])}], "
             f"Wilcoxon p = {fmt_p(s['p_wilcoxon'])}, d_z = {fmt(s['effect_dz'], 2)}, n = {s['n']} seeds")
    closer = (s["mean_diff"] < 0) == (primary["better"] == "lower")
    winner, loser = (other, base) if closer else (base, other)
    if s["p_wilcoxon"] < ALPHA:
        return f"{winner} is closer to the reference than {loser} on {PRIMARY}: {stats}"
    return f"no significant difference between {other} and {base} on {PRIMARY} (alpha {ALPHA:g}): {stats}"


def notes(primary: dict | None, secondary_size: int) -> list[str]:
    """What the seed count cannot show, said up front."""
    n = primary["paired"]["n"] if primary else 0
    out = []
    if n and smallest_p(n) > ALPHA:
        out.append(f"with {n} paired seeds the smallest possible Wilcoxon p is {fmt_p(smallest_p(n))} > {ALPHA:g}: "
                   f"the primary test cannot reach significance; use at least {seeds_needed()} seeds")
    if n and secondary_size and smallest_p(n) * secondary_size > ALPHA:
        out.append(f"with {n} paired seeds no secondary metric can pass Holm's correction over {secondary_size} "
                   f"metrics; that needs at least {seeds_needed(secondary_size)} seeds")
    return out


def fmt(x: float | None, digits: int = 4) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    return "–" if p is None or math.isnan(p) else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def mean_pm(stat: dict, digits: int = 4) -> str:
    """'mean ± half-width' of a 95% interval (compact, for the terminal)."""
    centre = stat.get("mean", stat.get("mean_diff"))
    if stat["ci_low"] is None or math.isnan(stat["ci_low"]):
        return fmt(centre, digits)
    return f"{fmt(centre, digits)} ± {fmt((stat['ci_high'] - stat['ci_low']) / 2, digits)}"


def mean_ci_text(stat: dict, digits: int = 4) -> str:
    """'mean [low, high]' (for files)."""
    centre = stat.get("mean", stat.get("mean_diff"))
    return f"{fmt(centre, digits)} [{fmt(stat['ci_low'], digits)}, {fmt(stat['ci_high'], digits)}]"


def headers(names: tuple[str, str], compact: bool = False) -> list[str]:
    base, other = names
    ci = "± 95%" if compact else "[95% CI]"
    return ["tested", "family", "reference", f"{base} {ci}", f"{other} {ci}", f"{other} - {base} {ci}",
            "Wilcoxon p", "Holm p", "d_z", "better"]


def cells(comparison: dict, names: tuple[str, str], compact: bool = False) -> list[list[str]]:
    """Table cells of compare_arms()'s rows, shared by the terminal (compact) and the files."""
    base, other = names
    show = mean_pm if compact else mean_ci_text
    out = []
    for row in comparison["rows"]:
        s = row.get("paired")
        out.append([row["tested"], row["family"], fmt(row["reference"]), show(row[base]), show(row[other]),
                    show(s) if s else "–", fmt_p(s["p_wilcoxon"]) if s else "–",
                    fmt_p(s["p_holm"]) if s else "–", fmt(s["effect_dz"], 2) if s else "–", row["better"]])
    return out


METHOD_TEXT = (
    "Each seed's two runs share its original model and its retrained reference. 'tested' is what the paired test "
    "compares: the metric itself, or |metric - ref|, its per-seed distance to that seed's reference where the "
    "ideal is the reference's value (the 'reference' column gives the reference's mean value of the metric). "
    f"The primary metric ({PRIMARY}) is tested with the two-sided Wilcoxon signed-rank test at alpha {ALPHA:g}; "
    "the secondary family is Holm-adjusted; d_z = mean(diff) / sd(diff). Means with 95% t-intervals."
)

"""Paired comparisons of two target kinds on the same seeds, answering "which is closer to the reference?".

Shared by `compare` (one method, two kinds) and `report` (every group of a sweep). For each headline metric
the tested quantity is the metric itself or, where the ideal is the retrained reference's value, the per-seed
distance |m - m_reference| (metrics/headline.py). Each is tested with the two-sided sign-flip permutation test
of the mean paired difference (report/stats.py); its size is that mean difference with the interval inverting
the same test; d_z is descriptive. "info" rows are described, never tested.

Multiplicity families, each Holm-adjusted (p_holm, named in holm_family):
- `compare`: the primary metric is one test at alpha (its adjusted p is its p); the secondary metrics are one
  family within the comparison.
- `report`: every primary comparison of the report is one family (the overview), every secondary test of the
  report another (report/build.py re-adjusts with report_families()).
Every "X is closer" sentence uses the adjusted p of its family. When the paired seeds cannot reach alpha at
all (the smallest p with k differing pairs is 2 / 2^k), the comparison says so.
"""

from __future__ import annotations

import math

from softtargets.metrics.headline import ALPHA, HEADLINE, PRIMARY, family, compared_better, compared_label, compared_value
from softtargets.report.stats import MC_DRAWS, MC_SEED, at_min, describe, holm, paired


def count(n: int, noun: str) -> str:
    """'1 secondary test', '9 secondary tests'."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def smallest_p(nonzero: int) -> float:
    """The smallest two-sided p the exact sign-flip test can give with `nonzero` differing pairs: 2 / 2^k (pairs
    with a zero difference add nothing)."""
    return min(1.0, 2.0 / 2**nonzero) if nonzero > 0 else 1.0


def seeds_needed(family_size: int = 1, alpha: float = ALPHA) -> int:
    """The fewest differing pairs whose smallest p, times the Holm factor of a family, is <= alpha."""
    n = 1
    while smallest_p(n) * max(1, family_size) > alpha:
        n += 1
    return n


def compare_arms(base: list[tuple[dict, dict]], other: list[tuple[dict, dict]], names: tuple[str, str],
                 floor: list[float | None] | None = None) -> dict:
    """base and other: per seed, in the same seed order, (unlearned metrics, reference metrics). floor: per
    seed, the primary metric between two exact retrains (the distance retraining itself leaves), where known.
    Returns {"rows": [...], "names": names, "answer": str, "notes": [str], "n": paired seeds, "floor": mean floor
    or None}, rows in HEADLINE's order, adjusted in `compare`'s families (the primary test alone; the secondary
    metrics together)."""
    rows = []
    floor_mean = describe([f for f in floor or [] if f is not None])["mean"] if floor else math.nan
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
            row["paired"] = {**paired(a, b), "p_holm": math.nan, "holm_family": ""}
            if metric == PRIMARY and math.isfinite(floor_mean) and floor_mean > 0:
                row["paired"].update(relative_to_floor(row["paired"], floor_mean))
        rows.append(row)
    primary = next((r for r in rows if r["family"] == "primary"), None)
    secondary = [r for r in rows if r["family"] == "secondary"]
    adjust([r["paired"] for r in rows if r["family"] == "primary"], lambda m: "the primary test alone: adjusted p = p")
    adjust([r["paired"] for r in secondary], lambda m: f"Holm over this comparison's {count(m, 'secondary test')}")
    return {"rows": rows, "names": names, "n": primary["paired"]["n"] if primary else 0,
            "floor": floor_mean if math.isfinite(floor_mean) else None, "answer": answer(primary, names),
            "notes": notes(primary, len(secondary))}


def relative_to_floor(stat: dict, floor_mean: float) -> dict:
    """The mean difference and its interval in units of the mean floor (the distance exact retraining leaves)."""
    return {"floor": floor_mean, "diff_floor": stat["mean_diff"] / floor_mean,
            "diff_floor_ci_low": stat["ci_low"] / floor_mean, "diff_floor_ci_high": stat["ci_high"] / floor_mean}


def adjust(stats: list[dict], family_name) -> None:
    """Holm-adjust the p of paired() results that form one family, in place: p_holm, and holm_family =
    family_name(m) with m the tests that have a p (a comparison without pairs has none and does not count)."""
    size = sum(1 for s in stats if not math.isnan(s["p"]))
    for stat, adjusted in zip(stats, holm([s["p"] for s in stats])):
        stat["p_holm"], stat["holm_family"] = adjusted, family_name(size)


def report_families(comparisons: list[dict]) -> None:
    """`report`'s families, in place: Holm over every primary comparison of the report, and over every
    secondary test of the report; then each comparison's answer and notes again, with those adjusted p."""
    primary = [r for c in comparisons for r in c["rows"] if r["family"] == "primary"]
    secondary = [r for c in comparisons for r in c["rows"] if r["family"] == "secondary"]
    adjust([r["paired"] for r in primary], lambda m: f"Holm over the report's {count(m, 'primary comparison')}")
    adjust([r["paired"] for r in secondary], lambda m: f"Holm over the report's {count(m, 'secondary test')}")
    for comparison in comparisons:
        first = next((r for r in comparison["rows"] if r["family"] == "primary"), None)
        comparison["answer"] = answer(first, comparison["names"])
        comparison["notes"] = notes(first, None)


def answer(primary: dict | None, names: tuple[str, str]) -> str:
    """One line: which kind is closer to the reference on the primary metric, by the adjusted p of its family,
    with the mean difference, its interval, p and d_z."""
    base, other = names
    if primary is None:
        return f"no {PRIMARY} values: the primary comparison could not be made"
    s = primary["paired"]
    if s["n"] == 0:
        return f"{PRIMARY}: no seed has both a {base} and an {other} value"
    if s["n_nonzero"] == 0:
        return f"{other} and {base} give the same {primary['tested']} on every one of the {s['n']} seeds"
    closer = (s["mean_diff"] < 0) == (primary["better"] == "lower")
    winner, loser = (other, base) if closer else (base, other)
    if s["p_holm"] < ALPHA:
        return f"{winner} is closer to the reference than {loser} on {PRIMARY}: {stat_text(s, names)}"
    return (f"no significant difference between {other} and {base} on {PRIMARY} (adjusted p >= {ALPHA:g}): "
            f"{stat_text(s, names)}")


def families_line(comparison: dict) -> str:
    """Which family each row's Holm p belongs to: 'Holm p: primary: ...; secondary: ...'."""
    named = {}
    for row in comparison["rows"]:
        if "paired" in row:
            named.setdefault(row["family"], row["paired"]["holm_family"])
    return "Holm p: " + "; ".join(f"{family}: {name}" for family, name in named.items())


def stat_text(s: dict, names: tuple[str, str]) -> str:
    """'other - base = mean [95% CI low, high] (x floor), p = .. (test), adjusted p = .. (family), d_z = .., n'."""
    base, other = names
    text = f"{other} - {base} = {fmt_diff(s['mean_diff'], s['ci_low'], s['ci_high'])}"
    if "diff_floor" in s:
        text += (f" = {fmt_ratio(s['diff_floor'])} [{fmt_ratio(s['diff_floor_ci_low'])}, "
                 f"{fmt_ratio(s['diff_floor_ci_high'])}] x the retrain-vs-retrain floor ({fmt(s['floor'])})")
    text += f", p = {fmt_p(s['p'])} ({s['test']}"
    text += f"; at the smallest p {min_reason(s)} allow)" if at_min(s) else ")"
    text += f", adjusted p = {fmt_p(s['p_holm'])} ({s['holm_family']})"
    dz = f"{fmt(s['effect_dz'], 2)} [{fmt(s['dz_ci_low'], 2)}, {fmt(s['dz_ci_high'], 2)}]"
    return text + f", d_z = {dz}, n = {s['n']} seeds"


def min_reason(s: dict) -> str:
    """What sets the smallest p of a row at it: its differing pairs (exact) or the Monte Carlo draws."""
    return f"{s['n_nonzero']} differing pairs" if "exact" in s["test"] else f"{MC_DRAWS} draws"


def notes(primary: dict | None, secondary_size: int | None) -> list[str]:
    """What the seeds cannot show, said up front: the primary test when even its smallest p (2 / 2^k with k
    differing pairs) exceeds alpha; and, for a secondary family within the comparison (secondary_size tests on
    the same n seeds), when Holm's first step (p <= alpha / size) is out of reach of 2 / 2^n. A report's families
    span comparisons of other seed counts: no secondary note there (secondary_size None)."""
    n = primary["paired"]["n"] if primary else 0
    k = primary["paired"]["n_nonzero"] if primary else 0
    out = []
    if k and smallest_p(k) > ALPHA:
        out.append(f"with {k} differing paired seeds the smallest possible p is {fmt_p(smallest_p(k))} > {ALPHA:g}: "
                   f"the primary test cannot reach significance; use at least {seeds_needed()} seeds")
    if n and secondary_size and smallest_p(n) * secondary_size > ALPHA:
        out.append(f"with {n} paired seeds no secondary metric can pass Holm's correction over "
                   f"{count(secondary_size, 'test')}; that needs at least {seeds_needed(secondary_size)} seeds")
    return out


class Bold(str):
    """A table cell shown in bold (markdown **x**, HTML <strong>)."""


def md_table(head: list[str], rows: list[list[str]]) -> str:
    """A markdown table. A '|' inside a cell (the |metric - ref| distances) is escaped, so it stays in its column."""
    def cell(c: str) -> str:
        text = str(c).replace("|", "\\|")
        return f"**{text}**" if isinstance(c, Bold) else text

    out = ["| " + " | ".join(map(cell, head)) + " |", "|" + "---|" * len(head)]
    return "\n".join(out + ["| " + " | ".join(map(cell, cells)) + " |" for cells in rows])


def fmt(x: float | None, digits: int = 4) -> str:
    """x to `digits` decimals; '–' for a missing value; no sign on a value that rounds to zero."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text


def fmt_p(p: float | None) -> str:
    return "–" if p is None or math.isnan(p) else (f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}")


def fmt_p_min(stat: dict) -> str:
    """A p with '(min)' where the row sits at the smallest p its test can give."""
    return fmt_p(stat["p"]) + (" (min)" if at_min(stat) else "")


def fmt_ratio(x: float | None) -> str:
    return fmt(x, 2)


def fmt_diff(mean: float | None, low: float | None = None, high: float | None = None) -> str:
    """'mean [low, high]' on one scale: 4 decimals, or 2 significant digits in e-notation where the largest
    of them is below 0.001 (a JS difference of 3.6e-05 is not 0.0000)."""
    values = [v for v in (mean, low, high) if v is not None and math.isfinite(v)]
    scientific = bool(values) and max(abs(v) for v in values) < 1e-3 and any(v != 0 for v in values)

    def one(x):
        if x is None or not isinstance(x, (int, float)) or math.isnan(x) or math.isinf(x) or not scientific:
            return fmt(x)
        return f"{x:.1e}"

    return one(mean) if low is None and high is None else f"{one(mean)} [{one(low)}, {one(high)}]"


def mean_pm(stat: dict, digits: int = 4) -> str:
    """'mean ± half-width' of a symmetric 95% t-interval (compact, for the terminal)."""
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
    return ["tested", "family", "reference", f"{base} {ci}", f"{other} {ci}", f"{other} - {base} [95% CI]", "p",
            "Holm p", "d_z", "better"]


def cells(comparison: dict, names: tuple[str, str], compact: bool = False) -> list[list[str]]:
    """Table cells of compare_arms()'s rows, shared by the terminal (compact) and the files."""
    base, other = names
    show = mean_pm if compact else mean_ci_text
    out = []
    for row in comparison["rows"]:
        s = row.get("paired")
        out.append([row["tested"], row["family"], fmt(row["reference"]), show(row[base]), show(row[other]),
                    fmt_diff(s["mean_diff"], s["ci_low"], s["ci_high"]) if s else "–", fmt_p_min(s) if s else "–",
                    fmt_p(s["p_holm"]) if s else "–", fmt(s["effect_dz"], 2) if s else "–", row["better"]])
    return out


TEST_TEXT = (
    "Each seed's two runs share its original model and its retrained reference. 'tested' is what the paired test "
    "compares: the metric itself, or |metric - ref|, its per-seed distance to that seed's reference where the "
    "ideal is the reference's value (the 'reference' column gives the reference's mean value of the metric). "
    "The test is the two-sided sign-flip permutation test of the mean paired difference (statistic |mean(diff)|; "
    "a zero difference is the same under either sign): exact over all 2^k sign patterns of the k differing pairs "
    f"up to k = 20, otherwise {MC_DRAWS} Monte Carlo draws of seed {MC_SEED}, p = (1 + #as extreme) / (1 + draws). "
    "The difference's 95% interval inverts the same test (every shift whose test is not rejected at 0.05, on "
    "the same sign patterns), so p < 0.05 exactly when it excludes 0. '(min)': p is the smallest its test "
    "can give (2 / 2^k exact, 1 / (1 + draws) Monte Carlo), so p cannot rank such rows. "
    f"A kind is called closer only where the Holm-adjusted p of its family is < {ALPHA:g}. d_z = mean(diff) / "
    "sd(diff) is descriptive. Arms' means with 95% t-intervals."
)
COMPARE_FAMILIES = (
    f"Families: the primary metric ({PRIMARY}) is one test at alpha {ALPHA:g}, so its adjusted p is its p; the "
    "secondary metrics are one Holm family within this comparison."
)
METHOD_TEXT = TEST_TEXT + " " + COMPARE_FAMILIES

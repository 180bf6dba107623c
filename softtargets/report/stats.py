"""Statistics for paired hard-vs-soft comparisons (scipy underneath)."""

from __future__ import annotations

import math

import numpy as np


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t-interval; (mean, nan, nan) for fewer than 2 finite values."""
    from scipy import stats  # imported on first use: `report` starts without it

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(v)
    if sem == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(confidence, len(v) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


def wilcoxon_p(differences) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences; nan when all are zero or n < 2."""
    from scipy import stats  # imported on first use: `report` starts without it

    d = np.asarray([x for x in differences if x is not None and math.isfinite(x)], dtype=float)
    if len(d) < 2 or np.all(d == 0):
        return math.nan
    return float(stats.wilcoxon(d).pvalue)


def paired(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of b against a (same seeds, same order): mean difference b - a with CI,
    Wilcoxon signed-rank p, and the effect size d_z = mean(diff) / sd(diff) with its exact interval.
    Pairs with a missing side drop."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    diff = [y - x for x, y in pairs]
    mean, lo, hi = mean_ci(diff, confidence)
    sd = float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan
    dz = mean / sd if sd and math.isfinite(sd) and sd > 0 else math.nan
    dz_low, dz_high = dz_interval(dz, len(diff), confidence)
    return {"n": len(diff), "mean_diff": mean, "ci_low": lo, "ci_high": hi, "p_wilcoxon": wilcoxon_p(diff),
            "effect_dz": dz, "dz_ci_low": dz_low, "dz_ci_high": dz_high}


def dz_interval(dz: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact confidence interval of the paired effect size d_z from n pairs: t = d_z * sqrt(n) follows a
    noncentral t with n - 1 degrees of freedom and noncentrality delta * sqrt(n); the interval inverts its cdf
    (Steiger & Fouladi 1997; Cumming & Finch 2001). (nan, nan) when d_z is undefined or n < 2."""
    if n < 2 or not math.isfinite(dz):
        return math.nan, math.nan
    from scipy import stats
    from scipy.optimize import brentq

    t, df, root_n = dz * math.sqrt(n), n - 1, math.sqrt(n)
    tail = (1 - confidence) / 2

    spread = 6 * math.sqrt(1 + t * t / (2 * df))  # far beyond the 0.1% / 99.9% quantiles of the noncentrality

    def cdf(ncp: float) -> float:  # scipy's nct.cdf is nan deep in its tails, where it is 0 (ncp >> t) or 1
        value = stats.nct.cdf(t, df, ncp)
        return value if math.isfinite(value) else float(ncp < t)

    def ncp_at(probability: float) -> float:  # the noncentrality whose cdf at t equals probability
        return brentq(lambda ncp: cdf(ncp) - probability, t - spread, t + spread, xtol=1e-10)

    return ncp_at(1 - tail) / root_n, ncp_at(tail) / root_n


def describe(values, confidence: float = 0.95) -> dict:
    """n, mean, sample standard deviation (ddof=1) and the mean's two-sided t-interval of the finite values."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    mean, lo, hi = mean_ci(v, confidence)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return {"n": len(v), "mean": mean, "std": std, "ci_low": lo, "ci_high": hi}


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979), in the input order; nan entries stay nan and
    do not count towards the family size. p_(i) sorted ascending -> max_{j<=i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(pvalues, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(len(p), math.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def rank_biserial(differences) -> float:
    """Matched-pairs rank-biserial correlation (Kerby 2014), the Wilcoxon test's effect size:
    (R+ - R-) / (R+ + R-) with R+/R- the rank sums of the positive/negative differences (ranks of |d| over
    non-zero d, ties averaged). +1: every pair moved up; -1: every pair moved down; nan without non-zero d."""
    from scipy import stats  # imported on first use: `report` starts without it

    d = np.asarray([x for x in differences if x is not None and math.isfinite(x) and x != 0], dtype=float)
    if len(d) == 0:
        return math.nan
    ranks = stats.rankdata(np.abs(d))
    plus, minus = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((plus - minus) / (plus + minus))

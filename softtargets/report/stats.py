"""Statistics for paired hard-vs-soft comparisons (scipy underneath)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t-interval; (mean, nan, nan) for fewer than 2 finite values."""
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
    d = np.asarray([x for x in differences if x is not None and math.isfinite(x)], dtype=float)
    if len(d) < 2 or np.all(d == 0):
        return math.nan
    return float(stats.wilcoxon(d).pvalue)


def paired(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of b against a (same seeds, same order): mean difference b - a with CI,
    Wilcoxon signed-rank p, and the effect size d_z = mean(diff) / sd(diff). Pairs with a missing side drop."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    diff = [y - x for x, y in pairs]
    mean, lo, hi = mean_ci(diff, confidence)
    sd = float(np.std(diff, ddof=1)) if len(diff) > 1 else math.nan
    return {"n": len(diff), "mean_diff": mean, "ci_low": lo, "ci_high": hi, "p_wilcoxon": wilcoxon_p(diff),
            "effect_dz": mean / sd if sd and math.isfinite(sd) and sd > 0 else math.nan}

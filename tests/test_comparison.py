"""Paired comparisons answer "closer to the reference?": distances, one primary metric, Holm over the rest."""

import math

import numpy as np
import pytest
from scipy import stats

from softtargets.metrics.headline import PRIMARY, compared_value
from softtargets.report.comparison import compare_arms, seeds_needed, smallest_p

# per seed: the reference's forget accuracy, and two arms. soft's MEAN (0.94) equals the reference's mean, hard's
# (0.92) does not, yet on every seed soft is 0.06 from its own reference and hard only 0.02: soft is farther.
REF = [0.90, 0.98, 0.90, 0.98, 0.90, 0.98, 0.90, 0.98, 0.90, 0.98]
HARD = [0.88, 0.96, 0.88, 0.96, 0.88, 0.96, 0.88, 0.96, 0.88, 0.96]
SOFT = [0.96, 0.92, 0.96, 0.92, 0.96, 0.92, 0.96, 0.92, 0.96, 0.92]
JS_HARD = [0.010, 0.012, 0.011, 0.015, 0.009, 0.013, 0.014, 0.010, 0.012, 0.011]
JS_SOFT = [0.007, 0.008, 0.010, 0.009, 0.006, 0.011, 0.010, 0.008, 0.009, 0.010]


def arm(acc, js, change):
    return [({"acc_forget": a, PRIMARY: j, "param_change": c}, {"acc_forget": r, PRIMARY: 0.0})
            for a, j, c, r in zip(acc, js, change, REF)]


def test_reference_metrics_are_compared_on_per_seed_distances():
    result = compare_arms(arm(HARD, JS_HARD, [0.1] * 10), arm(SOFT, JS_SOFT, [0.2] * 10), ("hard", "soft"))
    rows = {r["metric"]: r for r in result["rows"]}
    acc = rows["acc_forget"]
    assert acc["tested"] == "|acc_forget - ref|" and acc["better"] == "lower" and acc["family"] == "secondary"
    # raw means: soft sits exactly at the reference's mean, hard does not ...
    assert acc["raw"]["soft"]["mean"] == pytest.approx(acc["reference"]) == pytest.approx(0.94)
    assert acc["raw"]["hard"]["mean"] == pytest.approx(0.92)
    # ... but the tested per-seed distance is 0.06 for soft and 0.02 for hard on every seed
    assert acc["hard"]["mean"] == pytest.approx(0.02) and acc["soft"]["mean"] == pytest.approx(0.06)
    assert acc["paired"]["mean_diff"] == pytest.approx(0.04)
    # identical differences on every seed: the Wilcoxon p is the exact 2 / 2^10 only without ties in |d|; here all
    # |d| tie, scipy falls back to the normal approximation, still clearly significant
    assert acc["paired"]["p_wilcoxon"] < 0.01


def test_primary_metric_answer_effect_size_and_holm():
    result = compare_arms(arm(HARD, JS_HARD, [0.1] * 10), arm(SOFT, JS_SOFT, [0.2] * 10), ("hard", "soft"))
    rows = {r["metric"]: r for r in result["rows"]}
    primary = rows[PRIMARY]
    d = np.array(JS_SOFT) - np.array(JS_HARD)
    assert primary["family"] == "primary" and primary["tested"] == PRIMARY  # JS to the reference is already a distance
    assert primary["paired"]["p_wilcoxon"] == pytest.approx(stats.wilcoxon(d).pvalue)
    assert primary["paired"]["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert math.isnan(primary["paired"]["p_holm"])  # the primary metric is not corrected
    # the secondary family here is acc_forget alone: Holm over one metric leaves its p unchanged
    assert rows["acc_forget"]["paired"]["p_holm"] == pytest.approx(rows["acc_forget"]["paired"]["p_wilcoxon"])
    assert "paired" not in rows["param_change"] and rows["param_change"]["family"] == "info"
    assert result["answer"].startswith(f"soft is closer to the reference than hard on {PRIMARY}: soft - hard = ")
    assert f"d_z = {d.mean() / d.std(ddof=1):.2f}" in result["answer"] and "n = 10 seeds" in result["answer"]
    assert result["notes"] == []


def test_too_few_seeds_are_said_up_front():
    assert smallest_p(5) == pytest.approx(0.0625) and smallest_p(6) == pytest.approx(0.03125)
    assert seeds_needed() == 6 and seeds_needed(11) == 9  # Holm over 11 metrics: 11 * 2 / 2^9 = 0.043
    few = compare_arms(arm(HARD, JS_HARD, [0.1] * 10)[:5], arm(SOFT, JS_SOFT, [0.2] * 10)[:5], ("hard", "soft"))
    assert few["n"] == 5
    assert few["answer"].startswith(f"no significant difference between soft and hard on {PRIMARY}")
    assert "smallest possible Wilcoxon p is 0.062 > 0.05" in few["notes"][0]


def test_identical_arms_are_reported_as_identical():
    same = arm(HARD, JS_HARD, [0.1] * 10)
    result = compare_arms(same, same, ("hard", "soft"))
    assert result["answer"] == f"soft and hard give the same {PRIMARY} on every one of the 10 seeds"


def test_compared_value_of_a_missing_metric_or_reference_is_none():
    assert compared_value("acc_forget", {"acc_forget": 0.5}, {}) is None
    assert compared_value("acc_forget", {}, {"acc_forget": 0.5}) is None
    assert compared_value("acc_forget", {"acc_forget": 0.5}, {"acc_forget": 0.75}) == 0.25
    assert compared_value("acc_test", {"acc_test": 0.5}, {"acc_test": 0.75}) == 0.5

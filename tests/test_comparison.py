"""Paired comparisons answer "closer to the reference?": distances, one primary metric, Holm over the rest."""

import itertools

import numpy as np
import pytest

from softtargets.metrics.headline import PRIMARY, compared_value
from softtargets.report.comparison import compare_arms, families_line, seeds_needed, smallest_p
from softtargets.report.stats import holm

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
    # the same difference on every seed: all |d| tie, and the exact sign-flip p is 2 / 2^10 (only the all-plus
    # and all-minus patterns are as extreme), the smallest 10 pairs allow
    assert acc["paired"]["p"] == 2 / 2**10 == acc["paired"]["p_min"]


def by_hand_p(d) -> float:
    """Two-sided sign-flip p by enumerating every sign pattern."""
    observed = abs(sum(d))
    patterns = list(itertools.product((1, -1), repeat=len(d)))
    extreme = sum(abs(sum(s * x for s, x in zip(signs, d))) >= observed * (1 - 1e-12) for signs in patterns)
    return extreme / len(patterns)


def test_primary_metric_answer_effect_size_and_families():
    result = compare_arms(arm(HARD, JS_HARD, [0.1] * 10), arm(SOFT, JS_SOFT, [0.2] * 10), ("hard", "soft"))
    rows = {r["metric"]: r for r in result["rows"]}
    primary = rows[PRIMARY]
    d = np.array(JS_SOFT) - np.array(JS_HARD)
    assert primary["family"] == "primary" and primary["tested"] == PRIMARY  # JS to the reference is already a distance
    assert primary["paired"]["p"] == pytest.approx(by_hand_p(d)) and primary["paired"]["p"] < 0.05
    assert primary["paired"]["test"] == "sign-flip permutation (exact)"
    assert primary["paired"]["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    # compare's primary metric is one test: its adjusted p is its p, and the family says so
    assert primary["paired"]["p_holm"] == primary["paired"]["p"]
    assert primary["paired"]["holm_family"] == "the primary test alone: adjusted p = p"
    # the secondary family here is acc_forget alone: Holm over one test leaves its p unchanged
    assert rows["acc_forget"]["paired"]["p_holm"] == pytest.approx(rows["acc_forget"]["paired"]["p"])
    assert rows["acc_forget"]["paired"]["holm_family"] == "Holm over this comparison's 1 secondary test"
    assert "paired" not in rows["param_change"] and rows["param_change"]["family"] == "info"
    assert result["answer"].startswith(f"soft is closer to the reference than hard on {PRIMARY}: soft - hard = ")
    # every seed's soft is below its hard: p = 2 / 2^10, the smallest 10 pairs allow, and the answer says so
    assert primary["paired"]["p"] == 2 / 2**10
    assert ("p = 0.002 (sign-flip permutation (exact); at the smallest p 10 differing pairs allow)"
            in result["answer"])
    assert "adjusted p = " in result["answer"] and "(the primary test alone: adjusted p = p)" in result["answer"]
    assert f"d_z = {d.mean() / d.std(ddof=1):.2f}" in result["answer"] and "n = 10 seeds" in result["answer"]
    assert result["notes"] == [] and result["floor"] is None and "diff_floor" not in primary["paired"]
    assert families_line(result) == ("Holm p: primary: the primary test alone: adjusted p = p; "
                                     "secondary: Holm over this comparison's 1 secondary test")


def test_secondary_metrics_are_one_holm_family_within_the_comparison():
    more = ["acc_retain", "acc_test", "l2_to_reference"]
    rng = np.random.default_rng(0)

    def with_more(runs, shift):
        return [({**u, **{m: 0.5 + shift * (i % 3) + rng.normal(0, 0.01) for m in more}}, r)
                for i, (u, r) in enumerate(runs)]

    result = compare_arms(with_more(arm(HARD, JS_HARD, [0.1] * 10), 0.0),
                          with_more(arm(SOFT, JS_SOFT, [0.2] * 10), 0.01), ("hard", "soft"))
    secondary = [r["paired"] for r in result["rows"] if r["family"] == "secondary"]
    assert len(secondary) == 4
    assert [s["p_holm"] for s in secondary] == pytest.approx(holm([s["p"] for s in secondary]))
    assert {s["holm_family"] for s in secondary} == {"Holm over this comparison's 4 secondary tests"}


def test_the_floor_scales_the_difference_where_known():
    floor = [0.002] * 9 + [0.004]  # mean 0.0022
    result = compare_arms(arm(HARD, JS_HARD, [0.1] * 10), arm(SOFT, JS_SOFT, [0.2] * 10), ("hard", "soft"), floor)
    stat = next(r for r in result["rows"] if r["metric"] == PRIMARY)["paired"]
    assert result["floor"] == pytest.approx(0.0022) == stat["floor"]
    assert stat["diff_floor"] == pytest.approx((0.088 - 0.117) / 10 / 0.0022)  # the JS sums: soft 0.088, hard 0.117
    assert (stat["diff_floor_ci_low"], stat["diff_floor_ci_high"]) == pytest.approx(
        (stat["ci_low"] / 0.0022, stat["ci_high"] / 0.0022))
    assert f"= {stat['diff_floor']:.2f} [" in result["answer"] and "x the retrain-vs-retrain floor (0.0022)" in result[
        "answer"]
    secondary = next(r for r in result["rows"] if r["metric"] == "acc_forget")["paired"]
    assert "diff_floor" not in secondary  # the floor is of the primary metric


def test_too_few_seeds_are_said_up_front():
    assert smallest_p(5) == pytest.approx(0.0625) and smallest_p(6) == pytest.approx(0.03125) and smallest_p(0) == 1
    assert seeds_needed() == 6 and seeds_needed(11) == 9  # Holm over 11 metrics: 11 * 2 / 2^9 = 0.043
    few = compare_arms(arm(HARD, JS_HARD, [0.1] * 10)[:5], arm(SOFT, JS_SOFT, [0.2] * 10)[:5], ("hard", "soft"))
    assert few["n"] == 5
    assert few["answer"].startswith(f"no significant difference between soft and hard on {PRIMARY}")
    assert "with 5 differing paired seeds the smallest possible p is 0.062 > 0.05" in few["notes"][0]
    # Holm's first step over the one secondary test needs p <= 0.05: out of reach of 2 / 2^5 as well
    assert few["notes"][1] == ("with 5 paired seeds no secondary metric can pass Holm's correction over 1 test; that "
                               "needs at least 6 seeds")
    # only differing pairs count: 10 seeds of which 6 tie give the 2 / 2^4 of 4 pairs, not 2 / 2^10
    tied = list(JS_HARD[:6]) + list(JS_SOFT[6:])
    some = compare_arms(arm(HARD, JS_HARD, [0.1] * 10), arm(SOFT, tied, [0.2] * 10), ("hard", "soft"))
    assert some["n"] == 10 and some["rows"][0]["paired"]["n_nonzero"] == 4
    assert "with 4 differing paired seeds the smallest possible p is 0.12 > 0.05" in some["notes"][0]


def test_identical_arms_are_reported_as_identical():
    same = arm(HARD, JS_HARD, [0.1] * 10)
    result = compare_arms(same, same, ("hard", "soft"))
    assert result["answer"] == f"soft and hard give the same {PRIMARY} on every one of the 10 seeds"


def test_compared_value_of_a_missing_metric_or_reference_is_none():
    assert compared_value("acc_forget", {"acc_forget": 0.5}, {}) is None
    assert compared_value("acc_forget", {}, {"acc_forget": 0.5}) is None
    assert compared_value("acc_forget", {"acc_forget": 0.5}, {"acc_forget": 0.75}) == 0.25
    assert compared_value("acc_test", {"acc_test": 0.5}, {"acc_test": 0.75}) == 0.5


def test_a_metric_without_pairs_has_no_p_and_does_not_count_in_its_family():
    hard = [({**u, "acc_test": 0.9}, r) for u, r in arm(HARD, JS_HARD, [0.1] * 10)]  # soft never measured it
    result = compare_arms(hard, arm(SOFT, JS_SOFT, [0.2] * 10), ("hard", "soft"))
    rows = {r["metric"]: r for r in result["rows"]}
    assert rows["acc_test"]["paired"]["n"] == 0 and np.isnan(rows["acc_test"]["paired"]["p_holm"])
    assert rows["acc_forget"]["paired"]["holm_family"] == "Holm over this comparison's 1 secondary test"
    assert rows["acc_forget"]["paired"]["p_holm"] == rows["acc_forget"]["paired"]["p"]

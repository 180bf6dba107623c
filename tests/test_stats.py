"""The paired test (report/stats.py): a sign-flip permutation test of the mean difference, exact by enumeration
up to 20 differing pairs and a seeded Monte Carlo beyond, with the interval that inverts it. Checked against
hand computations and an independent enumeration in exact rational arithmetic."""

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from softtargets.report.stats import MC_DRAWS, SignFlip, at_min, paired, sign_flip_p


def enumerated_p(d, delta=0) -> Fraction:
    """Two-sided sign-flip p of d - delta over all 2^n sign patterns, in exact rational arithmetic: the share of
    patterns whose |sum| is at least the observed |sum|."""
    shifted = [Fraction(x) - Fraction(delta) for x in d]
    observed = abs(sum(shifted))
    extreme = sum(abs(sum(s * x for s, x in zip(signs, shifted))) >= observed
                  for signs in itertools.product((1, -1), repeat=len(shifted)))
    return Fraction(extreme, 2 ** len(shifted))


def test_three_pairs_by_hand():
    # d = 1, 2, 3: the 8 sums of +-1 +-2 +-3 are 6, 0, 2, -4, 4, -2, 0, -6; |sum| >= 6 twice -> p = 2/8
    assert SignFlip([1.0, 2.0, 3.0]).p() == 0.25
    # a zero difference adds no pattern and ties in |d| count naturally: d = 2, 2, 0, -1 (observed sum 3);
    # +-2 +-2 +-1 gives 5, 3, 1, -1, 1, -1, -3, -5 with the 1 signed second-to-last: |sum| >= 3 four times -> 4/8
    assert SignFlip([2.0, 2.0, 0.0, -1.0]).p() == 0.5
    assert SignFlip([2.0, 2.0, 0.0, -1.0]).k == 3


def test_zero_differences_add_nothing_29_zeros_and_one_nonzero_give_p_1():
    test = SignFlip([0.0] * 29 + [0.01])
    assert test.p() == 1.0 and test.exact and test.k == 1 and test.p_min == 1.0
    assert sign_flip_p([0.0] * 29 + [-0.3]) == 1.0
    assert sign_flip_p([0.0, 0.0, 0.0]) == 1.0  # nothing differs: nothing to reject
    assert math.isnan(sign_flip_p([]))
    # a zero pair changes neither p nor the smallest p: 6 pairs of one sign -> 2/2^6 with or without 24 zeros
    assert SignFlip([1.0] * 6).p() == SignFlip([1.0] * 6 + [0.0] * 24).p() == 2 / 64
    assert SignFlip([1.0] * 6 + [0.0] * 24).p_min == 2 / 64


def test_exact_p_equals_an_independent_enumeration_with_zeros_ties_and_shifts():
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(1, 11))
        d = rng.integers(-12, 13, n) / 8  # eighths: ties in |d| and sums of zero happen, all exact in binary
        d[rng.random(n) < 0.3] = 0.0
        test = SignFlip(d)
        assert test.exact
        for delta in (0.0, 0.125, -0.375, 0.5):  # a shift makes the zero pairs -delta: all 2^n patterns count
            assert test.p(delta) == pytest.approx(float(enumerated_p(d, delta)), abs=1e-15), (d, delta)


def test_monte_carlo_is_seeded_reproducible_and_near_the_exact_p():
    rng = np.random.default_rng(11)
    d = rng.normal(0.25, 1.0, 14)
    exact = SignFlip(d).p()
    drawn = SignFlip(d, exact_max=0)  # force the Monte Carlo path on pairs that can also be enumerated
    assert not drawn.exact and drawn.name == f"sign-flip permutation (Monte Carlo, {MC_DRAWS} draws, seed 0)"
    assert drawn.p() == SignFlip(d, exact_max=0).p()  # the same seed: the same draws
    assert SignFlip(d, exact_max=0, seed=1).p() != drawn.p()
    se = math.sqrt(exact * (1 - exact) / MC_DRAWS)
    assert abs(drawn.p() - exact) < 5 * se + 1 / MC_DRAWS
    assert drawn.p_min == 1 / (1 + MC_DRAWS)
    # beyond 20 differing pairs the draws are the default; p = (1 + #as extreme) / (1 + draws), never 0
    many = SignFlip(np.full(30, 0.5))
    assert not many.exact and many.p() == 1 / (1 + MC_DRAWS) == many.p_min
    # 25 differing pairs of which 20 are ties at 0.1 and 5 at -0.1: exact p by the binomial tail of 30 signs
    ties = np.r_[np.full(20, 0.1), np.full(5, -0.1)]
    binomial = sum(math.comb(25, j) for j in range(26) if abs(2 * j - 25) >= 15) / 2 ** 25
    assert abs(SignFlip(ties).p() - binomial) < 5 * math.sqrt(binomial * (1 - binomial) / MC_DRAWS) + 2 / MC_DRAWS


def test_interval_inverts_the_test_so_p_below_alpha_exactly_when_it_excludes_0():
    rng = np.random.default_rng(5)
    near = 0
    for trial in range(250):
        n = int(rng.integers(2, 36))
        d = rng.normal(rng.normal(0, 0.6), 1.0, n)
        if trial % 4 == 0:
            d = np.round(d, 1)  # ties
        d[rng.random(n) < 0.2] = 0.0
        test = SignFlip(d)
        p = test.p()
        low, high = test.interval(0.95)
        assert (p < 0.05) == (not low <= 0 <= high), (d, p, low, high)
        near += abs(p - 0.05) < 0.02
        assert low <= d.mean() <= high
        for end, outward in ((low, -1), (high, 1)):  # each end is accepted, a step beyond it rejected
            if math.isfinite(end):
                assert test.p(end) >= 0.05
                assert test.p(end + outward * 1e-6 * (abs(end) + d.std() + 1e-3)) < 0.05
    assert near >= 10  # the agreement was tried where it is tight


def test_interval_by_hand():
    # six equal differences: any shift but 1 leaves six equal nonzero ones, p = 2/2^6 < 0.05: the interval is 1
    low, high = SignFlip([1.0] * 6).interval()
    assert low == pytest.approx(1.0, abs=1e-8) and high == pytest.approx(1.0, abs=1e-8)
    # with 5 pairs no shift can be rejected (2/2^5 > 0.05): the interval is unbounded, and so is p's verdict
    assert SignFlip([1.0, 2.0, 3.0, 4.0, 5.0]).interval() == (-math.inf, math.inf)
    assert SignFlip([0.0] * 8).interval() == (0.0, 0.0)
    # d = 1..6 (exact, 64 patterns): shifting by 6 leaves one zero and five negative pairs, p = 2/2^5 >= 0.05,
    # any further shift six negative ones, p = 2/2^6 < 0.05: the upper end is 6. The lower end, by enumeration:
    # a shift just inside it is accepted, one just outside rejected
    d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    low, high = SignFlip(d).interval()
    assert high == pytest.approx(6.0, abs=1e-9)
    step = Fraction(1, 10**6)
    assert 0 < low < 3.5
    assert enumerated_p(d, Fraction(low) + step) >= Fraction(5, 100) > enumerated_p(d, Fraction(low) - step)


def test_paired_returns_the_test_its_interval_and_d_z():
    result = paired([1.0, 2.0, None, 4.0, 3.0], [2.0, 4.0, 5.0, 4.0, 4.5])
    assert result["n"] == 4 and result["n_nonzero"] == 3  # the pair with a missing side drops; one ties
    assert result["mean_diff"] == pytest.approx((1 + 2 + 0 + 1.5) / 4)
    assert result["p"] == pytest.approx(float(enumerated_p([1, 2, 0, 1.5])))  # 2/8: only all-plus and all-minus
    assert result["p"] == 0.25 and result["p_min"] == 0.25 and at_min(result)
    assert result["test"] == "sign-flip permutation (exact)"
    d = np.array([1, 2, 0, 1.5])
    assert result["effect_dz"] == pytest.approx(d.mean() / d.std(ddof=1))
    assert result["dz_ci_low"] < result["effect_dz"] < result["dz_ci_high"]
    assert (result["ci_low"], result["ci_high"]) == (-math.inf, math.inf)  # 4 pairs cannot reject any shift
    none = paired([None], [1.0])
    assert none["n"] == 0 and math.isnan(none["p"]) and none["test"] == "" and not at_min(none)

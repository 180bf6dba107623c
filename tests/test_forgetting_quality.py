"""The challenge's forgetting quality (metrics/forgetting_quality.py) on hand-built populations, and the
forget-quality command end to end on digits."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import norm

from softtargets.metrics import forgetting_quality as fq

DELTA = fq.DELTA


def test_identical_populations_give_epsilon_zero_and_full_score():
    confs = np.random.default_rng(0).normal(size=(32, 25))
    eps = fq.epsilons(confs, confs.copy())
    assert np.all(eps == 0)
    assert fq.forget_score(eps, 32) == 1.0


def test_separable_populations_get_the_cap_and_no_points():
    retrained = np.random.default_rng(1).normal(size=(32, 10))
    eps = fq.epsilons(retrained + 10, retrained)
    assert np.all(eps == fq.EPSILON_CAP)
    assert fq.forget_score(eps, 32) == 0.0


def test_gaussian_shift_on_quantile_samples_gives_ln3():
    """Four models per population at the quantiles z = Phi^-1(1/8, 3/8, 5/8, 7/8) of N(0, 1) (unlearned) and of
    N(1, 1) (retrained). Sorted together: u0 -1.15, u1 -0.32, r0 -0.15, u2 0.32, r1 0.68, u3 1.15, r2 1.32,
    r3 2.15. Retrained has the larger median, so it is positive. Every rule with FNR, FPR > 0 misclassifies
    at least one point of each side: the best single threshold lies in (u2, r1], where FNR = FPR = 1/4 and
    eps = ln((1 - delta - 1/4) / (1/4)) = ln(3 - 4 delta). The double thresholds (equal ranges: the unlearned
    population becomes positive) do no better: [u0, u2] holds 3 of 4 positives and 1 negative, the same
    rates; an interval with 3 positives and no negative does not exist (r0 sits between u1 and u2). With
    N = 4 the resolvable maximum is ceil(ln 3) = 2, and ln 3 = 1.0986 falls in bucket [1, 1.5): 1/4 point."""
    z = norm.ppf([1 / 8, 3 / 8, 5 / 8, 7 / 8])
    eps = fq.example_epsilon(z, z + 1.0)
    assert eps == pytest.approx(math.log(3 - 4 * DELTA), abs=1e-12)
    assert fq.forget_score(np.array([eps]), 4) == 0.25


def test_threshold_rules_for_zero_rates():
    eps = fq.threshold_epsilons(np.array([0.0, 0.0, 0.5, 0.25, 0.5]), np.array([0.0, 0.5, 0.0, 0.25, 0.5]))
    assert eps[0] == math.inf  # FPR = FNR = 0: perfect separation
    assert math.isnan(eps[1]) and math.isnan(eps[2])  # exactly one zero: discarded
    assert eps[3] == pytest.approx(math.log((1 - DELTA - 0.25) / 0.25))
    assert eps[4] == 0.0  # a coin flip: ln((0.5 - delta) / 0.5) < 0, clipped


def test_tiny_and_zero_ranges():
    spread = np.linspace(-1, 1, 16)
    peaky = 0.3 + np.linspace(0, 0.009, 16)  # range 0.009 < 1% of 2
    assert fq.example_epsilon(peaky, spread) == fq.EPSILON_CAP
    assert fq.example_epsilon(0.3 + np.linspace(0, 0.05, 16), spread) < fq.EPSILON_CAP  # 2.5%: measured
    assert fq.example_epsilon(np.full(8, 2.0), np.full(8, 2.0)) == 0.0  # both constant and equal
    assert fq.example_epsilon(np.full(8, 2.0), np.full(8, 3.0)) == fq.EPSILON_CAP  # constant and apart


def test_points_follow_the_half_unit_buckets():
    assert fq.max_epsilon(32) == 4.0 and fq.max_epsilon(512) == 7.0
    eps = np.array([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, 50.0])
    assert fq.points(eps, 32).tolist() == [1, 1, 0.5, 0.25, 2.0**-7, 0, 0]
    assert fq.points(np.array([0.0]), 2).tolist() == [0.0]  # N = 2 resolves nothing


def _brute_rates(pos, neg, rule):
    """Rates by comparing every sample with every threshold, on grids built from the definition."""
    pos, neg = np.sort(pos), np.sort(neg)
    if rule == "single":
        lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
        t = np.linspace(lo, hi, int(math.ceil((hi - lo) * 100)))
        return (neg[None, :] >= t[:, None]).mean(1), (pos[None, :] < t[:, None]).mean(1)
    if pos[-1] - pos[0] >= neg[-1] - neg[0]:
        pos, neg = neg, pos
    width = pos[-1] - pos[0]
    right = np.linspace(pos[0] + width - 2, pos[-1] + 2, int(math.ceil((pos[-1] + 2 - (pos[0] + width - 2)) * 100)))
    left = np.concatenate([np.linspace(r - width - 2, r - width + 2, 400) for r in right])
    right = np.repeat(right, 400)

    def inside(s):
        return ((left[:, None] <= s[None, :]) & (s[None, :] <= right[:, None])).mean(1)

    return inside(neg), 1 - inside(pos)


@pytest.mark.parametrize("rule", ["single", "double"])
def test_binary_search_rates_equal_brute_force(rule):
    rng = np.random.default_rng(3)
    pos = np.round(rng.normal(1, 1, 12), 2)  # rounding makes ties with grid points likely
    neg = np.round(rng.normal(0, 0.6, 12), 2)
    fast = (fq._single_threshold_rates if rule == "single" else fq._double_threshold_rates)(np.sort(pos), np.sort(neg))
    slow = _brute_rates(pos, neg, rule)
    np.testing.assert_allclose(fast[0], slow[0], atol=1e-12)
    np.testing.assert_allclose(fast[1], slow[1], atol=1e-12)


def test_logit_scaled_confidence_hand_values():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, 40.0]])
    s = fq.logit_scaled_confidence(logits, torch.tensor([1, 1]))
    assert s[0] == pytest.approx(math.log(3))  # p = 3/4: ln(3/4) - ln(1/4)
    assert s[1] == pytest.approx(40.0, abs=1e-9)  # exact although 1 - p_y rounds to 0 in float64


def test_final_score_and_bootstrap():
    assert fq.final_score(0.5, 0.9, 0.96, 0.8, 0.85) == pytest.approx(0.5 * 0.9 / 0.96 * 0.8 / 0.85)
    values = np.r_[np.ones(30), np.zeros(10)]
    low, high = fq.bootstrap_interval(values)
    assert low < 0.75 < high and high - low < 0.4
    assert fq.bootstrap_interval(np.full(5, 0.25)) == (0.25, 0.25)


def test_reference_population_reuses_the_runs_reference(fast):
    from softtargets.audit import reference_population
    from softtargets.config import load_config
    from softtargets.experiment import prepare
    from softtargets.hooks import Hooks

    prepared = prepare(load_config(overrides=fast))
    (same,) = reference_population(prepared, [0], Hooks())
    for a, b in zip(same.state_dict().values(), prepared.reference.state_dict().values()):
        assert torch.equal(a, b)


def test_forget_quality_command_writes_numbers_and_plot(cli, fast):
    code, out, err = cli("-q", "forget-quality", "--mu_algo", "graddiff", "--n-models", "3", "--compare-targets",
                         "--epochs", "2", "--unlearn-epochs", "1", "--out", fast["out"], "--cache-dir",
                         fast["cache_dir"], "--device", "cpu", "--tracker", "none")
    assert code == 0, err
    (path,) = Path(fast["out"]).glob("forget-quality-digits-mlp-graddiff-hard-vs-soft-seed0-n3-*")
    result = json.loads(open(f"{path}/result.json").read())
    for kind in ("hard", "soft"):
        k = result["kinds"][kind]
        assert 0 <= k["F"] <= 1 and k["F_ci95"][0] <= k["F"] <= k["F_ci95"][1]
        assert k["score"] == pytest.approx(k["F"] * k["ra_ratio"] * k["ta_ratio"])
        assert k["n_models"] == 3
    assert "null" in result and "difference" in result
    rows = open(f"{path}/epsilons.csv").read().splitlines()
    assert rows[0] == "train_index,hard,soft,retrain_vs_retrain"
    assert len(rows) == 1 + result["split"]["forget"]
    assert open(f"{path}/epsilons.png", "rb").read(4) == b"\x89PNG"


def test_forget_quality_rejects_one_model(cli, fast):
    code, out, err = cli("forget-quality", "--n-models", "1", "--out", fast["out"], "--tracker", "none")
    assert code == 2
    assert "--n-models must be in 2..4096" in err and len(err.strip().splitlines()) == 1

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from softtargets.metrics.accuracy import accuracy, accuracy_distance, per_class_accuracy, per_class_loss
from softtargets.metrics.divergence import js_divergence
from softtargets.metrics.mia import confidence_mia_auc, loss_mia_accuracy, rank_auc, unlearn_score
from softtargets.metrics.weights import l2_distance, mean_abs_change
from softtargets.report.stats import mean_ci, paired, sign_flip_p


def onehot_logits(preds, c=3):
    return torch.nn.functional.one_hot(torch.tensor(preds), c).float() * 10


def test_accuracy_and_per_class():
    y = torch.tensor([0, 0, 1, 1, 1])
    logits = onehot_logits([0, 1, 1, 1, 0])
    assert accuracy(logits, y) == pytest.approx(3 / 5)
    pc = per_class_accuracy(logits, y, 3)
    assert pc[:2] == pytest.approx([0.5, 2 / 3]) and math.isnan(pc[2])


def test_per_class_loss_is_mean_ce_of_each_class():
    logits = torch.tensor([[0.0, 0.0], [0.0, 0.0], [math.log(3.0), 0.0]])
    y = torch.tensor([0, 1, 0])
    # class 0: CE = ln 2 and -ln(3/4); class 1: ln 2
    assert per_class_loss(logits, y, 2) == pytest.approx([(math.log(2) - math.log(0.75)) / 2, math.log(2)])


def test_accuracy_distance_ignores_absent_classes():
    assert accuracy_distance([1.0, 0.5, float("nan")], [0.8, 0.9, 0.3]) == pytest.approx((0.2 + 0.4) / 2)


def test_weight_distances_on_tiny_models():
    a, b = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        a.weight[:] = torch.tensor([[1.0, 2.0]]); a.bias[:] = 0.0
        b.weight[:] = torch.tensor([[4.0, 2.0]]); b.bias[:] = 4.0
    assert l2_distance(a, b) == pytest.approx(5.0)  # sqrt(3^2 + 0 + 4^2)
    assert mean_abs_change(a, b) == pytest.approx(7 / 3)


def test_js_divergence_bounds_and_hand_value():
    big = 50.0
    p = torch.tensor([[big, 0.0]])
    q = torch.tensor([[0.0, big]])
    assert js_divergence(p, p) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence(p, q) == pytest.approx(math.log(2), abs=1e-9)  # disjoint supports
    # p = (1/2, 1/2), q = (1, 0): m = (3/4, 1/4)
    expected = 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)) + 0.5 * math.log(1 / 0.75)
    assert js_divergence(torch.zeros(1, 2), torch.tensor([[200.0, 0.0]])) == pytest.approx(expected, abs=1e-9)


def test_confidence_auc_is_mann_whitney():
    # pairs (member > non-member): 0.9>0.7, 0.9>0.85, 0.8>0.7, 0.8<0.85 -> 3/4; a tie counts 1/2
    assert confidence_mia_auc(np.array([0.9, 0.8]), np.array([0.7, 0.85])) == pytest.approx(0.75)
    assert confidence_mia_auc(np.array([0.5]), np.array([0.5])) == pytest.approx(0.5)


def test_rank_auc_equals_roc_auc_score_with_ties():
    """The GPU's AUC (ranks, ties averaged) against scikit-learn's on the same scores, ties included."""
    assert rank_auc(torch.tensor([0.9, 0.8]), torch.tensor([0.7, 0.85])) == pytest.approx(0.75)
    assert rank_auc(torch.tensor([0.5]), torch.tensor([0.5])) == pytest.approx(0.5)
    rng = np.random.default_rng(0)
    members, nonmembers = rng.integers(0, 20, 300) / 20, rng.integers(0, 25, 500) / 25  # many ties
    expected = confidence_mia_auc(members, nonmembers)
    assert 0.5 < expected < 0.6
    assert rank_auc(torch.from_numpy(members), torch.from_numpy(nonmembers)) == pytest.approx(expected, abs=1e-12)


def test_loss_mia_separable_and_indistinguishable():
    rng = np.random.default_rng(0)
    assert loss_mia_accuracy(np.zeros(200), np.full(200, 5.0)) == pytest.approx(1.0)
    same = loss_mia_accuracy(rng.exponential(size=400), rng.exponential(size=400))
    assert 0.35 < same < 0.65
    assert math.isnan(loss_mia_accuracy(np.zeros(3), np.ones(3)))


def test_unlearn_score_formula():
    assert unlearn_score(0.9, 0.1, 0.5) == pytest.approx((0.9 + 0.9 + 0.5) / 3)


def test_stats_match_hand_values():
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.302653; sem = 1/sqrt(3)
    assert mean == 2.0 and hi - mean == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    assert sign_flip_p([0.0, 0.0, 0.0]) == 1.0  # nothing differs
    # all 6 differences positive, exact two-sided p = 2 / 2^6
    assert sign_flip_p([1, 2, 3, 4, 5, 6]) == 2 / 64
    pr = paired([1.0, 2.0, None], [2.0, 4.0, 5.0])
    assert pr["n"] == 2 and pr["mean_diff"] == pytest.approx(1.5)

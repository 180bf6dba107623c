import math

import pytest
import torch
import torch.nn.functional as F

from softtargets.errors import SoftTargetsError
from softtargets.targets import build_targets, kl_div, soft_cross_entropy

Y = torch.tensor([0, 2])
LOGITS = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, math.log(4.0)]])


def test_hard_is_one_hot():
    assert torch.equal(build_targets("hard", Y, 3), torch.tensor([[1.0, 0, 0], [0, 0, 1.0]]))


def test_soft_is_tempered_softmax_of_the_original():
    t = build_targets("soft", Y, 3, LOGITS, temperature=2.0)
    # row 2 at T=2: logits (0, 0, ln 4)/2 -> exp = (1, 1, 2) -> (0.25, 0.25, 0.5)
    assert torch.allclose(t[1], torch.tensor([0.25, 0.25, 0.5]))
    assert torch.allclose(t.sum(1), torch.ones(2))


def test_smooth_and_uniform():
    s = build_targets("smooth", Y, 4, smoothing=0.2)
    assert torch.allclose(s[0], torch.tensor([0.85, 0.05, 0.05, 0.05]))
    assert torch.allclose(build_targets("uniform", Y, 4), torch.full((2, 4), 0.25))


def test_unknown_kind_is_a_user_error():
    with pytest.raises(SoftTargetsError, match="unknown target kind 'fuzzy'"):
        build_targets("fuzzy", Y, 3)


def test_soft_cross_entropy_matches_torch_for_one_hot_and_hand_value_for_soft():
    z = torch.randn(5, 4)
    y = torch.tensor([0, 1, 2, 3, 0])
    assert torch.allclose(soft_cross_entropy(z, F.one_hot(y, 4).float()), F.cross_entropy(z, y))
    # uniform target over 2 classes with equal logits: CE = ln 2
    assert soft_cross_entropy(torch.zeros(1, 2), torch.tensor([[0.5, 0.5]])).item() == pytest.approx(math.log(2))


def test_kl_is_batchmean_times_t_squared():
    # student uniform over 2 classes, target (1, 0): KL = ln 2 per sample; batchmean over 2 samples, T = 3
    student = torch.zeros(2, 2)
    target = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert kl_div(student, target, temperature=3.0).item() == pytest.approx(9 * math.log(2))
    assert kl_div(student, torch.full((2, 2), 0.5)).item() == pytest.approx(0.0, abs=1e-7)

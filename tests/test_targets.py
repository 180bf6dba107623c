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


def test_pseudo_is_the_originals_argmax_as_one_hot():
    # row 0 predicts class 0 (its label), row 1 predicts class 2 (its label is 2); a third row is mislabelled
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 3.0, 1.0]])
    t = build_targets("pseudo", torch.tensor([0, 2, 0]), 3, logits)
    assert torch.equal(t, torch.tensor([[1.0, 0, 0], [0, 0, 1.0], [0, 1.0, 0]]))


@pytest.mark.parametrize("temperature", [float("inf"), float("nan"), 0.0, -1.0])
def test_soft_targets_need_a_finite_positive_temperature(temperature):
    with pytest.raises(SoftTargetsError, match="finite number > 0"):
        build_targets("soft", Y, 3, LOGITS, temperature=temperature)


def test_cross_entropy_gradient_is_exactly_softmax_minus_target():
    torch.manual_seed(0)
    z = torch.randn(4, 5, requires_grad=True)
    t = torch.softmax(torch.randn(4, 5), dim=1)
    soft_cross_entropy(z, t).backward()
    assert torch.equal(z.grad, (torch.softmax(z.detach(), 1) - t) / 4)
    # and the value is the textbook one
    assert soft_cross_entropy(z, t).item() == pytest.approx(-(t * F.log_softmax(z, 1)).sum(1).mean().item())


def test_soft_targets_of_the_model_itself_give_exactly_zero_gradient():
    """autograd's log_softmax backward leaves softmax(z) * (sum(t) - 1) ~ 1e-8 behind; ours is exactly 0."""
    torch.manual_seed(0)
    z = (torch.randn(64, 10) * 8).requires_grad_(True)
    t = build_targets("soft", torch.zeros(64, dtype=torch.long), 10, z.detach())
    soft_cross_entropy(z, t).backward()
    assert torch.count_nonzero(z.grad) == 0
    autograd = z.detach().clone().requires_grad_(True)
    (-(t * F.log_softmax(autograd, 1)).sum(1).mean()).backward()
    assert torch.count_nonzero(autograd.grad) > 0  # the residue this formulation removes


def test_kl_gradient_and_mean_reduction():
    torch.manual_seed(1)
    z = torch.randn(3, 4, requires_grad=True)
    t = torch.softmax(torch.randn(3, 4), dim=1)
    kl_div(z, t, temperature=2.0).backward()
    assert torch.allclose(z.grad, 2.0 * (torch.softmax(z.detach() / 2, 1) - t) / 3, atol=1e-7)
    # torch's KLDivLoss() default ('mean') divides the sum by B * C: the batchmean value over the classes
    expected = (t * (t.log() - F.log_softmax(z.detach(), 1))).sum().item() / (3 * 4)
    assert kl_div(z.detach(), t, reduction="mean").item() == pytest.approx(expected, rel=1e-5)
    assert kl_div(z.detach(), t).item() == pytest.approx(4 * expected, rel=1e-5)


def test_targets_that_require_grad_are_refused():
    with pytest.raises(ValueError, match="must not require grad"):
        soft_cross_entropy(torch.zeros(1, 2), torch.full((1, 2), 0.5, requires_grad=True))

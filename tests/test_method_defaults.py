"""Method defaults and details checked against their cited references (issue 13)."""

import pytest
import torch
import torch.nn.functional as F

from softtargets.config import load_config
from softtargets.methods.random_label import relabel_targets


def test_neggrad_plus_defaults_are_the_scrub_notebooks():
    """small_scale_unlearning.ipynb: alpha 0.95, 10 epochs, SGD lr 0.01 without momentum, lambda = --weight-decay 0.1."""
    u = load_config(overrides={"unlearning.method": "neggrad_plus"}).unlearning
    assert (u.epochs, u.optimizer, u.lr, u.momentum, u.weight_decay) == (10, "sgd", 0.01, 0.0, 0.0)
    assert u.params == {"alpha": 0.95, "lam": 0.1}


def test_uniform_scrub_kl_terms_use_torchs_mean_reduction():
    """Siddiqui et al.'s KLDivLoss() averages over batch and classes: the term is batchmean KL / C."""
    from softtargets.methods.uniform_scrub import UniformSCRUB

    class Ctx:
        @staticmethod
        def teacher_probs(x):
            return torch.tensor([[0.5, 0.5, 0.0, 0.0]])  # teacher; the student below is uniform over 4 classes

    method = UniformSCRUB()
    method.ctx = Ctx()
    model = torch.nn.Identity()
    batch = type("B", (), {"x": torch.zeros(1, 4), "t": torch.tensor([[1.0, 0, 0, 0]])})
    out = method.step(model, batch, batch, None, 0, 1)
    # KL(teacher || uniform) = 2 * 0.5 * ln(0.5 / 0.25) = ln 2, / C = 4; KL(uniform || uniform) = 0
    assert out["retain_kl"] == pytest.approx(torch.log(torch.tensor(2.0)).item() / 4)
    assert out["forget_kl_uniform"] == pytest.approx(0.0, abs=1e-7)


def test_random_label_targets_never_name_the_true_class_for_distributions():
    y = torch.tensor([0, 1, 2])
    g = torch.Generator().manual_seed(0)
    # soft rows: an ordinary one, and one whose other classes underflowed to exactly 0 (a very confident original)
    soft = torch.tensor([[0.7, 0.2, 0.1], [0.0, 1.0, 0.0], [0.25, 0.25, 0.5]])
    q = relabel_targets(y, soft, g, labels=False)
    assert torch.allclose(q[0], torch.tensor([0.0, 2 / 3, 1 / 3]))  # the complementary teacher
    assert torch.equal(q[1], torch.tensor([0.5, 0.0, 0.5]))  # uniform over the wrong classes, not a random label
    assert torch.allclose(q[2], torch.tensor([0.5, 0.5, 0.0]))
    assert (q * F.one_hot(y, 3)).sum() == 0


def test_random_label_targets_for_labels_follow_rl_py():
    y = torch.tensor([0, 1, 2, 0])
    hard = F.one_hot(y, 3).float()
    q = relabel_targets(y, hard, torch.Generator().manual_seed(0), labels=True)
    expected = torch.randint(3, (4,), generator=torch.Generator().manual_seed(0))  # may equal y, as in RL.py
    assert torch.equal(q, F.one_hot(expected, 3).float())
    # pseudo targets: a row where the original predicted a wrong class keeps that class
    pseudo = torch.tensor([[0.0, 0, 1], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
    q = relabel_targets(y, pseudo, torch.Generator().manual_seed(0), labels=True)
    assert torch.equal(q[0], torch.tensor([0.0, 0, 1]))

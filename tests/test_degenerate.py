"""Soft targets at T = 1 on the original: an exact no-op, reported as degenerate (issue 13, DESIGN.md)."""

import logging

import pytest
import torch

from softtargets.config import load_config, replace
from softtargets.experiment import prepare, unlearn_copy, validate
from softtargets.hooks import Hooks


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("degenerate")
    cfg = load_config(overrides={"training.epochs": 2, "unlearning.epochs": 1, "unlearning.method": "gradasc",
                                 "data.forget": "class:3", "out": str(root / "runs"), "cache_dir": str(root / "cache"),
                                 "device": "cpu"})
    return prepare(cfg)


def max_change(model, original) -> float:
    return max((p - q).abs().max().item() for p, q in zip(model.parameters(), original.parameters()))


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_gradient_ascent_on_soft_targets_at_t1_does_not_move_the_weights(prepared, optimizer):
    """Adam normalises any nonzero gradient to a learning-rate-sized step: rounding residues would move it."""
    base = replace(prepared.cfg, **{"unlearning.optimizer": optimizer, "unlearning.lr": 1e-3,
                                    "unlearning.weight_decay": 0.0})
    moved = {}
    for name, changes in {"soft T=1": {"targets.kind": "soft", "targets.temperature": 1.0},
                          "soft T=2": {"targets.kind": "soft", "targets.temperature": 2.0},
                          "smooth": {"targets.kind": "smooth"}}.items():
        cfg = replace(base, **changes)
        model, _, outcome = unlearn_copy(cfg, validate(cfg), prepared, prepared_hooks())
        assert outcome.status == "completed" and outcome.steps > 0
        moved[name] = max_change(model, prepared.original)
    assert moved["soft T=1"] <= 1e-12
    assert moved["soft T=2"] > 1e-5 and moved["smooth"] > 1e-5


def prepared_hooks():
    return Hooks()


@pytest.mark.parametrize("method", ["gradasc", "graddiff", "finetune"])
def test_probe_marks_soft_terms_at_t1_degenerate_and_warns_once(prepared, method, caplog, monkeypatch):
    import softtargets.training.unlearning as unlearning

    monkeypatch.setattr(unlearning, "_WARNED", set())
    soft = replace(prepared.cfg, **{"unlearning.method": method, "targets.kind": "soft"})
    with caplog.at_level(logging.WARNING, logger="softtargets.training.unlearning"):
        _, _, outcome = unlearn_copy(soft, validate(soft), prepared, prepared_hooks())
        unlearn_copy(soft, validate(soft), prepared, prepared_hooks())  # a second seed of a compare: said once
    terms = outcome.target_terms
    expected = {"gradasc": {"forget_ce"}, "graddiff": {"retain_ce", "forget_ce"}, "finetune": {"retain_ce"}}[method]
    assert set(terms) == expected
    for row in terms.values():
        assert row["degenerate"] and row["grad_norm"] == 0.0 and row["hard_grad_norm"] > 0.01
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "--temperature other than 1" in lines[0] and "pseudo" in lines[0]


@pytest.mark.parametrize("changes", [{"targets.kind": "soft", "targets.temperature": 2.0}, {"targets.kind": "smooth"},
                                     {"targets.kind": "pseudo"}, {"targets.kind": "hard"}])
def test_meaningful_targets_are_not_degenerate(prepared, changes, caplog):
    cfg = replace(prepared.cfg, **{"unlearning.method": "graddiff", **changes})
    with caplog.at_level(logging.WARNING, logger="softtargets.training.unlearning"):
        _, _, outcome = unlearn_copy(cfg, validate(cfg), prepared, prepared_hooks())
    assert not caplog.records
    for row in outcome.target_terms.values():
        assert not row["degenerate"] and row["grad_norm"] > 1e-3 * row["hard_grad_norm"]


def test_probe_leaves_the_run_unchanged(prepared, monkeypatch):
    """random_label draws its labels from a generator the probe also uses: the run must not see the difference."""
    import softtargets.training.unlearning as unlearning

    cfg = replace(prepared.cfg, **{"unlearning.method": "random_label", "targets.kind": "hard"})
    probed, _, outcome = unlearn_copy(cfg, validate(cfg), prepared, prepared_hooks())
    assert set(outcome.target_terms) == {"forget_ce", "retain_ce"}
    monkeypatch.setattr(unlearning, "probe_target_terms", lambda *args: {})
    unprobed, _, outcome = unlearn_copy(cfg, validate(cfg), prepared, prepared_hooks())
    assert outcome.target_terms == {}
    assert all(torch.equal(p, q) for p, q in zip(probed.parameters(), unprobed.parameters()))

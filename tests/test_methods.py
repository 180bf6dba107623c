"""The method zoo on digits: every built-in method forgets, keeps the retain set, and hard vs soft differ.

Setting: forget the whole class 3 of digits (MLP, the default 10-epoch recipe). A class spec makes the
test meaningful: the reference never saw class 3, so its forget accuracy is 0 while the original's is about
0.93; a random 10% split would leave original and reference within a few points of each other.
"""

import json
import re
from pathlib import Path

import pytest
import torch

from softtargets.config import load_config
from softtargets.errors import SoftTargetsError
from softtargets.experiment import prepare, run_experiment, unlearn_copy
from softtargets.hooks import Hooks
from softtargets.inference import predict_logits
from softtargets.methods import get_method_class, registry
from softtargets.methods.base import Method

FORGET = "class:3"
# Retain floor 0.85: the original and the reference both reach about 0.96 on the retain set and chance is
# 0.10, so a method below 0.85 has damaged the retained task rather than unlearned class 3 (collapsed
# runs seen while tuning sat at 0.2-0.4).
RETAIN_FLOOR = 0.85
# "Closer to the reference" must be by at least this much forget accuracy (about 6 of the ~145 forget images).
MARGIN = 0.04
# Soft runs (T = 2) are held to the forgetting and retain claims only where the forget term does not depend on
# t in a way that can reverse it: random/complementary labels, a teacher KL, or the uniform distribution.
# Elsewhere soft targets measurably change the outcome, which is what the tool studies, not a defect:
# retain-only methods distil the original's probabilities on retain images, which still carry class 3 (they
# keep forget accuracy near the original's); ascent on the flatter T = 2 targets sharpens the model's own
# predictions (gradasc soft: forget accuracy 0.92 -> 0.99; graddiff soft: retain 0.78); UNSIR's soft noise
# labels and distillation repair keep class 3 (0.93).
SOFT_FORGETS = {"bad_teacher", "delete", "random_label", "salun", "scrub", "uniform_scrub"}
ALL = sorted(registry())
# the (hard, soft) pair each method compares: delete refuses hard and pseudo (descending on them would teach the
# label), so its hard side is the runner-up relabelling (PRU's) and its soft side the masked teacher (DELETE's)
KINDS = {"delete": ("masked_pseudo", "masked")}


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    cfg = load_config(overrides={"data.forget": FORGET, "out": str(root / "runs"), "cache_dir": str(root / "cache"),
                                 "device": "cpu"})
    return cfg, prepare(cfg)


def unlearned(digits, method: str, kind: str, **changes):
    """(forget accuracy, retain accuracy, flat parameters, outcome) of one unlearning run, evaluated directly."""
    cfg, prepared = digits
    run_cfg = config(cfg, **{"unlearning.method": method, "targets.kind": kind, **changes})
    model, _, outcome = unlearn_copy(run_cfg, get_method_class(method), prepared, Hooks())
    data, split = prepared.data, prepared.split

    def accuracy(idx):
        y = data.train_y[idx.to(data.device)]
        return (predict_logits(model, data, data.train_x[idx.to(data.device)]).argmax(1) == y).float().mean().item()

    flat = torch.cat([p.detach().flatten() for p in model.parameters()])
    return accuracy(split.forget_idx), accuracy(split.retain_idx), flat, outcome


def _base(cfg):
    return {"data.forget": cfg.data.forget, "out": cfg.out, "cache_dir": cfg.cache_dir, "device": "cpu"}


def config(cfg, **changes):
    """A run config for the prepared digits setting: the method's YAML defaults plus dotted changes."""
    return load_config(overrides={**_base(cfg), **changes})


@pytest.mark.parametrize("method", ALL)
def test_one_epoch_runs_finite_and_targets_reach_the_losses(digits, method):
    """The quick check of every method: one epoch, finite, and hard vs soft targets give different models."""
    hard, soft = KINDS.get(method, ("hard", "soft"))
    runs = {kind: unlearned(digits, method, kind, **{"unlearning.epochs": 1, "targets.temperature": 2.0})
            for kind in (hard, soft)}
    for forget_acc, retain_acc, flat, outcome in runs.values():
        assert outcome.status == "completed" and outcome.epochs_run == 1 and torch.isfinite(flat).all()
    assert (runs[hard][2] - runs[soft][2]).abs().max() > 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("method", ALL)
def test_method_forgets_keeps_retain_and_uses_targets(digits, method):
    """The full claim with each method's configs/unlearn defaults (a few seconds per method on 2 idle cores)."""
    _, prepared = digits
    original, reference = prepared.metrics["original"], prepared.metrics["reference"]
    start_gap = abs(original["acc_forget"] - reference["acc_forget"])
    hard, soft = KINDS.get(method, ("hard", "soft"))
    runs = {kind: unlearned(digits, method, kind, **{"targets.temperature": 2.0} if kind == "soft" else {})
            for kind in (hard, soft)}
    for kind, (forget_acc, retain_acc, flat, outcome) in runs.items():
        assert outcome.status == "completed", (kind, outcome.stopped)
        assert torch.isfinite(flat).all()
        assert all(torch.isfinite(torch.tensor(v)) for row in outcome.history for v in row.values())
        if kind == hard or method in SOFT_FORGETS:
            assert retain_acc >= RETAIN_FLOOR, (kind, retain_acc)
            assert abs(forget_acc - reference["acc_forget"]) < start_gap - MARGIN, (kind, forget_acc)
    # every built-in method has a target term: hard and soft runs end in different models
    assert (runs[hard][2] - runs[soft][2]).abs().max() > 1e-4


def test_every_method_documents_where_targets_enter():
    for name, cls in registry().items():
        assert cls.summary and cls.targets_use and cls.__doc__, name
        assert "Reference" in cls.__doc__ and "Targets" in cls.__doc__, name
        assert (Path(__file__).parent.parent / "configs" / "unlearn" / f"{name}.yaml").is_file(), name


def test_list_methods_shows_each_method_and_target_use(cli):
    code, out, _ = cli("list", "methods")
    assert code == 0
    flat = " ".join(out.split())
    for name, cls in registry().items():
        assert name in flat
        assert " ".join(cls.targets_use.split())[:12] in flat, name


def test_guards_are_recorded_in_result_json(digits):
    cfg, prepared = digits
    run = config(cfg, **{"unlearning.method": "graddiff", "unlearning.epochs": 4, "unlearning.lr": 1e-3,
                         "unlearning.clip_grad": 0.05, "unlearning.stop_at_reference": True})
    result = run_experiment(run, prepared=prepared)
    guards = result["unlearning"]["guards"]
    stored = json.loads((Path(result["path"]) / "result.json").read_text())["unlearning"]["guards"]
    assert stored == guards
    assert guards["clip_grad"] == 0.05 and guards["clipped_steps"] > 0 and guards["max_grad_norm"] > 0.05
    assert guards["stop_at_reference"] and guards["reference_forget_acc"] == prepared.metrics["reference"]["acc_forget"]
    floor = config(cfg, **{"unlearning.method": "gradasc", "unlearning.retain_floor": 0.999})
    stopped = run_experiment(floor, prepared=prepared)["unlearning"]
    assert stopped["stopped"] == "retain_floor" and stopped["epochs_run"] == 1
    assert stopped["guards"]["retain_floor"] == 0.999 and stopped["guards"]["clipped_steps"] == 0


def test_stop_at_reference_ends_the_loop_early(digits):
    cfg, prepared = digits
    run = config(cfg, **{"unlearning.method": "random_label", "unlearning.epochs": 10,
                         "unlearning.stop_at_reference": True})
    _, _, outcome = unlearn_copy(run, get_method_class("random_label"), prepared, Hooks())
    assert outcome.stopped == "reached_reference" and outcome.epochs_run < 10
    assert outcome.history[-1]["forget_acc"] <= prepared.metrics["reference"]["acc_forget"]


def test_scrub_runs_max_passes_only_in_the_first_msteps_epochs(digits):
    _, _, _, outcome = unlearned(digits, "scrub", "hard", **{"unlearning.epochs": 3,
                                                             "unlearning.params.msteps": 1})
    assert "forget_kl" in outcome.history[0] and "forget_kl" not in outcome.history[1]
    assert all("retain_kl" in row for row in outcome.history)


def test_salun_changes_only_the_salient_weights(digits):
    cfg, prepared = digits
    run = config(cfg, **{"unlearning.method": "salun", "unlearning.epochs": 1, "unlearning.params.ratio": 0.1})
    model, method, _ = unlearn_copy(run, get_method_class("salun"), prepared, Hooks())
    changed = sum(int((p != p0).sum()) for p, p0 in zip(model.parameters(), prepared.original.parameters()))
    total = sum(p.numel() for p in model.parameters())
    assert 0 < changed <= 0.1 * total + 1
    assert sum(int(m.sum()) for m in method.mask) == pytest.approx(0.1 * total, abs=1)


@pytest.mark.parametrize("params, message", [
    ({"ratio": 0}, "parameter 'ratio' must be in (0, 1]"),
    ({"nonsense": 1}, "has no parameter 'nonsense'"),
])
def test_bad_method_parameters_fail_early(params, message):
    with pytest.raises(SoftTargetsError, match=re.escape(message)):
        get_method_class("salun")(**params)


# ---- plugins -----------------------------------------------------------------------------------------------

MLSBENCH = '''
import torch
import torch.nn.functional as F


class UnlearningMethod:
    """The MLS-Bench template's shape: retain loss minus a weighted forget loss, stepping the optimizer itself."""

    def __init__(self):
        self.forget_weight = 0.1  # MLS-Bench's negative_gradient uses 0.5, which collapses retain accuracy

    def unlearn_step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        (xr, yr), (xf, yf) = retain_batch, forget_batch
        loss = F.cross_entropy(model(xr), yr) - self.forget_weight * F.cross_entropy(model(xf), yf)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return {"loss": loss.item()}
'''

CHALLENGE = '''
import torch
import torch.nn as nn

DEVICE = "cpu"


def unlearning(net, retain_loader, forget_loader, val_loader):
    """The NeurIPS 2023 starting kit's baseline shape: fine-tune on the retain set, in place."""
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    net.train()
    for _ in range(3):
        for inputs, targets in retain_loader:
            inputs, targets = inputs.to(DEVICE), targets.to(DEVICE)
            optimizer.zero_grad()
            criterion(net(inputs), targets).backward()
            optimizer.step()
    net.eval()
'''


@pytest.mark.parametrize("source, ref", [(MLSBENCH, "UnlearningMethod"), (CHALLENGE, "unlearning")])
def test_seed_style_plugins_run_unchanged(digits, tmp_path, source, ref):
    cfg, prepared = digits
    path = tmp_path / "plugin.py"
    path.write_text(source)
    run = config(cfg, **{"unlearning.method": f"{path}:{ref}", "unlearning.epochs": 3, "unlearning.lr": 1e-4})
    result = run_experiment(run, prepared=prepared)
    assert result["status"] == "completed"
    unl, orig = result["metrics"]["unlearned"], result["metrics"]["original"]
    assert unl["acc_forget"] < orig["acc_forget"] - MARGIN and unl["acc_retain"] >= RETAIN_FLOOR


def test_docs_worked_example_runs(digits, tmp_path, monkeypatch):
    """The example of docs/adding-a-method.md, extracted and run as a plugin."""
    page = (Path(__file__).parent.parent / "docs" / "adding-a-method.md").read_text()
    code = re.search(r"```python\n(.*?)```", page, re.S).group(1)
    (tmp_path / "my_method.py").write_text(code)
    monkeypatch.chdir(tmp_path)
    cfg, prepared = digits
    run = {"unlearning.method": "my_method.py:ForgetToUniform", "unlearning.epochs": 2, "unlearning.lr": 1e-3}
    results = {kind: run_experiment(config(cfg, **run, **{"targets.kind": kind}), prepared=prepared)
               for kind in ("hard", "soft")}
    for result in results.values():
        assert result["status"] == "completed"
        assert result["metrics"]["unlearned"]["acc_forget"] < result["metrics"]["original"]["acc_forget"] - MARGIN
    assert results["hard"]["metrics"]["unlearned"] != results["soft"]["metrics"]["unlearned"]


@pytest.mark.parametrize("ref, message", [
    ("tests/no_such_plugin.py:Thing", "plugin file tests/no_such_plugin.py not found"),
    ("softtargets.methods.base:Phase", "is neither a softtargets Method subclass"),
    ("NoColon", "unknown method 'NoColon'"),
])
def test_bad_plugins_one_line_exit_2(cli, tmp_path, ref, message):
    code, _, err = cli("run", "--mu_algo", ref, "--device", "cpu", "--out", str(tmp_path / "runs"))
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


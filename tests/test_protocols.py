"""--protocol presets: layering below --config and flags, the protocol's own metric names, the loop
settings they need (paired batches over the retain set, a per-epoch cosine schedule)."""

import json

import pytest
import torch

from softtargets.config import load_config
from softtargets.data.datasets import DEBIAN_FASHION_MNIST, load_dataset
from softtargets.errors import SoftTargetsError
from softtargets.experiment import prepare, unlearn_copy
from softtargets.hooks import Hooks
from softtargets.methods.base import Method
from softtargets.config import available, load_protocol
from softtargets.protocols import protocol_metrics
from softtargets.targets import soft_cross_entropy


def test_shipped_protocols_and_their_layering(tmp_path):
    assert {"softtargets", "mlsbench", "challenge"} <= set(available())
    cfg = load_config(overrides={"protocol": "mlsbench", "training.architecture": "resnet20"})
    t, u = cfg.training, cfg.unlearning
    assert (t.optimizer, t.lr, t.momentum, t.weight_decay, t.schedule, t.epochs, t.augment) == \
        ("sgd", 0.1, 0.9, 5e-4, "cosine", 80, True)
    assert (u.epochs, u.optimizer, u.lr, u.batch_size, u.driver) == (20, "adam", 1e-3, 128, "retain")
    assert cfg.data.forget == "class:0" and cfg.seed == 42 and cfg.protocol == "mlsbench"
    # the original tool's recipe replaces the architecture's own (MLS-Bench) recipe
    st = load_config(overrides={"protocol": "softtargets", "training.architecture": "resnet20"}).training
    assert (st.optimizer, st.lr, st.batch_size, st.epochs, st.augment) == ("adam", 1e-4, 32, 10, False)
    # ... and its unlearning recipe is the original's own per method (configs/unlearn of MoraiT01/SoftTargets)
    for method, lr in (("gradasc", 1e-5), ("graddiff", 5e-5)):
        u = load_config(overrides={"protocol": "softtargets", "unlearning.method": method}).unlearning
        assert (u.optimizer, u.lr, u.momentum, u.weight_decay, u.epochs, u.batch_size, u.clip_grad) == \
            ("sgd", lr, 0.9, 1e-4, 5, 32, 1.0)
    graddiff = load_config(overrides={"protocol": "softtargets", "unlearning.method": "graddiff"})
    assert graddiff.unlearning.params == {"alpha": 1.0, "gamma": 1.0} and graddiff.data.forget == "class:5"
    # a method the original did not have keeps its own settings; flags still win over the protocol
    assert load_config(overrides={"protocol": "softtargets", "unlearning.method": "finetune"}).unlearning.lr == 1e-4
    assert load_config(overrides={"protocol": "softtargets", "unlearning.method": "gradasc",
                                  "unlearning.lr": 1e-3}).unlearning.lr == 1e-3
    user = tmp_path / "mine.yaml"
    user.write_text("protocol: mlsbench\nunlearning: {lr: 5.0e-4}\ndata: {forget: 'class:1'}\n")
    from_file = load_config(str(user))
    assert from_file.unlearning.lr == 5e-4 and from_file.data.forget == "class:1" and from_file.seed == 42
    flags = load_config(str(user), {"unlearning.lr": 2e-4, "seed": 3})
    assert flags.unlearning.lr == 2e-4 and flags.seed == 3


def test_unknown_or_bad_protocols_fail_with_one_line(tmp_path, cli):
    with pytest.raises(SoftTargetsError, match="unknown protocol 'nope': choose one of .*mlsbench"):
        load_config(overrides={"protocol": "nope"})
    bad = tmp_path / "p.yaml"
    bad.write_text("config: {training: {epochs: 1}}\nreports: {}\n")
    with pytest.raises(SoftTargetsError, match=r"p\.yaml: unknown key 'reports'"):
        load_protocol(str(bad))
    code, _, err = cli("run", "--protocol", "nope")
    assert code == 2 and "unknown protocol 'nope'" in err


def test_protocol_metrics_use_the_protocols_names():
    metrics = {role: {"acc_test_retain_classes": 0.9, "acc_test_forget_classes": 0.1, "mia_auc": 0.4,
                      "unlearn_score": (0.9 + 0.9 + 0.6) / 3} for role in ("original", "reference", "unlearned")}
    report = protocol_metrics("mlsbench", metrics)
    assert report["unlearned"] == {"retain_acc": 0.9, "forget_acc": 0.1, "forget_mia_auc": 0.4,
                                   "unlearn_score": pytest.approx(0.8)}
    assert report["missing"] == []
    del metrics["reference"]["unlearn_score"]
    assert protocol_metrics("mlsbench", metrics)["missing"] == ["unlearn_score"]
    assert protocol_metrics(None, metrics) is None


class Recorder(Method):
    """Records what the loop hands to step(): which batches, and the learning rate."""

    name = "recorder"
    needs = ("forget",)
    driver = "forget"

    def setup(self, ctx):
        super().setup(ctx)
        self.calls = []

    def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
        self.calls.append((epoch, retain_batch is not None, forget_batch is not None,
                           optimizer.param_groups[0]["lr"]))
        return {"loss": soft_cross_entropy(model(forget_batch.x), forget_batch.t)}


def recorded(tmp_path, overrides):
    cfg = load_config(overrides={"data.forget": "class:0", "training.epochs": 1, "device": "cpu",
                                 "unlearning.method": "finetune",  # no parameters; Recorder runs instead
                                 "cache_dir": str(tmp_path / "cache"), **overrides})
    prepared = prepare(cfg, Hooks(), load_dataset("digits"))
    _, method, outcome = unlearn_copy(cfg, Recorder, prepared, Hooks())
    return prepared, method.calls, outcome


def test_mlsbench_driver_pairs_batches_over_the_retain_set(tmp_path):
    prepared, calls, outcome = recorded(tmp_path, {"protocol": "mlsbench", "unlearning.epochs": 2,
                                                   "training.architecture": "mlp"})
    retain_steps = -(-len(prepared.split.retain_idx) // 128)
    assert outcome.steps == 2 * retain_steps  # an epoch is a pass over the retain set, not the forget set
    assert all(r and f for _, r, f, _ in calls)  # every step receives both batches
    _, plain, _ = recorded(tmp_path, {"unlearning.epochs": 1, "unlearning.batch_size": 128})
    assert len(plain) == -(-len(prepared.split.forget_idx) // 128) and not any(r for _, r, _, _ in plain)


def test_challenge_cosine_schedule_steps_once_per_epoch(tmp_path):
    _, calls, _ = recorded(tmp_path, {"protocol": "challenge", "training.epochs": 1, "unlearning.epochs": 4})
    lrs = {epoch: {lr for e, _, _, lr in calls if e == epoch} for epoch in range(1, 5)}
    assert all(len(v) == 1 for v in lrs.values())  # constant within an epoch, as the starting kit
    expected = [0.1 * (1 + torch.cos(torch.tensor(torch.pi * e / 4)).item()) / 2 for e in range(4)]
    assert [lrs[e].pop() for e in range(1, 5)] == pytest.approx(expected)


def test_mlsbench_end_to_end_reports_its_metrics(tmp_path, cli):
    """The whole protocol through the CLI, scaled down for CPU (digits, mlp, 2 epochs each)."""
    code, out, err = cli("--quiet", "run", "--protocol", "mlsbench", "--architecture", "mlp", "--epochs", "2",
                         "--unlearn-epochs", "1", "--out", str(tmp_path / "runs"), "--cache-dir",
                         str(tmp_path / "cache"), "--device", "cpu")
    assert code == 0, err
    assert "protocol mlsbench" in out and "forget_mia_auc" in out
    result = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    report = result["protocol"]["unlearned"]
    assert set(report) == {"retain_acc", "forget_acc", "forget_mia_auc", "unlearn_score"}
    assert report["unlearn_score"] == pytest.approx(
        (report["retain_acc"] + 1 - report["forget_acc"] + 1 - report["forget_mia_auc"]) / 3)
    assert result["split"]["forget_classes"] == [0] and result["seed"] == 42
    # the reference never saw class 0, so it cannot classify its test images
    assert result["protocol"]["reference"]["forget_acc"] == 0.0


@pytest.mark.slow
@pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_mlsbench_fashion_mnist_mobilenet_v2_scaled_down(tmp_path, cli):
    """MLS-Bench's mobilenetv2-fmnist-class0 benchmark, scaled down for CPU: 1% of the data, 1 epoch each."""
    config = tmp_path / "small.yaml"
    config.write_text("data: {subset: 0.01}\n")
    code, out, err = cli("--quiet", "run", "--protocol", "mlsbench", "--dataset", "fashion_mnist",
                         "--architecture", "mobilenet_v2", "--epochs", "1", "--unlearn-epochs", "1",
                         "--config", str(config), "--out", str(tmp_path / "runs"),
                         "--cache-dir", str(tmp_path / "cache"), "--device", "cpu")
    assert code == 0, err
    result = json.loads(next((tmp_path / "runs").glob("*/result.json")).read_text())
    assert result["architecture"] == "mobilenet_v2" and result["split"]["forget"] == 60
    assert result["unlearning"]["steps"] == 5  # 540 retain images in batches of 128, forget cycled
    assert set(result["protocol"]["unlearned"]) == {"retain_acc", "forget_acc", "forget_mia_auc", "unlearn_score"}


@pytest.mark.parametrize("command", ["forget-quality", "relearn"])
def test_audits_take_protocols_too(cli, command):
    code, _, err = cli(command, "--protocol", "nope")
    assert code == 2 and "unknown protocol 'nope'" in err and len(err.strip().splitlines()) == 1

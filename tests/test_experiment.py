"""End-to-end behaviour of run_experiment on digits (seconds per run)."""

import json

import pytest
import torch

from softtargets.config import load_config, replace
from softtargets.data.batches import SplitData
from softtargets.data.datasets import make_bundle
from softtargets.experiment import prepare, run_experiment


@pytest.mark.parametrize("method", ["gradasc", "graddiff"])
def test_hard_and_soft_share_models_and_differ_in_results(fast, method):
    cfg = load_config(overrides={**fast, "unlearning.method": method})
    prepared = prepare(cfg)
    hard = run_experiment(replace(cfg, **{"targets.kind": "hard"}), prepared=prepared)
    soft = run_experiment(replace(cfg, **{"targets.kind": "soft", "targets.temperature": 2.0}), prepared=prepared)
    # a later, separately prepared run finds both models in the cache
    again = run_experiment(replace(cfg, **{"targets.kind": "soft", "targets.temperature": 2.0}))
    assert again["timings"]["original_cached"] and again["timings"]["reference_cached"]
    assert hard["metrics"]["reference"] == soft["metrics"]["reference"]
    assert hard["metrics"]["original"] == soft["metrics"]["original"]
    hu, su = hard["metrics"]["unlearned"], soft["metrics"]["unlearned"]
    assert hu["l2_to_original"] > 0 and su["l2_to_original"] > 0
    assert abs(hu["l2_to_reference"] - su["l2_to_reference"]) > 1e-4
    assert hu["per_class_test_loss"] != su["per_class_test_loss"]
    assert again["metrics"]["unlearned"] == su


def test_gradient_ascent_lowers_forget_accuracy(fast):
    cfg = load_config(overrides={**fast, "unlearning.method": "gradasc", "unlearning.lr": 1e-3})
    r = run_experiment(cfg)
    assert r["metrics"]["unlearned"]["acc_forget"] < r["metrics"]["original"]["acc_forget"]


def test_reference_never_sees_a_forget_image(fast, monkeypatch):
    """Each train image encodes its own index in its pixels; every image the reference trains on is decoded."""
    n = 300
    idx = torch.arange(n)
    x = torch.zeros(n, 1, 8, 8, dtype=torch.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = idx // 256, idx % 256
    x[:, 0, 4:, 4:] = (idx % 3 * 100).view(-1, 1, 1).to(torch.uint8)  # learnable class signal
    bundle = make_bundle("tagged", x, idx % 3, x[:30].clone(), (idx % 3)[:30], ["a", "b", "c"])
    seen = {"original": set(), "reference": set()}
    role = {"now": None}
    original_batches = SplitData.batches

    def spy(self, batch_size, generator=None, **kwargs):
        for b in original_batches(self, batch_size, generator, **kwargs):
            if role["now"] and generator is not None:
                xs = self.x[b.idx]
                seen[role["now"]].update((xs[:, 0, 0, 0].long() * 256 + xs[:, 0, 0, 1].long()).tolist())
            yield b

    import softtargets.experiment as experiment

    real_train = experiment.train_or_load

    def train_spy(r, *args, **kwargs):
        role["now"] = r
        try:
            return real_train(r, *args, **kwargs)
        finally:
            role["now"] = None

    monkeypatch.setattr(SplitData, "batches", spy)
    monkeypatch.setattr(experiment, "train_or_load", train_spy)
    cfg = load_config(overrides={**fast, "data.forget": "random:0.2", "training.epochs": 1})
    prepared = prepare(cfg, bundle=bundle)
    forget = set(prepared.split.forget_idx.tolist())
    assert len(forget) == 60
    assert seen["original"] == set(range(n))
    assert seen["reference"] == set(range(n)) - forget


def test_same_seed_twice_gives_identical_metrics(fast, tmp_path):
    results = []
    for i in range(2):  # separate caches: both runs train from scratch
        cfg = load_config(overrides={**fast, "cache_dir": str(tmp_path / f"cache{i}"), "out": str(tmp_path / f"o{i}")})
        r = run_experiment(cfg)
        results.append(json.loads((tmp_path / f"o{i}" / r["name"] / "result.json").read_text()))
    assert not results[0]["timings"]["original_cached"] and not results[1]["timings"]["original_cached"]
    assert results[0]["metrics"] == results[1]["metrics"]
    assert results[0]["unlearning"]["history"] == results[1]["unlearning"]["history"]


def test_run_folder_contents(fast):
    r = run_experiment(load_config(overrides=fast))
    folder = __import__("pathlib").Path(r["path"])
    names = {p.name for p in folder.iterdir()}
    assert {"config.yaml", "result.json", "metrics.jsonl", "per_class_accuracy.png", "per_class_loss.png",
            "unlearning_curves.png"} <= names
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    assert {r["series"] for r in rows} == {"original", "reference", "unlearn"}
    assert [r["step"] for r in rows if r["series"] == "unlearn"] == [1, 2]
    result = json.loads((folder / "result.json").read_text())
    assert result["status"] == "completed" and result["split"]["forget"] == 144
    assert set(result["metrics"]) == {"original", "reference", "unlearned"}
    assert result["timings"]["unlearn_s"] > 0 and result["versions"]["torch"]
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_plots_false_draws_no_pngs_and_changes_neither_the_metrics_nor_the_name(fast, tmp_path):
    from pathlib import Path

    import yaml

    drawn = run_experiment(load_config(overrides=fast))
    bare = run_experiment(load_config(overrides={**fast, "plots": False, "out": str(tmp_path / "bare")}))
    assert bare["name"] == drawn["name"] and bare["metrics"] == drawn["metrics"]
    assert not list(Path(bare["path"]).glob("*.png")) and len(list(Path(drawn["path"]).glob("*.png"))) == 3
    assert yaml.safe_load((Path(bare["path"]) / "config.yaml").read_text())["plots"] is False  # recorded
    assert "plots" not in yaml.safe_load((Path(drawn["path"]) / "config.yaml").read_text())  # the default: as before


def test_class_forgetting_reports_mlsbench_metrics(fast):
    cfg = load_config(overrides={**fast, "data.forget": "class:3", "unlearning.method": "gradasc",
                                 "unlearning.lr": 1e-3})
    m = run_experiment(cfg)["metrics"]
    assert m["reference"]["acc_test_forget_classes"] == 0.0  # never saw a 3
    for role in ("original", "reference", "unlearned"):
        assert 0 <= m[role]["unlearn_score"] <= 1
    assert m["unlearned"]["acc_test_forget_classes"] < m["original"]["acc_test_forget_classes"]

"""CUDA: the same numbers as the CPU to float tolerance, the same bits run to run (deterministic mode), the fast
path (CUDA graphs, batch order drawn on the device, stacked BatchNorm) against the eager step. Skipped where
no CUDA device is present; benchmarks/gpu_check.sh runs them on a GPU machine."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from softtargets.config import load_config
from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.datasets import load_dataset
from softtargets.hooks import Hooks
from softtargets.training.parallel import Job, fit_stacked, init_models
from softtargets.training.fit import fit, use_compute

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA, CPU = torch.device("cuda"), torch.device("cpu")


def digits_split(device: torch.device, n: int = 200, bundle=None) -> SplitData:
    data = DeviceData(bundle or load_dataset("digits"), device)
    return SplitData(data, data.train_x[:n], data.train_y[:n])


def trained(arch: str, device: torch.device, seeds=(0,), stacked=False, fast=False, **recipe) -> list:
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 2, "device": device.type,
                                 **{f"training.{k}": v for k, v in recipe.items()}})
    use_compute(cfg)
    split = digits_split(device)
    models = init_models([Job("original", split, s, {}) for s in seeds], cfg.training, device)
    if stacked or fast:
        fit_stacked(models, [split] * len(seeds), list(seeds), cfg.training, Hooks(), "t", fast=fast)
    else:
        for seed, model in zip(seeds, models):
            fit(model, split, cfg.training, seed, Hooks(), "t")
    return [{k: v.detach().cpu() for k, v in m.state_dict().items()} for m in models]


def assert_close(a: dict, b: dict, atol: float) -> None:
    for name in a:
        assert torch.allclose(a[name].double(), b[name].double(), atol=atol, rtol=1e-3), (name, (a[name].double() - b[name].double()).abs().max())


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resnet20"])
def test_cuda_training_matches_cpu_to_float_tolerance(arch):
    """The default path draws the batch order on the CPU, so a seed sees the same batches on both devices."""
    recipe = {"lr": 1e-3} if arch == "resnet20" else {}  # at the recipe's 0.1 BatchNorm amplifies rounding
    (cpu,), (cuda,) = trained(arch, CPU, **recipe), trained(arch, CUDA, **recipe)
    assert_close(cpu, cuda, atol=1e-4)


@pytest.mark.parametrize("arch", ["mlp", "cnn", "resnet20", "mobilenet_v2"])
def test_deterministic_training_gives_the_same_bits_twice(arch):
    first, second = trained(arch, CUDA), trained(arch, CUDA)
    assert torch.are_deterministic_algorithms_enabled()
    for name in first:
        assert torch.equal(first[name], second[name]), name


def test_the_same_cell_twice_gives_identical_metrics(tmp_path):
    from softtargets.experiment import run_experiment

    overrides = {"device": "cuda", "training.epochs": 2, "unlearning.epochs": 1, "training.architecture": "cnn",
                 "unlearning.method": "graddiff", "targets.kind": "soft", "targets.temperature": 2.0,
                 "cache_dir": str(tmp_path / "cache")}
    one = run_experiment(load_config(overrides={**overrides, "out": str(tmp_path / "a")}))
    two = run_experiment(load_config(overrides={**overrides, "out": str(tmp_path / "b"),
                                                "cache_dir": str(tmp_path / "cache2")}))
    assert not two["timings"]["original_cached"]  # trained again, not loaded
    assert one["metrics"] == two["metrics"]


def test_metrics_on_the_gpu_match_the_cpu():
    from softtargets.data.splits import make_split
    from softtargets.evaluation import Logits, own_metrics

    bundle = load_dataset("digits")
    split = make_split("class:3", bundle.train_y, bundle.num_classes, 0)
    g = torch.Generator().manual_seed(0)
    sizes = (len(split.retain_idx), len(split.forget_idx), len(bundle.test_y))
    logits = Logits(*(torch.randn(n, 10, generator=g) * 3 for n in sizes))
    on = {d: own_metrics(Logits(*(t.to(d) for t in vars(logits).values())), DeviceData(bundle, d), split, 0)
          for d in (CPU, CUDA)}
    for key, value in on[CPU].items():
        assert np.allclose(on[CUDA][key], value, rtol=1e-6, atol=1e-9), key


def test_fast_path_graph_replays_equal_eager_steps():
    """The same device-drawn batches, once through the captured CUDA graph and once eagerly."""
    from softtargets.training.fast import fit_many

    for arch, recipe in (("mlp", {}), ("resnet20", {"augment": True, "schedule": "cosine", "lr": 0.01})):
        cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 2, "device": "cuda",
                                     **{f"training.{k}": v for k, v in recipe.items()}})
        use_compute(cfg)
        split = digits_split(CUDA, 150)  # a short last batch, run eagerly after the graph's steps
        results = []
        for capture in (True, False):
            models = init_models([Job("original", split, s, {}) for s in (0, 1)], cfg.training, CUDA)
            history = fit_many(models, [split] * 2, [0, 1], cfg.training, Hooks(), "t", capture=capture,
                               device_draws=True)
            results.append(([{k: v.cpu() for k, v in m.state_dict().items()} for m in models], history))
        (graph, graph_history), (eager, eager_history) = results
        for a, b in zip(graph, eager):
            assert_close(a, b, atol=1e-5)
        assert [r["loss"] for h in graph_history for r in h] == pytest.approx(
            [r["loss"] for h in eager_history for r in h], rel=1e-5)


def test_fast_path_is_deterministic_and_trains():
    first, second = trained("cnn", CUDA, seeds=(0, 1), fast=True), trained("cnn", CUDA, seeds=(0, 1), fast=True)
    for a, b in zip(first, second):
        for name in a:
            assert torch.equal(a[name], b[name]), name
    cfg = load_config(overrides={"training.architecture": "cnn"})
    (untrained,) = init_models([Job("original", digits_split(CUDA), 0, {})], cfg.training, CUDA)
    assert (first[0]["head.weight"] - untrained.head.weight.detach().cpu()).abs().max() > 1e-4
    assert not torch.equal(first[0]["head.weight"], first[1]["head.weight"])


def test_stacked_batchnorm_on_cuda_equals_sequential():
    recipe = {"lr": 1e-3, "augment": True}
    stacked = trained("resnet20", CUDA, seeds=(0, 1), stacked=True, **recipe)
    sequential = trained("resnet20", CUDA, seeds=(0, 1), **recipe)
    for a, b in zip(stacked, sequential):
        assert_close(a, b, atol=1e-4)


def test_compare_with_two_workers_on_one_gpu_gives_the_same_metrics(tmp_path):
    from softtargets.compare import compare

    summaries = []
    for workers in (1, 2):
        cfg = load_config(overrides={"device": "cuda", "training.epochs": 2, "unlearning.epochs": 1,
                                     "out": str(tmp_path / f"o{workers}"), "cache_dir": str(tmp_path / f"c{workers}")})
        summary = compare(cfg, [0, 1], "smooth", workers=workers)
        summaries.append({kind: [json.loads((Path(p) / "result.json").read_text())["metrics"] for p in paths]
                          for kind, paths in summary["runs"].items()})
    assert summaries[0] == summaries[1]


def _method_names() -> list[str]:
    from softtargets.methods import registry

    return sorted(registry())


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("cache"))


@pytest.mark.parametrize("method", _method_names())
def test_every_method_runs_in_deterministic_mode(method, shared_cache, tmp_path):
    """Deterministic mode refuses operations that have no deterministic CUDA kernel: every method's losses and
    updates must get through it (cnn, soft targets at T = 2, one unlearning epoch)."""
    from softtargets.experiment import run_experiment

    result = run_experiment(load_config(overrides={
        "device": "cuda", "training.architecture": "cnn", "training.epochs": 1, "unlearning.epochs": 1,
        "unlearning.method": method, "targets.kind": "soft", "targets.temperature": 2.0, "data.forget": "class:3",
        "cache_dir": shared_cache, "out": str(tmp_path)}))
    assert torch.are_deterministic_algorithms_enabled()
    assert result["status"] in ("completed", "diverged") and result["device"] == "cuda"

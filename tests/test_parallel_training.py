"""Seed-parallel training must give each seed the model sequential training gives it."""

import pytest
import torch

from softtargets.config import load_config
from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.datasets import load_dataset
from softtargets.experiment import prepare, train_models_in_parallel
from softtargets.hooks import Hooks
from softtargets.parallel_training import fit_stacked, init_models, Job
from softtargets.training import fit


@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_stacked_equals_sequential_per_seed(arch):
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 2})
    bundle = load_dataset("digits")
    data = DeviceData(bundle, torch.device("cpu"))
    split = SplitData(data, data.train_x[:400], data.train_y[:400])
    seeds = [0, 1, 2]
    jobs = [Job("original", split, s, {}) for s in seeds]
    stacked = init_models(jobs, cfg.training, data.device)
    sequential = init_models(jobs, cfg.training, data.device)
    assert not torch.equal(stacked[0].head.weight, stacked[1].head.weight)  # distinct initialisations
    histories = fit_stacked(stacked, [split] * 3, seeds, cfg.training, Hooks(), "original")
    for seed, model_s, model_q, history in zip(seeds, stacked, sequential, histories):
        expected = fit(model_q, split, cfg.training, seed, Hooks(), "original")
        for (name, a), b in zip(model_s.named_parameters(), model_q.parameters()):
            assert torch.allclose(a, b, atol=1e-5, rtol=1e-4), (seed, name, (a - b).abs().max())
        assert [r["loss"] for r in history] == pytest.approx([r["loss"] for r in expected], rel=1e-4)


def test_parallel_warm_up_fills_the_cache_that_prepare_reads(fast):
    cfg = load_config(overrides=fast)
    train_models_in_parallel(cfg, [0, 1], stacked=True)  # automatic on CUDA only; forced here
    for seed in (0, 1):
        prepared = prepare(load_config(overrides={**fast, "seed": seed}))
        assert prepared.info["original"]["cached"] and prepared.info["reference"]["cached"]
        assert prepared.info["reference"]["trained_with"] == "seed-parallel x2"
        assert prepared.metrics["original"]["acc_test"] > 0.5

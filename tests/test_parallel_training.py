"""Seed-parallel training must give each seed the model sequential training gives it."""

import time

import pytest
import torch

from softtargets.config import load_config
from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.datasets import load_dataset
from softtargets.experiment import prepare, train_models_in_parallel
from softtargets.hooks import Hooks
from softtargets.training.fast import fit_fast
from softtargets.training.parallel import fit_stacked, init_models, Job
from softtargets.training.fit import fit


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


def test_stacked_batchnorm_equals_sequential_per_seed():
    """resnet20 (BatchNorm after every convolution) with augmentation: stacked, every model normalises with its
    own batch's statistics and keeps its own running statistics."""
    # lr 1e-3, not the recipe's 0.1: at 0.1 the few-step, batch-32 BatchNorm statistics amplify the rounding
    # differences of vmap's batched convolutions (against channels-last ones) to ~1e-3 within two steps
    cfg = load_config(overrides={"training.architecture": "resnet20", "training.epochs": 1, "training.batch_size": 32,
                                 "training.augment": True, "training.lr": 1e-3})
    bundle = load_dataset("digits")
    data = DeviceData(bundle, torch.device("cpu"))
    split = SplitData(data, data.train_x[:80], data.train_y[:80])  # 3 steps, the last one short
    seeds = [0, 2]
    jobs = [Job("original", split, s, {}) for s in seeds]
    stacked, sequential = init_models(jobs, cfg.training, data.device), init_models(jobs, cfg.training, data.device)
    histories = fit_stacked(stacked, [split] * 2, seeds, cfg.training, Hooks(), "original")
    for seed, model_s, model_q, history in zip(seeds, stacked, sequential, histories):
        expected = fit(model_q, split, cfg.training, seed, Hooks(), "original")
        assert model_s.features[1].num_batches_tracked.item() == 3
        for (name, a), b in zip(model_s.state_dict().items(), model_q.state_dict().values()):
            assert torch.allclose(a.float(), b.float(), atol=1e-5, rtol=1e-4), (seed, name, (a - b).abs().max())
        assert [r["loss"] for r in history] == pytest.approx([r["loss"] for r in expected], rel=1e-4)
    moved = stacked[0].features[1].running_mean
    assert not torch.equal(moved, stacked[1].features[1].running_mean)  # each model its own statistics
    assert moved.abs().sum() > 0


@pytest.mark.parametrize("arch,augment", [("mlp", False), ("resnet20", True)])
def test_fast_path_step_equals_fit_bit_for_bit_on_cpu(arch, augment):
    """The fast path's step (static batch buffers, random numbers drawn into them, a short last batch done
    eagerly) run eagerly with CPU generators draws what training.fit draws and computes what it computes."""
    cfg = load_config(overrides={"training.architecture": arch, "training.epochs": 2, "training.augment": augment})
    bundle = load_dataset("digits")
    data = DeviceData(bundle, torch.device("cpu"))
    split = SplitData(data, data.train_x[:150], data.train_y[:150])  # 5 steps per epoch, the last one short
    (fast,), (plain,) = (init_models([Job("original", split, 3, {})], cfg.training, data.device) for _ in range(2))
    history = fit_fast([fast], [split], [3], cfg.training, Hooks(), "original")[0]
    assert history == fit(plain, split, cfg.training, 3, Hooks(), "original")
    for (name, a), b in zip(fast.state_dict().items(), plain.state_dict().values()):
        assert torch.equal(a, b), name
    assert not torch.equal(fast.head.weight, init_models([Job("original", split, 3, {})], cfg.training,
                                                         data.device)[0].head.weight)  # it trained


def test_fill_cache_trains_the_models_nobody_else_is_training_first(tmp_path):
    """Two processes needing the same models (two forget-quality audits of one split in a sweep): while the lock
    of seed 0's model is held (here by this test, as another process training it would), fill_cache trains seed 1
    instead of waiting, then waits for seed 0 and, finding no entry once the lock is free, trains it."""
    import threading

    from softtargets import locks
    from softtargets.training.fit import ModelCache
    from softtargets.training.parallel import _key, fill_cache

    cfg = load_config(overrides={"training.epochs": 1})
    data = DeviceData(load_dataset("digits"), torch.device("cpu"))
    split = SplitData(data, data.train_x[:200], data.train_y[:200])
    cache = ModelCache(tmp_path / "cache")
    jobs = [Job("reference", split, s, {"test": "free first"}) for s in (0, 1)]
    cache.root.mkdir(parents=True)
    other = locks.FileLock(cache.root / f"{_key(jobs[0], cfg.training)}.lock", "training the reference model")
    assert other.try_acquire() == locks.HELD and cache.busy(_key(jobs[0], cfg.training))
    seen = {}

    def release_once_seed_1_is_cached():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (cache.root / f"{_key(jobs[1], cfg.training)}.pt").exists():
            time.sleep(0.05)
        seen["seed 1 cached while seed 0 was locked"] = (cache.root / f"{_key(jobs[1], cfg.training)}.pt").exists()
        seen["seed 0 cached then"] = (cache.root / f"{_key(jobs[0], cfg.training)}.pt").exists()
        other.release()

    releaser = threading.Thread(target=release_once_seed_1_is_cached)
    releaser.start()
    assert fill_cache(jobs, cfg.training, cache) == 2
    releaser.join()
    assert seen == {"seed 1 cached while seed 0 was locked": True, "seed 0 cached then": False}
    assert all(cache.load(_key(job, cfg.training), "reference") is not None for job in jobs)
    assert not cache.busy(_key(jobs[0], cfg.training))

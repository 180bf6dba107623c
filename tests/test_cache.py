"""The verified model cache: every entry carries its role, key and SHA-256; whatever fails verification (a bit flip,
swapped files, wrong tensor names, an entry without a checksum) is recomputed with one warning, and a cache that
cannot be written never costs the trained model (issue 18)."""

import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys

import pytest
import torch

from softtargets import locks
from softtargets.cache import TensorCache
from softtargets.config import load_config
from softtargets.experiment import prepare


def config(root):
    return load_config(overrides={"training.epochs": 1, "cache_dir": str(root / "cache"), "device": "cpu",
                                  "out": str(root / "runs")})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One original and reference trained into a cache that each test gets a copy of."""
    root = tmp_path_factory.mktemp("trained")
    return root / "cache", prepare(config(root))


@pytest.fixture
def cfg(tmp_path, trained):
    shutil.copytree(trained[0], tmp_path / "cache")
    return config(tmp_path)


@pytest.fixture
def first(trained):
    return trained[1]


def entries(tmp_path) -> dict[str, str]:
    """role -> key of the model cache's entries (roles: original, reference, logits x2)."""
    metas = [json.loads(p.read_text()) for p in (tmp_path / "cache" / "models").glob("*.json")]
    return {m["role"] if m["role"] != "logits" else f"logits-{m['key'][:8]}": m["key"] for m in metas}


def state(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_entries_carry_role_key_and_checksum_and_load_back(cfg, first, tmp_path, caplog):
    keys = entries(tmp_path)
    assert {"original", "reference"} <= set(keys) and len(keys) == 4
    for role, key in keys.items():
        meta = json.loads((tmp_path / "cache" / "models" / f"{key}.json").read_text())
        assert meta["key"] == key and len(meta["sha256"]) == 64 and meta["role"] in role
    again = prepare(cfg)
    assert again.info["original"]["cached"] and again.info["reference"]["cached"]
    assert same(state(again.original), state(first.original)) and not warnings(caplog)


def test_a_flipped_bit_is_retrained_with_one_warning(cfg, first, tmp_path, caplog):
    weights = tmp_path / "cache" / "models" / f"{entries(tmp_path)['original']}.pt"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x10  # inside the tensor data: torch.load would read it without complaint
    weights.write_bytes(bytes(raw))
    again = prepare(cfg)
    assert [w for w in warnings(caplog) if "failed verification" in w] == [w for w in warnings(caplog)]
    assert len(warnings(caplog)) == 1 and "checksum mismatch" in warnings(caplog)[0]
    assert not again.info["original"]["cached"] and again.info["reference"]["cached"]
    assert same(state(again.original), state(first.original))  # retrained to the very same weights
    assert again.metrics["original"]["acc_forget"] == first.metrics["original"]["acc_forget"]


def test_swapped_original_and_reference_are_never_trusted(cfg, first, tmp_path, caplog):
    keys, models = entries(tmp_path), tmp_path / "cache" / "models"
    for suffix in (".pt", ".json"):  # the original's files now hold the reference and vice versa
        a, b = models / f"{keys['original']}{suffix}", models / f"{keys['reference']}{suffix}"
        shutil.move(a, models / "swap")
        shutil.move(b, a)
        shutil.move(models / "swap", b)
    again = prepare(cfg)
    assert sum("failed verification" in w and "it holds" in w for w in warnings(caplog)) == 2
    assert not again.info["original"]["cached"] and not again.info["reference"]["cached"]
    assert same(state(again.original), state(first.original)) and same(state(again.reference),
                                                                      state(first.reference))
    assert not same(state(again.original), state(first.reference))


def test_an_entry_with_the_wrong_tensor_names_is_retrained_not_a_crash(cfg, first, tmp_path, caplog):
    key = entries(tmp_path)["original"]
    renamed = {f"other.{name}": t for name, t in first.original.state_dict().items()}
    TensorCache(tmp_path / "cache").save(key, renamed, {"seconds": 1.0, "history": []}, "original")
    again = prepare(cfg)  # a checksummed entry of the right role and key, but not this architecture's tensors
    assert any("wrong tensor names" in w for w in warnings(caplog))
    assert not again.info["original"]["cached"] and same(state(again.original), state(first.original))
    assert prepare(cfg).info["original"]["cached"]  # the retrained entry replaced it


def test_entries_without_a_checksum_and_damaged_logits_are_recomputed(cfg, first, tmp_path, caplog):
    keys, models = entries(tmp_path), tmp_path / "cache" / "models"
    meta_file = models / f"{keys['reference']}.json"
    meta = json.loads(meta_file.read_text())
    meta_file.write_text(json.dumps({k: v for k, v in meta.items() if k != "sha256"}))  # an older version's entry
    logits = next(models / f"{k}.pt" for role, k in keys.items() if role.startswith("logits"))
    logits.write_bytes(logits.read_bytes()[:-7] + b"garbage")
    again = prepare(cfg)
    assert any("no checksum" in w for w in warnings(caplog)) and any("checksum mismatch" in w
                                                                    for w in warnings(caplog))
    assert not again.info["reference"]["cached"]
    assert again.metrics == first.metrics


def test_a_cache_that_cannot_be_written_keeps_the_trained_models(tmp_path, caplog):
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "models").write_text("a file where the cache folder should be")
    prepared = prepare(config(tmp_path))
    assert not prepared.info["original"]["cached"]
    assert 0 < prepared.metrics["original"]["acc_test"] <= 1
    assert any("could not write cache entry" in w and "keeps its original" in w for w in warnings(caplog))


# Concurrency: one process trains a missing model, the others wait for it and load it (issue 25).
HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
time.sleep(600)
"""


def start_run(root, cache):
    """`softtargets run` with config()'s recipe into cache; returns once it waits for the original's lock."""
    proc = subprocess.Popen([sys.executable, "-m", "softtargets", "--debug", "run", "--epochs", "1", "--device", "cpu",
                             "--tracker", "none", "--out", str(root / "runs"), "--cache-dir", str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "waiting for" in line:
            return proc, line
    proc.wait()
    pytest.fail("the run never waited for the lock: " + "".join(seen[-5:]))


def finish(proc, root) -> dict:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    (result,) = [json.loads(p.read_text()) for p in (root / "runs").glob("*/result.json")]
    return result


def test_a_run_needing_a_model_another_process_trains_waits_and_loads_it(cfg, first, tmp_path):
    key = entries(tmp_path)["original"]
    cache = tmp_path / "empty"
    (cache / "models").mkdir(parents=True)
    lock = locks.FileLock(cache / "models" / f"{key}.lock", "training the original model")
    assert lock.try_acquire() == locks.HELD  # this test is the process that trains the original
    proc, line = start_run(tmp_path / "b", cache)
    assert f"host {locks.HOST} pid {os.getpid()}" in line and "(training the original model)" in line
    for suffix in (".pt", ".json"):  # 'training' done: the entry appears, then the lock is released
        shutil.copy(tmp_path / "cache" / "models" / f"{key}{suffix}", cache / "models")
    lock.release()
    result = finish(proc, tmp_path / "b")
    assert result["timings"]["original_cached"] and not result["timings"]["reference_cached"]
    assert result["metrics"]["original"]["acc_test"] == first.metrics["original"]["acc_test"]
    assert not list((cache / "models").glob("*.lock"))


def test_a_killed_trainer_s_lock_is_taken_over_and_the_waiter_trains(cfg, first, tmp_path):
    key = entries(tmp_path)["original"]
    cache = tmp_path / "empty"
    (cache / "models").mkdir(parents=True)
    owner = subprocess.Popen([sys.executable, "-c", HOLD, str(cache / "models" / f"{key}.lock")],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout.readline().strip() == "held"
        proc, line = start_run(tmp_path / "b", cache)
        assert f"pid {owner.pid}" not in line  # the holder wrote no owner: 'another process'
        owner.kill()  # kill -9 of the process training the original
        result = finish(proc, tmp_path / "b")
    finally:
        owner.kill()
        owner.wait()
    assert not result["timings"]["original_cached"]  # trained by the waiter, to the same model
    assert result["metrics"]["original"]["acc_test"] == first.metrics["original"]["acc_test"]
    assert not list((cache / "models").glob("*.lock"))
    assert prepare(dataclasses.replace(cfg, cache_dir=str(cache))).info["original"]["cached"]  # a sound entry

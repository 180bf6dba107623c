"""Training of the original model and the retrained reference, through the content-keyed model cache."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import asdict
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from softtargets.cache import TensorCache
from softtargets.config import TrainConfig
from softtargets.data.batches import SplitData
from softtargets.errors import SoftTargetsError
from softtargets.hooks import Hooks
from softtargets.models import build_model

log = logging.getLogger(__name__)
CACHE_VERSION = 1  # bump when training code changes what a cached model would be

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine")


class Diverged(Exception):
    """A loss became NaN or infinite; the run is recorded with status 'diverged'."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda") and not name.startswith("cuda:"):
        raise SoftTargetsError(f"unknown device '{name}': choose auto, cpu or cuda")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SoftTargetsError("--device cuda was given but no CUDA GPU is visible: use --device cpu or auto")
    return torch.device(name)


def use_threads(threads: int) -> None:
    """Run torch's CPU kernels and the BLAS under numpy/scikit-learn with exactly `threads` threads."""
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(threads)
    threadpool_limits(threads)


CUBLAS_DETERMINISTIC = (":4096:8", ":16:8")  # the cuBLAS workspace settings NVIDIA documents as reproducible


def use_compute(cfg) -> torch.device:
    """Resolve cfg.device and fix what decides a run's exact bits in this process: the CPU thread count and,
    on CUDA, deterministic kernels (cfg.deterministic). Returns the device.

    Call it before the process's first tensor operation: work done on more threads than a run then uses (say,
    loading data at torch's default of one thread per core) changes that run's results in their last bits on
    CPU, though the thread count is the same during the run. Measured: a study-2 relearning attack (4,690 Adam
    steps) whose data was loaded on 2 threads ended at AUC 0.40791045 instead of 0.40790956, and at 0.4138 when
    the models were also trained in that process. With the threads set first, the same attack gave the same
    weights whatever ran before it (tried: loading the data first, training the models, computing logits).

    Deterministic CUDA: torch.use_deterministic_algorithms(True) (deterministic variants of scatter/index_add
    and friends; an operation without one raises instead of silently varying), cuDNN deterministic with
    autotuning (benchmark) off, and a fixed cuBLAS workspace (CUBLAS_WORKSPACE_CONFIG, read when CUDA starts,
    so the package sets it on import: softtargets/__init__.py). On CPU nothing of this is touched: CPU kernels
    are deterministic for a fixed thread count, and deterministic mode would only add checks and the NaN
    filling of new tensors."""
    device = resolve_device(cfg.device)
    use_threads(cfg.threads)
    if device.type == "cuda":
        use_deterministic_cuda(cfg.deterministic)
    return device


def check_deterministic_cuda() -> None:
    """The cuBLAS workspace setting deterministic CUDA needs (softtargets sets it on import unless the
    environment already has a value)."""
    value = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    if value not in CUBLAS_DETERMINISTIC:
        raise SoftTargetsError(f"deterministic CUDA needs CUBLAS_WORKSPACE_CONFIG=:4096:8 (or :16:8), but the "
                               f"environment has {value!r}: unset it, or pass --no-deterministic")


def use_deterministic_cuda(on: bool) -> None:
    if on:
        check_deterministic_cuda()
    torch.use_deterministic_algorithms(on)
    torch.backends.cudnn.deterministic = on
    torch.backends.cudnn.benchmark = False  # autotuning picks kernels by timing: a different pick, other bits


def compute_tag(device: torch.device, threads: int, deterministic: bool = True, fast_cuda: bool = False) -> str:
    """What besides data, recipe and seed decides a trained model's exact bits (part of its cache key): the
    thread count on CPU; on CUDA the GPU model, deterministic mode and the training path (fast_cuda draws the
    batch order on the device)."""
    if device.type == "cpu":
        return f"cpu, {threads} thread{'s' if threads != 1 else ''}"
    if device.type != "cuda":
        return device.type
    parts = [f"cuda ({torch.cuda.get_device_name(device)})", "deterministic" if deterministic else "nondeterministic"]
    return ", ".join(parts + (["fast"] if fast_cuda else []))


def make_optimizer(params, name: str, lr: float | torch.Tensor, weight_decay: float = 0.0, momentum: float = 0.9,
                   fused: bool = False, capturable: bool = False):
    """fused=True runs the whole update in one kernel: on CPU it more than doubles the MLP's training
    throughput, whose step time is dominated by the optimizer's memory traffic (docs/benchmarks.md).
    capturable=True (CUDA graphs, training/fast.py) keeps Adam's step count on the device; SGD has none."""
    extra = {"capturable": True} if capturable else {}
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=fused, **extra)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=fused, **extra)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, fused=fused)
    raise SoftTargetsError(f"unknown optimizer '{name}': choose one of {', '.join(OPTIMIZERS)}")


def make_scheduler(optimizer, schedule: str, total_steps: int):
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    raise SoftTargetsError(f"unknown schedule '{schedule}': choose one of {', '.join(SCHEDULES)}")


def check_finite(loss: torch.Tensor, where: str) -> None:
    if not torch.isfinite(loss):
        raise Diverged(f"{where}: loss is {loss.item()}")


def fit(model: nn.Module, split: SplitData, recipe: TrainConfig, seed: int, hooks: Hooks, series: str) -> list[dict]:
    """Plain supervised training with cross-entropy on hard labels; one epoch is one pass over split."""
    generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(split) / recipe.batch_size)
    channels_last = use_channels_last(model, split.data.device)
    optimizer = make_optimizer(model.parameters(), recipe.optimizer, recipe.lr, recipe.weight_decay, recipe.momentum,
                               fused=True)
    scheduler = make_scheduler(optimizer, recipe.schedule, recipe.epochs * steps_per_epoch)
    history = []
    model.train()
    with hooks.progress(f"train {series}", recipe.epochs * steps_per_epoch) as advance:
        for epoch in range(1, recipe.epochs + 1):
            total_loss = torch.zeros((), device=split.data.device)
            correct = torch.zeros((), device=split.data.device)
            for batch in split.batches(recipe.batch_size, generator, augment=recipe.augment):
                x = batch.x.contiguous(memory_format=torch.channels_last) if channels_last else batch.x
                logits = model(x)
                loss = F.cross_entropy(logits, batch.y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total_loss += loss.detach() * len(batch.y)
                correct += (logits.argmax(1) == batch.y).sum()
                advance(1)
            row = {"epoch": epoch, "loss": total_loss.item() / len(split), "acc": correct.item() / len(split)}
            if not math.isfinite(row["loss"]):
                raise Diverged(f"training {series} diverged at epoch {epoch}")
            hooks.scalars(series, epoch, {k: v for k, v in row.items() if k != "epoch"})
            history.append(row)
    return history


def use_channels_last(model: nn.Module, device: torch.device) -> bool:
    """Convolutions on CPU run faster in channels-last layout (oneDNN): convert the model once, in place,
    before its optimizer is created. Returns whether batches should be converted too."""
    if device.type != "cpu" or not any(isinstance(m, nn.Conv2d) for m in model.modules()):
        return False
    model.to(memory_format=torch.channels_last)
    return True


class ModelCache(TensorCache):
    """Trained models (and their logits) in CACHE_DIR/models, keyed by everything that determines them."""

    @staticmethod
    def key(**parts) -> str:
        parts["cache_version"] = CACHE_VERSION
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:24]


def train_or_load(role: str, split: SplitData, recipe: TrainConfig, seed: int, cache: ModelCache,
                  cache_parts: dict, hooks: Hooks, trainer: Callable | None = None) -> tuple[nn.Module, dict]:
    """The original (role='original', all train data) or reference (role='reference', retain only) model.

    Returns the model and info {seconds, history, cached}. Same seed -> same initial weights and batch order.
    trainer: what trains a missing model, fit's signature (default fit; fast.fit_one for the CUDA fast
    path, whose models have their own compute tag in cache_parts).
    """
    bundle = split.data.bundle
    key = ModelCache.key(role=role, recipe=asdict(recipe), seed=seed, **cache_parts)
    torch.manual_seed(seed)
    model = build_model(recipe.architecture, bundle.input_shape, bundle.num_classes).to(split.data.device)
    hit = cache.load(key, role, like=model.state_dict())
    if hit is None:
        # one process trains a missing model, the others wait for it and load it (softtargets.locks)
        with cache.lock(key, f"training the {role} model") as waited:
            hit = cache.load(key, role, like=model.state_dict()) if waited else None
            if hit is None:
                return model, _train(model, split, recipe, seed, cache, key, role, hooks, trainer)
    state, meta = hit
    model.load_state_dict(state)
    return model, {**meta, "cached": True, "cache_key": key}


def _train(model: nn.Module, split: SplitData, recipe: TrainConfig, seed: int, cache: ModelCache, key: str,
           role: str, hooks: Hooks, trainer: Callable | None) -> dict:
    """Train model in place and save it to the cache; returns its info."""
    start = time.perf_counter()
    history = (trainer or fit)(model, split, recipe, seed, hooks, role)
    model.to(memory_format=torch.contiguous_format)  # as a cached model loads: later steps see one layout
    if split.data.device.type == "cuda":
        torch.cuda.synchronize()
    meta = {"seconds": time.perf_counter() - start, "history": history}
    cache.save(key, {k: v.cpu() for k, v in model.state_dict().items()}, meta, role)
    return {**meta, "cached": False, "cache_key": key}

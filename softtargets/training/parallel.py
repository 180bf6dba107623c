"""Seed-parallel training: K models of one architecture and recipe, different seeds, trained as one stacked
model (torch.func.stack_module_state + functional_call + vmap).

Each model keeps its own initialisation (torch.manual_seed(seed)), its own batch order (a generator seeded
with its seed) and its own data (e.g. the retain set of its seed's split); only the arithmetic is batched.
Adam, AdamW and SGD update every element independently, so one optimizer over the stacked tensors equals K
separate optimizers. The loss is the sum of the K per-model mean losses, whose gradient with respect to model
k's parameters is exactly model k's own gradient. Results equal sequential training up to float rounding.

Used to fill the model cache before per-seed work (compare, sweep, forget-quality): afterwards every
train_or_load() call finds its model. BatchNorm buffers are stacked too: each model normalises with its own
batch's statistics and updates its own running statistics (vmap updates a stacked buffer in place per model).

Stacking pays where per-step launch overhead dominates (a GPU running small models). On a 2-core CPU it does
not: there a batch-32 step of these models is bound by memory traffic (weights, gradients and Adam state are
read and written once per model whatever the stacking), and vmap adds overhead, so stacked training measured
0.5-0.7x the speed of sequential training (docs/benchmarks.md). fill_cache therefore stacks on CUDA only,
unless asked to, and BatchNorm models there only on the fast path (stacked BatchNorm is tested against
sequential training on CPU, but has not yet run on a GPU). The training loop itself is fast.fit_many.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn

from softtargets.config import TrainConfig
from softtargets.data.batches import SplitData
from softtargets.training.fast import fit_fast, fit_many
from softtargets.hooks import Hooks
from softtargets.models import build_model
from softtargets.training.fit import ModelCache, train_or_load

MAX_STACK = 16  # models per stacked group: beyond this the gain flattens and memory grows


@dataclass
class Job:
    """One model to train: its role, data, seed and the cache-key parts that identify it."""

    role: str
    split: SplitData
    seed: int
    cache_parts: dict


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def fill_cache(jobs: list[Job], recipe: TrainConfig, cache: ModelCache, hooks: Hooks | None = None,
               stacked: bool | None = None, fast: bool = False) -> int:
    """Train every job whose model is not cached yet, in stacked groups (stacked=None: on CUDA only, and
    BatchNorm models only with fast); fast: the CUDA fast path (fast.py) for every group, single
    models included. Returns how many were trained."""
    hooks = hooks or Hooks()
    if cache.root is None or not jobs:
        return 0
    automatic = stacked is None
    if automatic:
        stacked = jobs[0].split.data.device.type == "cuda"
    todo = [j for j in jobs if cache.load(_key(j, recipe), j.role) is None]
    groups: dict[tuple, list[Job]] = {}
    for job in todo:  # stackable: same role and the same number of training examples
        groups.setdefault((job.role, len(job.split)), []).append(job)
    for group in groups.values():
        for start in range(0, len(group), MAX_STACK):
            chunk = group[start:start + MAX_STACK]
            sequential = not stacked or len(chunk) == 1 or (automatic and not fast and _uses_batchnorm(chunk[0],
                                                                                                      recipe))
            if sequential and not fast:
                _train_free_first(chunk, recipe, cache, hooks)
            else:
                _train_stacked(chunk, recipe, cache, hooks, fast)
    return len(todo)


def _train_free_first(jobs: list[Job], recipe: TrainConfig, cache: ModelCache, hooks: Hooks) -> None:
    """Train the jobs one by one, first those no other process is training, then wait for (and load) the others.
    Two processes that need the same models (two forget-quality audits of one split in a sweep) so train
    different ones at once instead of one waiting for each model the other trains."""
    deferred = []
    for job in jobs:
        if cache.busy(_key(job, recipe)):
            deferred.append(job)
        else:
            train_or_load(job.role, job.split, recipe, job.seed, cache, job.cache_parts, hooks)
    for job in deferred:
        train_or_load(job.role, job.split, recipe, job.seed, cache, job.cache_parts, hooks)


def _key(job: Job, recipe: TrainConfig) -> str:
    return ModelCache.key(role=job.role, recipe=asdict(recipe), seed=job.seed, **job.cache_parts)


def _uses_batchnorm(job: Job, recipe: TrainConfig) -> bool:
    bundle = job.split.data.bundle
    return has_batchnorm(build_model(recipe.architecture, bundle.input_shape, bundle.num_classes))


def init_models(jobs: list[Job], recipe: TrainConfig, device: torch.device) -> list[nn.Module]:
    """Each model initialised exactly as train_or_load does: torch.manual_seed(seed), then build."""
    models = []
    for job in jobs:
        bundle = job.split.data.bundle
        torch.manual_seed(job.seed)
        models.append(build_model(recipe.architecture, bundle.input_shape, bundle.num_classes).to(device))
    return models


def fit_stacked(models: list[nn.Module], splits: list[SplitData], seeds: list[int], recipe: TrainConfig,
                hooks: Hooks, series: str, fast: bool = False) -> list[list[dict]]:
    """Train the models together; returns each model's per-epoch history. Weights and buffers (BatchNorm
    statistics) are copied back in place. fast: the CUDA fast path (fast.py)."""
    if fast:
        return fit_fast(models, splits, seeds, recipe, hooks, series)
    return fit_many(models, splits, seeds, recipe, hooks, series)


def _train_stacked(jobs: list[Job], recipe: TrainConfig, cache: ModelCache, hooks: Hooks, fast: bool = False
                   ) -> None:
    device = jobs[0].split.data.device
    models = init_models(jobs, recipe, device)
    start = time.perf_counter()
    histories = fit_stacked(models, [j.split for j in jobs], [j.seed for j in jobs], recipe, hooks, jobs[0].role,
                            fast)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / len(jobs)  # amortised per model
    how = ("fast " if fast else "") + f"seed-parallel x{len(jobs)}"
    for job, model, history in zip(jobs, models, histories):
        meta = {"seconds": seconds, "history": history, "trained_with": how}
        cache.save(_key(job, recipe), {k: v.cpu() for k, v in model.state_dict().items()}, meta, job.role)

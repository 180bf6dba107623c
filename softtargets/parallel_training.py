"""Seed-parallel training: K models of one architecture and recipe, different seeds, trained as one stacked
model (torch.func.stack_module_state + functional_call + vmap).

Each model keeps its own initialisation (torch.manual_seed(seed)), its own batch order (a generator seeded
with its seed) and its own data (e.g. the retain set of its seed's split); only the arithmetic is batched.
Adam, AdamW and SGD update every element independently, so one optimizer over the stacked tensors equals K
separate optimizers. The loss is the sum of the K per-model mean losses, whose gradient with respect to model
k's parameters is exactly model k's own gradient. Results equal sequential training up to float rounding.

Used to fill the model cache before per-seed work (compare, sweep, forget-quality): afterwards every
train_or_load() call finds its model. Models with BatchNorm (running statistics are buffers that vmap
cannot update in place) are trained sequentially.

Stacking pays where per-step launch overhead dominates (a GPU running small models). On a 2-core CPU it does
not: there a batch-32 step of these models is bound by memory traffic (weights, gradients and Adam state are
read and written once per model whatever the stacking), and vmap adds overhead, so stacked training measured
0.5-0.7x the speed of sequential training (docs/benchmarks.md). fill_cache therefore stacks on CUDA only,
unless asked to.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from softtargets.config import TrainConfig
from softtargets.data.batches import SplitData
from softtargets.hooks import Hooks
from softtargets.models import build_model
from softtargets.training import Diverged, ModelCache, make_optimizer, make_scheduler, train_or_load

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
               stacked: bool | None = None) -> int:
    """Train every job whose model is not cached yet, in stacked groups (stacked=None: on CUDA only);
    returns how many were trained."""
    hooks = hooks or Hooks()
    if cache.root is None or not jobs:
        return 0
    if stacked is None:
        stacked = jobs[0].split.data.device.type == "cuda"
    todo = [j for j in jobs if cache.load(_key(j, recipe), j.role) is None]
    groups: dict[tuple, list[Job]] = {}
    for job in todo:  # stackable: same role and the same number of training examples
        groups.setdefault((job.role, len(job.split)), []).append(job)
    for group in groups.values():
        for start in range(0, len(group), MAX_STACK):
            chunk = group[start:start + MAX_STACK]
            if not stacked or len(chunk) == 1 or _uses_batchnorm(chunk[0], recipe):
                for job in chunk:
                    train_or_load(job.role, job.split, recipe, job.seed, cache, job.cache_parts, hooks)
            else:
                _train_stacked(chunk, recipe, cache, hooks)
    return len(todo)


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
                hooks: Hooks, series: str) -> list[list[dict]]:
    """Train the models together; returns each model's per-epoch history. Weights are copied back in place."""
    k, n = len(models), len(splits[0])
    device = splits[0].data.device
    params, buffers = stack_module_state(models)
    skeleton = copy.deepcopy(models[0]).to("meta")

    def forward(p, b, x):
        return functional_call(skeleton, (p, b), (x,))

    batched = vmap(forward)
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    steps_per_epoch = math.ceil(n / recipe.batch_size)
    optimizer = make_optimizer(params.values(), recipe.optimizer, recipe.lr, recipe.weight_decay, recipe.momentum,
                               fused=True)
    scheduler = make_scheduler(optimizer, recipe.schedule, recipe.epochs * steps_per_epoch)
    histories: list[list[dict]] = [[] for _ in range(k)]
    with hooks.progress(f"train {series} x{k}", recipe.epochs * steps_per_epoch) as advance:
        for epoch in range(1, recipe.epochs + 1):
            orders = [torch.randperm(n, generator=g) for g in generators]  # as index_batches does per model
            total_loss = torch.zeros(k, device=device)
            correct = torch.zeros(k, device=device)
            for step in range(steps_per_epoch):
                idx = [o[step * recipe.batch_size:(step + 1) * recipe.batch_size] for o in orders]
                batches = [s.batch(i, g if recipe.augment else None) for s, i, g in zip(splits, idx, generators)]
                x = torch.stack([b.x for b in batches])
                y = torch.stack([b.y for b in batches])
                logits = batched(params, buffers, x)
                losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="none").view(k, -1).mean(1)
                optimizer.zero_grad(set_to_none=True)
                losses.sum().backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total_loss += losses.detach() * y.shape[1]
                correct += (logits.argmax(2) == y).sum(1)
                advance(1)
            for i in range(k):
                row = {"epoch": epoch, "loss": total_loss[i].item() / n, "acc": correct[i].item() / n}
                if not math.isfinite(row["loss"]):
                    raise Diverged(f"training {series} (seed {seeds[i]}) diverged at epoch {epoch}")
                histories[i].append(row)
    with torch.no_grad():
        for i, model in enumerate(models):
            for name, p in model.named_parameters():
                p.copy_(params[name][i])
    return histories


def _train_stacked(jobs: list[Job], recipe: TrainConfig, cache: ModelCache, hooks: Hooks) -> None:
    device = jobs[0].split.data.device
    models = init_models(jobs, recipe, device)
    start = time.perf_counter()
    histories = fit_stacked(models, [j.split for j in jobs], [j.seed for j in jobs], recipe, hooks, jobs[0].role)
    seconds = (time.perf_counter() - start) / len(jobs)  # amortised per model
    for job, model, history in zip(jobs, models, histories):
        meta = {"seconds": seconds, "history": history, "trained_with": f"seed-parallel x{len(jobs)}"}
        cache.save(_key(job, recipe), {k: v.cpu() for k, v in model.state_dict().items()}, meta, job.role)

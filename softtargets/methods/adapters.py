"""Adapters so user code runs unchanged: a Method subclass as is, an MLS-Bench style class with
unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch) that updates the model itself, or a
NeurIPS 2023 challenge style function unlearning(net, retain_loader, forget_loader, val_loader) that edits
net in place."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from softtargets.data.batches import SplitData
from softtargets.errors import SoftTargetsError
from softtargets.methods.base import Method


def _number(value: Any) -> float:
    return float(value.detach()) if hasattr(value, "detach") else float(value)


def mlsbench_adapter(cls: type, ref: str) -> type[Method]:
    """Wrap an MLS-Bench UnlearningMethod; its batches are (images, labels) and it steps the optimizer."""

    class MLSBenchMethod(Method):
        name = ref
        summary = f"MLS-Bench style plugin {cls.__name__}"
        targets_use = "hard labels only: MLS-Bench code receives (images, labels) batches"
        driver = "retain"  # MLS-Bench: an epoch passes over the retain loader, forget batches cycled

        def setup(self, ctx):
            super().setup(ctx)
            self.inner = cls()

        def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
            out = self.inner.unlearn_step(model, (retain_batch.x, retain_batch.y),
                                          (forget_batch.x, forget_batch.y), optimizer, step, epoch)
            if not isinstance(out, dict) or "loss" not in out:
                raise SoftTargetsError(f"plugin '{ref}': unlearn_step must return a dict with a 'loss' entry")
            return {k: _number(v) for k, v in out.items()}

    return MLSBenchMethod


def loader(split: SplitData, batch_size: int, generator: torch.Generator | None) -> DataLoader:
    """A DataLoader of (images, labels) over a split's in-memory tensors: whole batches are indexed at once
    and normalised on the device; shuffled when a generator is given."""
    dataset = TensorDataset(split.x, split.y)
    order = RandomSampler(dataset, generator=generator) if generator is not None else SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None,
                      collate_fn=lambda xy: (split.data.normalise(xy[0]), xy[1]))


def challenge_adapter(func: Callable, ref: str) -> type[Method]:
    """Wrap a NeurIPS 2023 challenge function unlearning(net, retain_loader, forget_loader, val_loader); it runs
    once in setup() and the loop runs no steps (the unlearning config's optimizer and epochs are unused)."""

    class ChallengeMethod(Method):
        name = ref
        summary = f"NeurIPS-challenge style function {func.__name__}"
        targets_use = "hard labels only: challenge code receives (images, labels) loaders"

        def setup(self, ctx):
            super().setup(ctx)
            size = ctx.config.batch_size
            ctx.model.train()
            func(ctx.model, loader(ctx.retain, size, ctx.generator), loader(ctx.forget, size, ctx.generator),
                 loader(ctx.test, size, None))

        def phases(self, epoch):
            return []

    return ChallengeMethod


def _is_challenge_function(obj: Any) -> bool:
    if not inspect.isfunction(obj):
        return False
    params = [p for p in inspect.signature(obj).parameters.values() if p.default is inspect.Parameter.empty]
    return len(params) == 4


def adapt(obj: Any, ref: str) -> type[Method]:
    if inspect.isclass(obj) and issubclass(obj, Method):
        if not obj.name:
            obj.name = ref
        return obj
    if inspect.isclass(obj) and callable(getattr(obj, "unlearn_step", None)):
        return mlsbench_adapter(obj, ref)
    if _is_challenge_function(obj):
        return challenge_adapter(obj, ref)
    raise SoftTargetsError(
        f"plugin '{ref}' is neither a softtargets Method subclass, a class with "
        "unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch), nor a function "
        "unlearning(net, retain_loader, forget_loader, val_loader)"
    )

"""Adapters so user code runs unchanged: a Method subclass as is; an MLS-Bench style class with
unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch) that updates the model itself; a
NeurIPS 2023 challenge style function unlearning(net, retain_loader, forget_loader, val_loader) that edits net
in place or returns the unlearned net (a copy, as some published variants do: the returned weights are used);
or a class with run(net, retain_loader, forget_loader, val_loader), the same contract as a method.

Adapted code sees (images, labels) only, never target distributions: its hard and soft runs are identical,
so adapters set uses_targets = False and compare/report say so instead of comparing."""

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
        uses_targets = False
        driver = "retain"  # MLS-Bench: an epoch passes over the retain loader, forget batches cycled

        def setup(self, ctx):
            super().setup(ctx)
            self.inner = cls()

        def step(self, model, retain_batch, forget_batch, optimizer, step, epoch):
            # the harness counts epochs from 0 (`for epoch in range(unlearn_epochs)`; its SCRUB baseline's
            # `if epoch < self.msteps` means "the first msteps epochs"); the loop here counts from 1
            out = self.inner.unlearn_step(model, (retain_batch.x, retain_batch.y),
                                          (forget_batch.x, forget_batch.y), optimizer, step, epoch - 1)
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


def challenge_adapter(func: Callable, ref: str, kind: str = "function") -> type[Method]:
    """Wrap func(net, retain_loader, forget_loader, val_loader) (a challenge function, or a bound run() of a
    run-style class); it runs once in setup() and the loop runs no steps (the unlearning config's optimizer and
    epochs are unused). A returned net other than the one passed in (e.g. a deep copy) is the unlearned model:
    its weights are copied into the run's model."""

    class ChallengeMethod(Method):
        name = ref
        summary = f"NeurIPS-challenge style {kind} {getattr(func, '__qualname__', ref)}"
        targets_use = "hard labels only: challenge code receives (images, labels) loaders"
        uses_targets = False

        def setup(self, ctx):
            super().setup(ctx)
            size = ctx.config.batch_size
            ctx.model.train()
            returned = func(ctx.model, loader(ctx.retain, size, ctx.generator), loader(ctx.forget, size, ctx.generator),
                            loader(ctx.test, size, None))
            if isinstance(returned, torch.nn.Module) and returned is not ctx.model:
                try:
                    ctx.model.load_state_dict(returned.state_dict())
                except RuntimeError as err:
                    first = str(err).strip().splitlines()[0]
                    raise SoftTargetsError(f"plugin '{ref}' returned a network whose weights do not fit the "
                                           f"{type(ctx.model).__name__} it was given ({first}): return the "
                                           f"unlearned copy of the net it received") from None

        def phases(self, epoch):
            return []

    return ChallengeMethod


def run_class_adapter(cls: type, ref: str) -> type[Method]:
    """A class with run(net, retain_loader, forget_loader, val_loader): one instance per run, then as a
    challenge function."""
    adapted = challenge_adapter(lambda *loaders: cls().run(*loaders), ref, "class")
    adapted.summary = f"challenge-style class {cls.__name__}.run"
    return adapted


def _takes_four(func: Any, bound: bool = False) -> bool:
    """A callable with four required positional parameters (net and three loaders), after self if bound."""
    params = [p for p in inspect.signature(func).parameters.values() if p.default is inspect.Parameter.empty
              and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(params) == 4 + bound


def adapt(obj: Any, ref: str) -> type[Method]:
    if inspect.isclass(obj) and issubclass(obj, Method):
        if not obj.name:
            obj.name = ref
        return obj
    if inspect.isclass(obj) and callable(getattr(obj, "unlearn_step", None)):
        return mlsbench_adapter(obj, ref)
    if inspect.isclass(obj) and inspect.isfunction(getattr(obj, "run", None)) and _takes_four(obj.run, bound=True):
        return run_class_adapter(obj, ref)
    if inspect.isfunction(obj) and _takes_four(obj):
        return challenge_adapter(obj, ref)
    raise SoftTargetsError(
        f"plugin '{ref}' is neither a softtargets Method subclass, a class with "
        "unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch) or "
        "run(net, retain_loader, forget_loader, val_loader), nor a function "
        "unlearning(net, retain_loader, forget_loader, val_loader)"
    )

"""Adapters so user code runs unchanged: a Method subclass as is, or an MLS-Bench style class with
unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch) that updates the model itself."""

from __future__ import annotations

import inspect
from typing import Any

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


def adapt(obj: Any, ref: str) -> type[Method]:
    if inspect.isclass(obj) and issubclass(obj, Method):
        if not obj.name:
            obj.name = ref
        return obj
    if inspect.isclass(obj) and callable(getattr(obj, "unlearn_step", None)):
        return mlsbench_adapter(obj, ref)
    raise SoftTargetsError(
        f"plugin '{ref}' is neither a softtargets Method subclass nor a class with "
        "unlearn_step(model, retain_batch, forget_batch, optimizer, step, epoch)"
    )

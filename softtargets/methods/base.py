"""The Method interface (the registry and plugin loading: softtargets/methods/__init__.py).

A method is one file in softtargets/methods/ with a Method subclass, plus configs/unlearn/<name>.yaml.
The loop calls setup(ctx) once (one-off work belongs there: perturbing weights, a saliency mask, noise
synthesis, or a whole function-style method), then, per epoch, runs the method's phases(epoch): each phase
is one pass over a driver split with batches of the other split cycled, calling
step(model, retain_batch, forget_batch, optimizer, step, epoch) with self.phase set to the phase's name.
step returns a dict of losses (the terms named in target_terms with their graph); if its "loss" still requires grad, the loop does zero_grad, backward,
after_backward() (gradient masks), the shared gradient clipping, optimizer.step() and after_step(). A method
that updates the model itself (as MLS-Bench code does) returns detached numbers and the loop only records
them. An epoch with no phases ends the loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
import torch.nn as nn

from softtargets.config import TargetConfig, UnlearnConfig, as_float, as_int
from softtargets.data.batches import Batch, DeviceData, SplitData
from softtargets.errors import SoftTargetsError, brief
from softtargets.hooks import Hooks


@dataclass(frozen=True)
class Phase:
    """One pass of an epoch: over the driver split (or `split`, a subset of it), the other needed split cycled."""

    name: str
    driver: str  # "retain" | "forget"
    needs: tuple[str, ...]  # which batches step() receives; the other is None
    split: SplitData | None = None  # e.g. UNSIR's and Bad Teacher's retain subsets


@dataclass
class Context:
    """What a method may use in setup(): the frozen original, the splits with their targets, the config."""

    model: nn.Module  # the model being unlearned (starts as a copy of the original)
    original: nn.Module  # frozen copy of the original weights, eval mode
    data: DeviceData
    retain: SplitData  # retain-train images, labels and targets
    forget: SplitData  # forget-train images, labels and targets
    test: SplitData
    config: UnlearnConfig
    targets: TargetConfig
    num_classes: int
    seed: int
    generator: torch.Generator
    hooks: Hooks = field(default_factory=Hooks)

    @property
    def device(self) -> torch.device:
        return self.data.device

    @torch.no_grad()
    def teacher_probs(self, x: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
        """softmax(f_original(x) / T): the frozen original as a teacher (SCRUB, Bad Teacher)."""
        return torch.softmax(self.original(x).float() / temperature, dim=1)


class Method:
    """Base class. Subclasses set the class attributes and implement step()."""

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one-line definition, shown by `softtargets list methods`
    targets_use: ClassVar[str] = ""  # where target distributions enter; "no target term" where true
    uses_targets: ClassVar[bool] = True  # False: sees labels only (adapted plugins), so hard = soft exactly
    defaults: ClassVar[dict[str, Any]] = {}  # method parameters and their defaults (a value takes its default's type)
    bounds: ClassVar[dict[str, str]] = {}  # allowed intervals of numeric parameters, e.g. {"ratio": "(0, 1]"}
    needs: ClassVar[tuple[str, ...]] = ("retain", "forget")  # which batches step() receives
    driver: ClassVar[str] = "forget"  # the split one epoch passes over once; the other is cycled
    train_mode: ClassVar[bool] = True  # model.train() during unlearning (BatchNorm/dropout behaviour)
    # keys of step()'s result that are loss terms consuming targets, returned with their graph (the loop
    # detaches them): the run probes their gradient at the original weights (unlearning.probe_target_terms)
    target_terms: ClassVar[tuple[str, ...]] = ()
    # splits ("retain", "forget") whose targets enter a KL term: they must be distributions, so negative label
    # smoothing there is refused before any work (experiment.validate)
    kl_targets: ClassVar[tuple[str, ...]] = ()
    # target kinds this method refuses on the forget split, with the reason (e.g. delete: hard would teach the label)
    refused_kinds: ClassVar[dict[str, str]] = {}

    def __init__(self, **params: Any):
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            allowed = ", ".join(self.defaults) or "none"
            raise SoftTargetsError(
                f"method '{self.name}' has no parameter {brief(unknown[0])} (parameters: {allowed})"
            )
        merged = dict(self.defaults)
        for key, value in params.items():
            merged[key] = typed_param(f"method '{self.name}': parameter '{key}'", value, self.defaults[key])
        for key, interval in self.bounds.items():
            check_interval(f"method '{self.name}': parameter '{key}'", merged[key], interval)
        self.params = merged
        for key, value in merged.items():
            setattr(self, key, value)
        self.ctx: Context | None = None
        self.phase = ""  # the name of the phase the loop is running

    def setup(self, ctx: Context) -> None:
        self.ctx = ctx

    def phases(self, epoch: int) -> list[Phase]:
        """The passes of one epoch; by default one pass over `driver`. Return [] to end the loop."""
        return [Phase("unlearn", self.driver, self.needs)]

    def step(self, model: nn.Module, retain_batch: Batch | None, forget_batch: Batch | None,
             optimizer: torch.optim.Optimizer, step: int, epoch: int) -> dict[str, Any]:
        raise NotImplementedError

    def after_backward(self, model: nn.Module) -> None:
        """Called between backward and clipping (e.g. SalUn masks gradients)."""

    def after_step(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
        """Called after each optimizer step (e.g. SalUn resets masked weights)."""


def typed_param(where: str, value: Any, default: Any) -> Any:
    """A parameter value in its default's type: a float default takes finite numbers (3 -> 3.0, never True), an int
    default integers, a bool default booleans, a list default a list of its elements' type; a None default
    (plugins) anything but nan/inf."""
    try:
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, int):
            return as_int(value)
        if isinstance(default, float):
            return as_float(value)
        if isinstance(default, str):
            if isinstance(value, (dict, list, tuple, bool)) or value is None:
                raise ValueError
            return str(value)
        if isinstance(default, (list, tuple)):
            if not isinstance(value, (list, tuple)):
                raise ValueError
            return [typed_param(f"{where}[{i}]", v, default[0]) if default else v for i, v in enumerate(value)]
        if isinstance(value, float):
            return as_float(value)
        return value
    except (TypeError, ValueError, OverflowError):
        kind = {bool: "true or false", int: "an integer", float: "a finite number", str: "a string"}
        what = next((text for t, text in kind.items() if type(default) is t), None)
        if what is None and isinstance(default, (list, tuple)):
            what = "a list like " + brief(list(default))
        raise SoftTargetsError(f"{where} must be {what or 'a finite value'}, got {brief(value)}") from None


def check_interval(where: str, value: Any, interval: str) -> None:
    """value in an interval written as in mathematics: '(0, 1]', '[0, inf)'."""
    low, high = (float(part) for part in interval[1:-1].split(","))
    above = value > low if interval[0] == "(" else value >= low
    below = value < high if interval[-1] == ")" else value <= high
    if not (above and below):
        raise SoftTargetsError(f"{where} must be in {interval}, got {brief(value)}")


def take(split: SplitData, idx: torch.Tensor) -> SplitData:
    """The examples idx of a split, with their targets (method-specific subsets: UNSIR, Bad Teacher)."""
    return split.subset(idx)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Per-phase or scheduled learning rates (SCRUB milestones, UNSIR repair) on the loop's optimizer."""
    for group in optimizer.param_groups:
        group["lr"] = lr

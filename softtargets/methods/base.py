"""The Method interface, the registry, and plugin loading.

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

import hashlib
import importlib
import importlib.util
import inspect
import pkgutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn as nn

from softtargets.config import TargetConfig, UnlearnConfig, as_float, as_int
from softtargets.data.batches import Batch, DeviceData, SplitData
from softtargets.errors import SoftTargetsError, brief, one_line
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


def _builtin_modules() -> list[str]:
    import softtargets.methods as pkg

    return [m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name not in {"base"} and not m.name.startswith("_")]


def registry() -> dict[str, type[Method]]:
    """Built-in methods by name, discovered from the modules of softtargets.methods."""
    found: dict[str, type[Method]] = {}
    for module_name in _builtin_modules():
        module = importlib.import_module(f"softtargets.methods.{module_name}")
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, Method) and obj.name and obj.__module__ == module.__name__:
                found[obj.name] = obj
    return dict(sorted(found.items()))


_plugins: dict[tuple[str, str], type[Method]] = {}  # (module file or name, attribute) -> adapted class


def load_plugin(ref: str) -> type[Method]:
    """'package.module:ClassName' or 'path/to/file.py:ClassName' -> a Method class (adapting seed-style code).

    A plugin file is imported once per process (cached by its resolved path), with its own folder and that
    folder's parent on sys.path, so a challenge-style `methods/MyMethod.py` can import its neighbours
    (`import helpers`) and its package (`from methods.helpers import x`)."""
    target, _, attr = ref.rpartition(":")
    if not target or not attr:
        raise SoftTargetsError(f"plugin '{ref}' must look like package.module:ClassName or path/file.py:ClassName")
    if target.endswith(".py"):
        path = Path(target)
        if not path.is_file():
            raise SoftTargetsError(f"plugin file {path} not found: check the path in --mu_algo")
        path = path.resolve()
        key = (str(path), attr)
        if key in _plugins:
            return _plugins[key]
        module = _import_file(path)
    else:
        key = (target, attr)
        if key in _plugins:
            return _plugins[key]
        try:
            module = importlib.import_module(target)
        except (Exception, SystemExit) as err:
            raise SoftTargetsError(f"cannot import plugin module '{target}': {_describe(err)}") from None
    obj = getattr(module, attr, None)
    if obj is None:
        raise SoftTargetsError(f"plugin '{ref}': '{target}' has no attribute '{attr}'")
    from softtargets.methods.adapters import adapt

    _plugins[key] = adapt(obj, ref)
    return _plugins[key]


def _import_file(path: Path):
    """Execute a plugin file once per process: later references to it reuse the module."""
    name = f"softtargets_plugin_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}_{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    for folder in (path.parent.parent, path.parent):  # the parent for package imports, the folder for neighbours
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except (Exception, SystemExit) as err:  # a plugin that calls sys.exit() while importing stops nothing
        del sys.modules[name]
        raise SoftTargetsError(f"plugin file {path} failed to import: {_describe(err)}") from None
    return module


def _describe(err: BaseException) -> str:
    if isinstance(err, SystemExit):
        return f"it called sys.exit({brief(err.code)}) while importing: remove that call from module level"
    return f"{type(err).__name__}: {one_line(err)}"


def get_method_class(name: str) -> type[Method]:
    if ":" in name:
        return load_plugin(name)
    methods = registry()
    if name not in methods:
        raise SoftTargetsError(
            f"unknown method '{name}': choose one of {', '.join(methods)} or give package.module:ClassName"
        )
    return methods[name]

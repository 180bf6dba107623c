"""Typed run configuration: defaults <- configs/*.yaml <- --config FILE <- CLI flags, validated once.

Every section is a frozen dataclass. Loading checks each key against the dataclass fields and each
value against the field's type, so a typo in a YAML file fails early with the file and key named.

The original SoftTargets tool's own files (MoraiT01/SoftTargets configs/training/*.yaml, configs/unlearn/*.yaml)
are read as they are: a `training:` or `unlearning:` section that uses the original's key names
(learning_rate, loss_function, save_path) is translated (learning_rate -> lr, optimizer names in any case);
keys softtargets does not use there (save_path, loss_function: the original always trains with
CrossEntropyLoss, dev:src/training/train.py and src/unlearn/base.py) are named once in a warning and
ignored. A file with just one section and no method (architecture) is named after it, as the original's
main.py picks configs/unlearn/{mu_algo}.yaml and configs/training/{architecture}.yaml. A shipped method YAML may
hold a `targets:` mapping, the method's default targets (delete: masked), layered below protocols, --config and
flags like the rest of that file. Sections in
softtargets' own format stay strict. Several --config files layer in order (the original keeps training and
unlearning in separate files).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from softtargets.errors import SoftTargetsError, brief

log = logging.getLogger(__name__)
ORIGINAL_MARKERS = {"learning_rate", "loss_function", "save_path"}  # keys only the original tool's YAML files use
ORIGINAL_RENAMED = {"learning_rate": "lr"}
_reported: set[tuple] = set()  # (file, section, keys) already warned about in this process


def configs_dir() -> Path:
    """The shipped configs: packaged as softtargets/configs, or the repository's configs/ in a checkout."""
    packaged = Path(__file__).parent / "configs"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "configs"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    forget: str = "random:0.1"  # the NeurIPS 2023 challenge's protocol: a random 10% of the train set
    root: str = "data"
    holdout: float = 0.2  # folder:PATH without train/ and test/ subfolders: stratified test fraction
    subset: float | None = None  # keep a fixed stratified fraction of train and test (quick CPU tries)
    memorisation: str | None = None  # scores for low_mem/high_mem selection: .npy/.npz, None = estimated


@dataclass(frozen=True)
class TrainConfig:
    """The recipe of the original model and the retrained reference (identical for both)."""

    architecture: str = "mlp"
    optimizer: str = "adam"
    lr: float = 1e-4
    batch_size: int = 32
    epochs: int = 10
    weight_decay: float = 0.0
    momentum: float = 0.9
    schedule: str = "constant"
    augment: bool = False  # random crop (zero padding 4) + horizontal flip of training batches only


@dataclass(frozen=True)
class UnlearnConfig:
    method: str = "graddiff"
    epochs: int = 5
    optimizer: str = "adam"
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.0
    momentum: float = 0.9
    clip_grad: float | None = None  # max global gradient norm; None = no clipping
    stop_at_reference: bool = False  # stop once forget accuracy reaches the reference's
    retain_floor: float | None = None  # stop if retain accuracy falls below this fraction
    schedule: str = "constant"  # or cosine: CosineAnnealingLR(T_max=epochs) stepped once per epoch
    driver: str | None = None  # retain|forget: every step gets both batches, an epoch passes over this split
    augment: bool = False  # crop + flip of unlearning batches (MLS-Bench's harness)
    params: dict = field(default_factory=dict)  # method-specific, validated by the method


@dataclass(frozen=True)
class TargetConfig:
    """Which distributions the losses use. kind applies to the forget split, retain_kind to the retain split."""

    kind: str = "hard"
    retain_kind: str | None = None  # None: same as kind
    temperature: float = 1.0
    smoothing: float = 0.1


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = DataConfig()
    training: TrainConfig = TrainConfig()
    unlearning: UnlearnConfig = UnlearnConfig()
    targets: TargetConfig = TargetConfig()
    seed: int = 0
    device: str = "auto"
    out: str = "runs"
    cache_dir: str = ".cache/softtargets"
    # CPU intra-op threads of every training and unlearning step: parallel sums change with the thread count
    # (~1e-7), so a fixed count keeps the same cell's metrics identical under `run`, `compare` and sweeps
    threads: int = 1
    protocol: str | None = None  # a preset layered below --config and flags (softtargets.protocols)
    # CUDA only (no effect on CPU): deterministic kernels (training.use_compute), and the CUDA training path
    # not yet run on a GPU (training/fast.py: CUDA graphs, batch order drawn on the device, BatchNorm stacking)
    deterministic: bool = True
    fast_cuda: bool = False
    # also train a second exact retrain (the reference's recipe and retain set, initialisation seed + 1) and
    # measure it against the reference: the distance exact retraining itself leaves (experiment.FLOOR_OFFSET)
    floor: bool = False
    # the run folder's own PNGs (per-class accuracy and loss, unlearning curves); a sweep's report draws its own
    # figures, so a large grid may leave them out (`plots: false`): no metric changes, nor the run's name
    plots: bool = True

    def to_dict(self) -> dict:
        """Every setting, except keys added after runs were first named (LATER_KEYS) while at their default:
        config.yaml and run names of a cell stay what they were, so a resumed sweep finds its finished runs."""
        values = dataclasses.asdict(self)
        for (section, key), default in LATER_KEYS.items():
            where = values if section is None else values[section]
            if where[key] == default:
                del where[key]
        return values


# settings added after the 30-seed study began (issue 15; issue 16: the CUDA-only top-level keys, section None);
# a missing key is its default (config_from_dict)
LATER_KEYS = {("data", "memorisation"): None, ("unlearning", "augment"): False, (None, "deterministic"): True,
              (None, "fast_cuda"): False, (None, "floor"): False, (None, "plots"): True}


SECTIONS = {"data": DataConfig, "training": TrainConfig, "unlearning": UnlearnConfig, "targets": TargetConfig}
TOP_LEVEL = {"seed", "device", "out", "cache_dir", "protocol", "threads", "deterministic", "fast_cuda", "floor",
             "plots"}


MAX_YAML_BYTES = 1 << 20  # config, grid and protocol files are small; a bigger one is a mistake
MAX_YAML_VALUES = 100_000  # scalars and containers after aliases are followed (a "billion laughs" stops here)
MAX_SEED = 2**32 - 1  # numpy, torch and scikit-learn all accept seeds in 0..2**32-1


def read_yaml(path: str | Path) -> dict:
    """Read a YAML mapping with safe_load; unreadable, oversized or invalid files raise one clear error."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_YAML_BYTES:
            raise SoftTargetsError(f"{path} is {size:,} bytes: a YAML config must be under {MAX_YAML_BYTES:,} bytes")
        loaded = yaml.safe_load(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise SoftTargetsError(f"config file {path} not found: check the path") from None
    except OSError as err:
        raise SoftTargetsError(f"cannot read config file {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise SoftTargetsError(f"{path} is not UTF-8 text (byte {err.start}): save it as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise SoftTargetsError(f"invalid YAML in {path}{where}: fix the syntax") from None
    check_yaml_size(loaded, str(path))
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise SoftTargetsError(f"{path} must contain a YAML mapping (key: value), not {type(loaded).__name__}")
    return loaded


def check_yaml_size(value: Any, source: str) -> None:
    """Refuse a loaded YAML value that expands to more than MAX_YAML_VALUES values. safe_load shares aliased
    nodes, so a small file can describe an exponentially large value; this walk stops at the limit, before
    anything (an error message, a hash, a JSON dump) expands it."""
    pending, seen = [value], 0
    while pending:
        item = pending.pop()
        seen += 1
        if seen > MAX_YAML_VALUES:
            raise SoftTargetsError(f"{source}: the YAML expands to more than {MAX_YAML_VALUES:,} values (aliases "
                                   "*name repeat their anchor's content): write the values out")
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, (list, tuple)):
            pending.extend(item)


def parse_value(text: str, source: str) -> Any:
    """A command-line value (--param KEY=VALUE) read as YAML: 0.5 -> float, [5, 8] -> list, abc -> str."""
    try:
        value = yaml.safe_load(text) if text else text
    except yaml.YAMLError:
        raise SoftTargetsError(f"{source}: {brief(text)} is not a valid value (YAML syntax)") from None
    check_yaml_size(value, source)
    return value


def check_seed(seed: Any, what: str = "--seed") -> int:
    """A seed is an integer in 0..MAX_SEED (numpy and scikit-learn reject negative or larger ones)."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise SoftTargetsError(f"{what} must be an integer in 0..{MAX_SEED}, got {brief(seed)}")
    return seed


_INTEGER = re.compile(r"[+-]?[0-9]+")


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Convert a YAML/CLI value to the field's type; YAML 1.1 reads '1e-4' as a string, so accept that.
    Floats must be finite: nan or inf in a learning rate, a temperature or a weight is never meant."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
    if hint is dict or typing.get_origin(hint) is dict:
        if not isinstance(value, dict):
            raise SoftTargetsError(f"{where} must be a mapping")
        return dict(value)
    try:
        if hint is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in {"true", "yes", "1"}:
                return True
            if str(value).lower() in {"false", "no", "0"}:
                return False
            raise ValueError
        if hint is int:
            return as_int(value)
        if hint is float:
            return as_float(value)
        if hint is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
    except (TypeError, ValueError, OverflowError):
        what = "a finite number" if hint is float else hint.__name__
        raise SoftTargetsError(f"{where} must be {what}, got {brief(value)}") from None
    return value


def as_int(value: Any) -> int:
    """An integer from an int, an integral float (3.0, 1e3) or such a string; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int):
        return value
    if isinstance(value, str) and _INTEGER.fullmatch(value.strip()):
        return int(value.strip())
    number = float(value) if isinstance(value, (float, str)) else None
    if number is None or not math.isfinite(number) or number != int(number):
        raise ValueError
    return int(number)


def as_float(value: Any) -> float:
    """A finite float from a number or a numeric string; ValueError for bools, lists, nan and inf."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError
    number = float(value)
    if not math.isfinite(number):
        raise ValueError
    return number


def build_section(cls: type, values: dict, source: str, section: str) -> Any:
    """Build a frozen dataclass from a mapping, rejecting unknown keys and ill-typed values."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in names:
            raise SoftTargetsError(
                f"{source}: unknown key {brief(key)} in section '{section}' (allowed: {', '.join(names)})"
            )
    kwargs = {k: _coerce(v, hints[k], f"{source}: '{section}.{k}'") for k, v in values.items()}
    if isinstance(kwargs.get("optimizer"), str):
        kwargs["optimizer"] = kwargs["optimizer"].lower()  # SGD, Adam as the original tool writes them
    return cls(**kwargs)


def _original_sections(user: dict, path: str | None) -> list[str]:
    """Translate the training/unlearning sections written in the original tool's format, in place; returns
    their names. A file holding just one such section and no method (architecture) is named after one, as
    the original's files are (configs/unlearn/RMU.yaml -> rmu, configs/training/mlp.yaml -> mlp)."""
    found = []
    for name in ("training", "unlearning"):
        section = user.get(name)
        if not isinstance(section, dict):
            continue
        key = "method" if name == "unlearning" else "architecture"
        stem = Path(path).stem.lower() if path else ""
        if set(user) == {name} and key not in section and stem in _shipped_names(key):
            section[key] = stem
        if not ORIGINAL_MARKERS & set(section):
            continue
        for theirs, ours in ORIGINAL_RENAMED.items():
            if theirs in section:
                if ours in section:
                    raise SoftTargetsError(f"{path}: section '{name}' gives both '{theirs}' and '{ours}': keep one")
                section[ours] = section.pop(theirs)
        found.append(name)
    return found


def _shipped_names(key: str) -> set[str]:
    """The built-in methods or architectures (what an original-style file may be named after)."""
    from softtargets import catalogue

    return set(catalogue.methods() if key == "method" else catalogue.architectures())


def _drop_unused(user: dict, name: str, keys: set, method: str, source: str) -> None:
    """Remove the keys of an original-format section that softtargets does not use; warn once per file."""
    known = {f.name for f in dataclasses.fields(SECTIONS[name])} - {"params"}
    if name == "unlearning" and ":" in method:
        return  # a plugin's parameters are known once experiment.validate imports it; it refuses unknown keys
    if name == "unlearning":
        known |= set(_method_parameters(method))
    unused = sorted(k for k in keys if k not in known)
    for key in unused:
        user[name].pop(key, None)
    if unused and (source, name, tuple(unused)) not in _reported:
        _reported.add((source, name, tuple(unused)))
        log.warning("%s: section '%s' is in the original SoftTargets tool's format; ignoring %s (not used by "
                    "softtargets%s)", source, name, ", ".join(unused),
                    f" or by method {method}" if name == "unlearning" else "")


def _split_unlearn_yaml(values: dict) -> dict:
    """Unlearning YAMLs are flat: the loop's keys stay, everything else is a method parameter."""
    loop_keys = {f.name for f in dataclasses.fields(UnlearnConfig)} - {"params"}
    out = {k: v for k, v in values.items() if k in loop_keys}
    params = {k: v for k, v in values.items() if k not in loop_keys and k != "params"}
    params.update(values.get("params") or {})
    if params:
        out["params"] = params
    return out


def load_config(config_file: str | Path | list | tuple | None = None, overrides: dict | None = None) -> RunConfig:
    """Resolve a RunConfig. config_file: one file or several, later files overriding earlier ones (e.g. the
    original tool's training and unlearning files). overrides uses dotted keys, e.g. {'training.epochs': 3}."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    files = [config_file] if isinstance(config_file, (str, Path)) else list(config_file or [])
    source = ", ".join(map(str, files)) or "command line"
    user: dict = {}
    original: list[tuple[str, str, set]] = []  # (file, section, keys) of sections in the original tool's format
    for path in files:
        values = read_yaml(path)
        for name in _original_sections(values, str(path)):
            original.append((str(path), name, set(values[name])))
        for key, value in values.items():
            if key not in SECTIONS and key not in TOP_LEVEL:
                allowed = ", ".join([*SECTIONS, *sorted(TOP_LEVEL)])
                raise SoftTargetsError(f"{path}: unknown key {brief(key)} (allowed: {allowed})")
            if key in SECTIONS and not isinstance(value, dict):
                raise SoftTargetsError(f"{path}: section '{key}' must be a mapping")
            if key in SECTIONS:
                user.setdefault(key, {}).update(value)
            else:
                user[key] = value

    protocol_name = overrides.get("protocol") or user.get("protocol")
    preset = _protocol_layer(protocol_name)

    def pick(section: str, key: str, default: str) -> str:
        return str(overrides.get(f"{section}.{key}") or user.get(section, {}).get(key)
                   or preset.get(section, {}).get(key) or default)

    architecture = pick("training", "architecture", TrainConfig.architecture)
    method = pick("unlearning", "method", UnlearnConfig.method)
    _check_names(architecture, method)  # both name shipped YAML files below: never join an unchecked name
    preset = _protocol_layer(protocol_name, method)  # with the protocol's settings for this method, if any
    for path, name, keys in original:
        _drop_unused(user, name, keys, method, path)
    layered: dict[str, dict] = {name: {} for name in SECTIONS}
    recipe = configs_dir() / "training" / f"{architecture}.yaml"
    if recipe.is_file():
        layered["training"].update(read_yaml(recipe))
    method_yaml = configs_dir() / "unlearn" / f"{method}.yaml"
    if ":" not in method and method_yaml.is_file():  # a plugin reference is no file name here
        method_values = read_yaml(method_yaml)
        method_targets = method_values.pop("targets", {})  # the method's own default targets (delete: masked)
        if not isinstance(method_targets, dict):
            raise SoftTargetsError(f"{method_yaml}: 'targets' must be a mapping of the targets section's keys")
        layered["targets"].update(method_targets)
        layered["unlearning"].update(_split_unlearn_yaml(method_values))
    for layer in (preset, user):  # a protocol sits below the user's file
        for name in SECTIONS:
            section = dict(layer.get(name, {}))
            if name == "unlearning":
                section = _split_unlearn_yaml(section)
                params = {**layered[name].get("params", {}), **section.pop("params", {})}
                layered[name].update(section)
                if params:
                    layered[name]["params"] = params
            else:
                layered[name].update(section)
    top = {k: layer[k] for layer in (preset, user) for k in TOP_LEVEL if k in layer}
    for dotted, value in overrides.items():
        if "." in dotted:
            name, key = dotted.split(".", 1)
            if name == "unlearning" and key.startswith("params."):
                layered[name].setdefault("params", {})[key.split(".", 1)[1]] = value
            else:
                layered[name][key] = value
        else:
            top[dotted] = value
    layered["training"]["architecture"] = architecture
    layered["unlearning"]["method"] = method
    chosen = "data.forget" in overrides or "forget" in user.get("data", {})  # by flag or file, not by a protocol
    if not chosen and _has_forget_rows(str(layered["data"].get("dataset", ""))):
        layered["data"]["forget"] = "dataset"  # the dataset's own forget rows, as the original tool (any protocol)
    sections = {name: build_section(cls, layered[name], source, name) for name, cls in SECTIONS.items()}
    hints = typing.get_type_hints(RunConfig)
    top = {k: _coerce(v, hints[k], f"{source}: '{k}'") for k, v in top.items()}
    _check_method_keys(method, _split_unlearn_yaml(dict(user.get("unlearning", {}))).get("params", {}), source)
    return RunConfig(**sections, **top)


def _method_parameters(method: str) -> dict:
    """A built-in method's parameters and defaults, from the catalogue (read from the sources: config never
    imports the methods, torch or a plugin; experiment.validate imports a plugin and checks its parameters)."""
    from softtargets import catalogue

    if method not in catalogue.methods():
        raise SoftTargetsError(f"unknown method {brief(method)}: choose one of {', '.join(catalogue.methods())} or "
                               f"give package.module:ClassName")
    return catalogue.methods()[method].defaults


def _check_names(architecture: str, method: str) -> None:
    """A known architecture, and a built-in method or a plugin reference (package.module:Class, file.py:Class).
    Names are checked against the catalogue (read from the sources: no torch, no method registry); a plugin is
    imported, and a bad one refused, by experiment.validate before any work (sweeps validate every cell)."""
    from softtargets import catalogue

    if architecture not in catalogue.architectures():
        raise SoftTargetsError(f"unknown architecture {brief(architecture)}: choose one of "
                               f"{', '.join(catalogue.architectures())}")
    if ":" not in method:
        _method_parameters(method)


def _has_forget_rows(dataset: str) -> bool:
    """csv:PATH (f1_split) and folder:PATH with a `3e` forget folder name their own forget images."""
    if dataset.startswith("csv:"):
        return True
    if dataset.startswith("folder:"):
        from softtargets.data.files import has_forget_folders

        return has_forget_folders(Path(dataset[len("folder:"):]).expanduser())
    return False


PROTOCOL_KEYS = ("description", "config", "methods", "report")


@dataclass(frozen=True)
class Protocol:
    """A named preset that reproduces a seed system's setup (configs/protocols/<name>.yaml): a `description`,
    a `config` mapping (the same sections as a --config file), applied as a layer below --config files and
    flags, an optional `methods` mapping from a method name to that method's unlearning settings under the
    protocol (the source's own per-method configs), and an optional `report` mapping from the protocol's own
    metric names to softtargets metrics of the unlearned model (e.g. MLS-Bench's retain_acc is
    acc_test_retain_classes; softtargets.protocols.protocol_metrics). `--protocol` also takes a path to such
    a YAML file."""

    name: str
    description: str
    config: dict  # a config layer: sections data/training/unlearning/targets and top-level keys
    report: dict[str, str]  # protocol metric name -> softtargets metric of the unlearned model
    source: str
    methods: dict[str, dict] = field(default_factory=dict)  # method name -> its unlearning settings


def protocols_dir() -> Path:
    return configs_dir() / "protocols"


def available() -> list[str]:
    return sorted(p.stem for p in protocols_dir().glob("*.yaml"))


def load_protocol(name: str) -> Protocol:
    """A shipped protocol by name, or a protocol YAML file by path; every key is checked."""
    is_file = name.endswith((".yaml", ".yml"))
    path = Path(name) if is_file else protocols_dir() / f"{name}.yaml"
    if not path.is_file() or not (is_file or name in available()):  # a name never reaches outside the folder
        raise SoftTargetsError(f"unknown protocol {brief(name)}: choose one of {', '.join(available())} "
                               f"or give a protocol .yaml file")
    values = read_yaml(path)
    unknown = sorted(set(values) - set(PROTOCOL_KEYS))
    if unknown:
        raise SoftTargetsError(f"{path}: unknown key '{unknown[0]}' (allowed: {', '.join(PROTOCOL_KEYS)})")
    layer, report, methods = values.get("config") or {}, values.get("report") or {}, values.get("methods") or {}
    if not isinstance(layer, dict) or not isinstance(report, dict) or not isinstance(methods, dict):
        raise SoftTargetsError(f"{path}: 'config', 'methods' and 'report' must be mappings")
    for method, settings in methods.items():
        if not isinstance(settings, dict):
            raise SoftTargetsError(f"{path}: 'methods.{method}' must be a mapping of unlearning settings")
    for key in layer:
        if key not in SECTIONS and key not in TOP_LEVEL - {"protocol"}:
            raise SoftTargetsError(f"{path}: unknown key 'config.{key}' (allowed: "
                                   f"{', '.join([*SECTIONS, *sorted(TOP_LEVEL - {'protocol'})])})")
        if key in SECTIONS and not isinstance(layer[key], dict):
            raise SoftTargetsError(f"{path}: section 'config.{key}' must be a mapping")
    return Protocol(path.stem, str(values.get("description", "")), layer, {str(k): str(v) for k, v in report.items()},
                    str(path), {str(k): dict(v) for k, v in methods.items()})


def _protocol_layer(name: str | None, method: str | None = None) -> dict:
    """The config layer of a protocol (configs/protocols/<name>.yaml), or nothing; with a method, the
    protocol's own unlearning settings for that method (its `methods` section) on top."""
    if not name:
        return {}
    protocol = load_protocol(str(name))
    layer = {k: dict(v) if isinstance(v, dict) else v for k, v in protocol.config.items()}
    if method in protocol.methods:
        layer["unlearning"] = {**layer.get("unlearning", {}), **protocol.methods[method]}
    return layer


def _check_method_keys(method: str, params: dict, source: str) -> None:
    """A key in a user's unlearning section that is neither a loop key nor a method parameter is a typo:
    name the file, the key and what is allowed. Built-in methods are read from the catalogue (no torch, no
    method registry); a plugin's parameters are checked when experiment.validate builds the method."""
    if ":" in method:
        return
    allowed = _method_parameters(method)
    for key in params:
        if key not in allowed:
            loop_keys = [f.name for f in dataclasses.fields(UnlearnConfig) if f.name != "params"]
            raise SoftTargetsError(
                f"{source}: unknown key {brief(key)} in section 'unlearning' (loop keys: {', '.join(loop_keys)}; "
                f"parameters of {method}: {', '.join(allowed) or 'none'})"
            )


def config_from_dict(values: dict, source: str = "config.yaml") -> RunConfig:
    """Rebuild a RunConfig from its to_dict() form (e.g. a run folder's config.yaml)."""
    sections = {name: build_section(cls, values.get(name, {}), source, name) for name, cls in SECTIONS.items()}
    hints = typing.get_type_hints(RunConfig)
    return RunConfig(**sections, **{k: _coerce(values[k], hints[k], f"{source}: '{k}'") for k in TOP_LEVEL
                                    if k in values})


def coerce_setting(dotted: str, value: Any, source: str) -> Any:
    """A value for a dotted config key in the field's type ('1e-3' -> 0.001 for unlearning.lr), as load_config
    would read it; method parameters (unlearning.params.*) stay as given (the method checks them)."""
    section, _, key = dotted.partition(".")
    if section in SECTIONS and key in typing.get_type_hints(SECTIONS[section]):
        return _coerce(value, typing.get_type_hints(SECTIONS[section])[key], f"{source}: '{dotted}'")
    if dotted in TOP_LEVEL:
        return _coerce(value, typing.get_type_hints(RunConfig)[dotted], f"{source}: '{dotted}'")
    return value


def replace(cfg: RunConfig, **changes: Any) -> RunConfig:
    """dataclasses.replace with dotted keys: replace(cfg, **{'targets.kind': 'soft', 'seed': 3})."""
    top = {k: v for k, v in changes.items() if "." not in k}
    nested: dict[str, dict] = {}
    for dotted, value in changes.items():
        if "." in dotted:
            name, key = dotted.split(".", 1)
            nested.setdefault(name, {})[key] = value
    for name, values in nested.items():
        top[name] = dataclasses.replace(getattr(cfg, name), **values)
    return dataclasses.replace(cfg, **top)

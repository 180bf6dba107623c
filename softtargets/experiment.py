"""run_experiment(cfg): the one place that knows the order of the steps.

config -> data -> forget split -> original & reference (trained or cached) -> targets -> method ->
unlearning loop -> evaluation against original and reference -> run folder.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
import platform
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

import softtargets
from softtargets.config import MAX_SEED, RunConfig, check_seed
from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.datasets import DataBundle, check_dataset, dataset_label, load_configured
from softtargets.data.splits import ForgetSplit, make_split, needs_memorisation
from softtargets.errors import SoftTargetsError
from softtargets.evaluation import Logits, compute_logits, own_metrics, relative_metrics, unavailable_metrics
from softtargets.hooks import HookList, Hooks
from softtargets.methods import get_method_class
from softtargets.methods.base import Context, Method
from softtargets.models import ARCHITECTURES
from softtargets.protocols import protocol_metrics
from softtargets.targets import (DeviceTeacher, RandomLabels, build_targets, check_kind, check_smoothing,
                                 is_distribution_kind, retain_kind_for)
from softtargets.tracking.local import RunFolder, check_writable
from softtargets.training.fast import fit_one
from softtargets.training.fit import (OPTIMIZERS, SCHEDULES, ModelCache, check_deterministic_cuda, compute_tag,
                                      resolve_device, train_or_load, use_channels_last, use_compute)
from softtargets.training.unlearning import UnlearnOutcome, unlearn

log = logging.getLogger(__name__)


def validate(cfg: RunConfig, paths: bool = True) -> type[Method]:
    """Check everything that can be checked before any work starts; returns the method class. paths=False
    leaves out whether cfg.out and cfg.cache_dir are writable (a saved run's config, audited elsewhere)."""
    check_dataset(cfg.data.dataset)
    if cfg.training.architecture not in ARCHITECTURES:
        raise SoftTargetsError(
            f"unknown architecture '{cfg.training.architecture}': choose one of {', '.join(ARCHITECTURES)}"
        )
    check_seed(cfg.seed)
    check_kind(cfg.targets.kind)
    if cfg.targets.retain_kind is not None:
        check_kind(cfg.targets.retain_kind)
    kinds = {"forget": cfg.targets.kind, "retain": retain_kind_for(cfg.targets.kind, cfg.targets.retain_kind)}
    if not (math.isfinite(cfg.targets.temperature) and cfg.targets.temperature > 0):
        raise SoftTargetsError(f"--temperature must be a finite number > 0, got {cfg.targets.temperature}")
    check_smoothing(cfg.targets.smoothing)
    for section, key in (("training", "epochs"), ("training", "batch_size"), ("unlearning", "batch_size")):
        if getattr(getattr(cfg, section), key) < 1:
            raise SoftTargetsError(f"{section}.{key} must be >= 1")
    if cfg.threads < 1:
        raise SoftTargetsError(f"threads must be >= 1, got {cfg.threads}")
    if cfg.unlearning.epochs < 0:
        raise SoftTargetsError("unlearning.epochs must be >= 0")
    if cfg.unlearning.driver not in (None, "retain", "forget"):
        raise SoftTargetsError(f"unlearning.driver must be retain or forget, got '{cfg.unlearning.driver}'")
    if cfg.unlearning.schedule not in SCHEDULES:
        raise SoftTargetsError(f"unknown unlearning.schedule '{cfg.unlearning.schedule}': choose one of "
                               f"{', '.join(SCHEDULES)}")
    for section in ("training", "unlearning"):
        recipe = getattr(cfg, section)
        if not 0 < recipe.lr < math.inf:
            raise SoftTargetsError(f"{section}.lr must be a finite number > 0, got {recipe.lr}")
        for key in ("momentum", "weight_decay"):
            if not 0 <= getattr(recipe, key) < math.inf:
                raise SoftTargetsError(f"{section}.{key} must be a finite number >= 0, got {getattr(recipe, key)}")
        if recipe.optimizer not in OPTIMIZERS:
            raise SoftTargetsError(f"unknown {section}.optimizer '{recipe.optimizer}': choose one of "
                                   f"{', '.join(OPTIMIZERS)}")
    if cfg.training.schedule not in SCHEDULES:
        raise SoftTargetsError(f"unknown training.schedule '{cfg.training.schedule}': choose one of "
                               f"{', '.join(SCHEDULES)}")
    clip = cfg.unlearning.clip_grad
    if clip is not None and not 0 < clip < math.inf:  # <= 0 would reverse (< 0) or freeze (0) every update
        raise SoftTargetsError(f"unlearning.clip_grad must be a finite number > 0 (a max gradient norm) or null, "
                               f"got {clip}")
    floor = cfg.unlearning.retain_floor
    if floor is not None and not 0 <= floor <= 1:
        raise SoftTargetsError(f"unlearning.retain_floor must be an accuracy in [0, 1] or null, got {floor}")
    if resolve_device(cfg.device).type == "cuda" and cfg.deterministic:
        check_deterministic_cuda()
    if paths:
        check_writable(cfg.out, "--out")
        check_writable(cfg.cache_dir, "--cache-dir")
    method_cls = get_method_class(cfg.unlearning.method)
    method_cls(**cfg.unlearning.params)  # validates the method's parameters
    check_method_targets(method_cls, kinds, cfg.targets.smoothing)
    return method_cls


def check_method_targets(method_cls: type[Method], kinds: dict[str, str], smoothing: float) -> None:
    """The method accepts the run's forget kind, and its KL terms get distributions (not a < 0 smoothing)."""
    name, kind = method_cls.name, kinds["forget"]
    if kind in method_cls.refused_kinds:
        raise SoftTargetsError(f"method '{name}' refuses --targets {kind}: {method_cls.refused_kinds[kind]}")
    for split in method_cls.kl_targets:
        if not is_distribution_kind(kinds[split], smoothing):
            flag = "--targets" if split == "forget" else "--retain-targets"
            raise SoftTargetsError(f"method '{name}' takes a KL divergence to its {split} targets, which needs a "
                                   f"distribution: {flag} smooth with a = {smoothing:g} < 0 is not one; use a >= 0 "
                                   f"or a cross-entropy method (gradasc, graddiff, ugradsl, ugradsl_plus)")


@dataclass
class Prepared:
    """Everything the runs of one seed share: data, split, original and reference models, their logits."""

    cfg: RunConfig
    data: DeviceData
    split: ForgetSplit
    original: nn.Module
    reference: nn.Module
    info: dict  # original/reference training info (seconds, cached, history)
    logits: dict[str, Logits]
    metrics: dict[str, dict]  # own metrics of original and reference


def split_for(cfg: RunConfig, bundle: DataBundle, seed: int | None = None, hooks: Hooks | None = None,
              estimate: bool = True) -> ForgetSplit:
    """The forget split a config names on a loaded dataset (paths, CSV forget rows and memorisation scores
    included). estimate=False checks a low_mem/high_mem spec without training the estimate's models."""
    scores = None
    if needs_memorisation(cfg.data.forget):
        from softtargets.metrics.memorisation import memorisation_scores

        scores = memorisation_scores(cfg, bundle, hooks) if estimate or cfg.data.memorisation else \
            np.zeros(len(bundle.train_y))
    return make_split(cfg.data.forget, bundle.train_y, bundle.num_classes, cfg.seed if seed is None else seed,
                      bundle.train_paths, bundle.root, bundle.forget_idx, scores)


def prepare(cfg: RunConfig, hooks: Hooks | None = None, bundle: DataBundle | None = None) -> Prepared:
    """Load data, resolve the split, train or load the original and the reference, evaluate both once."""
    hooks = hooks or Hooks()
    device = use_compute(cfg)
    bundle = bundle or load_configured(cfg)
    split = split_for(cfg, bundle, hooks=hooks)
    data = DeviceData(bundle, device)
    cache = ModelCache(cfg.cache_dir)
    parts = model_key_parts(cfg, bundle, device)
    everything = SplitData(data, data.train_x, data.train_y)
    trainer = fit_one if fast_path(cfg, device) else None
    original, original_info = train_or_load("original", everything, cfg.training, cfg.seed, cache, parts, hooks,
                                            trainer)
    # the reference is trained on retain images only: forget indices never reach it
    retain_d = split.retain_idx.to(device)
    retain = SplitData(data, data.train_x[retain_d], data.train_y[retain_d])
    reference, reference_info = train_or_load("reference", retain, cfg.training, cfg.seed, cache,
                                              {**parts, "split": split.hash}, hooks, trainer)
    models = {"original": (original, original_info), "reference": (reference, reference_info)}
    if cfg.floor:  # a second exact retrain: the same cache key as the reference of seed + 1 where splits agree
        models["floor"] = train_or_load("reference", retain, cfg.training, floor_seed(cfg.seed), cache,
                                        {**parts, "split": split.hash}, hooks, trainer)
    del retain  # a copy of the retain images (42 MB on fashion_mnist): not kept through the evaluation
    logits = {name: cached_logits(cache, info["cache_key"], model, data, split) for name, (model, info) in models.items()}
    metrics = {name: own_metrics(lg, data, split, cfg.seed) for name, lg in logits.items()}
    if cfg.floor:
        metrics["floor"].update(relative_metrics(models["floor"][0], logits["floor"], metrics["floor"], original,
                                                 reference, logits["reference"], metrics["reference"]))
    return Prepared(cfg, data, split, original, reference, {name: info for name, (_, info) in models.items()},
                    logits, metrics)


FLOOR_OFFSET = 1  # the floor model's training seed: the run's seed + 1 (seed - 1 at the largest seed)


def floor_seed(seed: int) -> int:
    """The seed of the floor model (a second retrain on the same retain set): initialisation and batch order
    differ from the reference's, everything else is the reference's recipe. With class forgetting every seed
    has the same retain set, so seed s's floor model is seed s + 1's reference and the cache trains it once."""
    return seed + FLOOR_OFFSET if seed + FLOOR_OFFSET <= MAX_SEED else seed - FLOOR_OFFSET


def model_key_parts(cfg: RunConfig, bundle: DataBundle, device: torch.device) -> dict:
    """Cache-key parts of a run's original and reference besides role, recipe and seed (the reference adds
    its split's hash)."""
    return {"dataset": bundle.name, "data": bundle.fingerprint(),
            "compute": compute_tag(device, cfg.threads, cfg.deterministic, fast_path(cfg, device))}


def fast_path(cfg: RunConfig, device: torch.device) -> bool:
    """Whether training takes the CUDA fast path (config fast_cuda; softtargets/training/fast.py): CUDA only."""
    return cfg.fast_cuda and device.type == "cuda"


def cached_logits(cache: ModelCache, model_key: str, model: nn.Module, data: DeviceData, split: ForgetSplit
                  ) -> Logits:
    """A cached model's logits on a split's retain/forget/test images, kept next to the model: the hard and
    soft cells of a sweep (separate processes) then evaluate the original and the reference only once."""
    key = f"{model_key}-logits-{split.hash}"
    sizes = {"retain": len(split.retain_idx), "forget": len(split.forget_idx), "test": len(data.test_y)}
    like = {name: torch.empty(n, data.bundle.num_classes, device="meta") for name, n in sizes.items()}
    hit = cache.load(key, "logits", like)
    if hit is not None:
        return Logits(**{name: t.to(data.device) for name, t in hit[0].items()})
    logits = compute_logits(model, data, split)
    cache.save(key, {name: t.cpu() for name, t in vars(logits).items()}, {"split": split.hash}, "logits")
    return logits


def train_models_in_parallel(cfg: RunConfig, seeds: list[int], hooks: Hooks | None = None,
                             bundle: DataBundle | None = None, stacked: bool | None = None) -> DataBundle:
    """Fill the model cache with every seed's original and reference, trained seed-parallel, so the per-seed
    prepare() calls that follow only load. Returns the loaded bundle for reuse."""
    from softtargets.training.parallel import Job, fill_cache

    device = use_compute(cfg)
    bundle = bundle or load_configured(cfg)
    data = DeviceData(bundle, device)
    parts = model_key_parts(cfg, bundle, device)
    everything = SplitData(data, data.train_x, data.train_y)
    jobs = []
    for seed in seeds:
        split = split_for(cfg, bundle, seed, hooks)
        retain_d = split.retain_idx.to(device)
        retain = SplitData(data, data.train_x[retain_d], data.train_y[retain_d])
        jobs += [Job("original", everything, seed, parts),
                 Job("reference", retain, seed, {**parts, "split": split.hash})]
    fill_cache(jobs, cfg.training, ModelCache(cfg.cache_dir), hooks, stacked, fast_path(cfg, device))
    return bundle


def science(cfg: RunConfig) -> dict:
    """The resolved configuration less where files go (out, cache_dir, data.root) and whether PNGs are drawn: what
    a run's results depend on, which the digests of run and audit names cover."""
    kept = cfg.to_dict()
    for key in ("out", "cache_dir", "plots"):
        kept.pop(key, None)
    kept["data"].pop("root")
    return kept


def run_name(cfg: RunConfig) -> str:
    """Deterministic folder name: readable parts plus a hash of the resolved config's science, so the same cell has
    the same name wherever it is written from."""
    digest = hashlib.sha256(json.dumps(science(cfg), sort_keys=True, default=str).encode()).hexdigest()[:8]
    method = re.sub(r"[^A-Za-z0-9_]+", "_", cfg.unlearning.method.rpartition(":")[2])
    return (f"{dataset_label(cfg.data.dataset)}-{cfg.training.architecture}-{method}-{cfg.targets.kind}-seed{cfg.seed}"
            f"-{digest}")


def _targets(cfg: RunConfig, prepared: Prepared) -> tuple[torch.Tensor, torch.Tensor]:
    """Target distributions for retain and forget, built once from the original model's logits."""
    data, split, c = prepared.data, prepared.split, prepared.data.bundle.num_classes
    t = cfg.targets

    def make(kind: str, idx: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        y = data.train_y[idx.to(data.device)]
        return build_targets(kind, y, c, logits, t.temperature, t.smoothing)

    retain_t = make(retain_kind_for(t.kind, t.retain_kind), split.retain_idx, prepared.logits["original"].retain)
    forget_t = make(t.kind, split.forget_idx, prepared.logits["original"].forget)
    return retain_t, forget_t


def versions() -> dict:
    from importlib.metadata import version

    import numpy

    # torchvision's installed version without importing it (190 MB RSS, models/mobilenet.py)
    return {"softtargets": softtargets.__version__, "torch": torch.__version__,
            "torchvision": version("torchvision"), "numpy": numpy.__version__,
            "python": platform.python_version()}


def run_experiment(cfg: RunConfig, hooks: Hooks | None = None, prepared: Prepared | None = None,
                   out: str | Path | None = None, extras: tuple = ()) -> dict:
    """One unlearning run, measured against the retrained reference. Returns result.json's content.

    extras: callables (folder_path, prepared, result) -> dict run on the unfinished folder (which holds
    model.pt); each may write files there and returns entries merged into result.json (e.g. --lmc)."""
    method_cls = validate(cfg)
    if out is not None:
        check_writable(out, "--out")
    hooks = hooks or Hooks()
    use_compute(cfg)
    if prepared is None:
        prepared = prepare(cfg, hooks)
    folder = RunFolder(out or cfg.out, run_name(cfg))
    try:
        result = _run(cfg, method_cls, prepared, HookList(hooks, folder), folder)
        for extra in extras:
            result.update(extra(folder.path, prepared, result))
    except BaseException:
        folder.abandon()
        raise
    result["path"] = str(folder.finish(result))
    return result


def unlearn_copy(cfg: RunConfig, method_cls: type[Method], prepared: Prepared, hooks: Hooks,
                 seed: int | None = None) -> tuple[nn.Module, Method, UnlearnOutcome]:
    """A copy of the original model unlearned with cfg's method and targets. seed (default cfg.seed) drives the
    batch order and the method's randomness; split, original and reference stay prepared's (forget-quality
    runs one original through many unlearning seeds)."""
    seed = cfg.seed if seed is None else seed
    data, split = prepared.data, prepared.split
    retain_t, forget_t = _targets(cfg, prepared)
    retain_d, forget_d = split.retain_idx.to(data.device), split.forget_idx.to(data.device)
    model = copy.deepcopy(prepared.original)
    original = copy.deepcopy(prepared.original).eval().requires_grad_(False)
    if use_channels_last(model, data.device):  # the layout training used; the teacher must match bit for bit
        use_channels_last(original, data.device)
    teacher = DeviceTeacher(original, cfg.targets.temperature)
    per_batch = {"soft": teacher, "random": RandomLabels(data.bundle.num_classes, seed + 1)}  # built per batch
    retain_kind = retain_kind_for(cfg.targets.kind, cfg.targets.retain_kind)
    ctx = Context(
        model=model, original=original, data=data,
        retain=SplitData(data, data.train_x[retain_d], data.train_y[retain_d], retain_t, per_batch.get(retain_kind)),
        forget=SplitData(data, data.train_x[forget_d], data.train_y[forget_d], forget_t,
                         per_batch.get(cfg.targets.kind)),
        test=SplitData(data, data.test_x, data.test_y),
        config=cfg.unlearning, targets=cfg.targets, num_classes=data.bundle.num_classes, seed=seed,
        generator=torch.Generator().manual_seed(seed), hooks=hooks,
    )
    torch.manual_seed(seed)
    method = method_cls(**cfg.unlearning.params)
    outcome = unlearn(model, method, ctx, cfg.unlearning, prepared.metrics["reference"]["acc_forget"])
    return model, method, outcome


def _run(cfg: RunConfig, method_cls: type[Method], prepared: Prepared, hooks: Hooks, folder: RunFolder) -> dict:
    data, split = prepared.data, prepared.split
    folder.write_yaml("config.yaml", cfg.to_dict())
    for role in ("original", "reference"):
        for row in prepared.info[role]["history"]:
            hooks.scalars(role, row["epoch"], {k: v for k, v in row.items() if k != "epoch"})
    model, method, outcome = unlearn_copy(cfg, method_cls, prepared, hooks)
    params, uses_targets = method.params, method.uses_targets
    del method  # its context holds copies of the retain and forget images: not kept through the evaluation
    torch.save(model.state_dict(), folder.path / "model.pt")  # the unlearned weights, for relearn/lmc --run
    metrics = {role: dict(prepared.metrics[role]) for role in ("original", "reference", "floor")
               if role in prepared.metrics}
    ref_logits, ref_own = prepared.logits["reference"], prepared.metrics["reference"]
    metrics["original"].update(relative_metrics(prepared.original, prepared.logits["original"], metrics["original"],
                                                prepared.original, prepared.reference, ref_logits, ref_own))
    logits = compute_logits(model, data, split)
    if logits.finite():
        own = own_metrics(logits, data, split, cfg.seed)
        metrics["unlearned"] = {**own, **relative_metrics(model, logits, own, prepared.original, prepared.reference,
                                                          ref_logits, ref_own)}
        if cfg.plots:
            _plots(folder.path, metrics, data.bundle.classes, outcome.history, ref_own["acc_forget"])
    else:  # overflowed weights or outputs: nothing meaningful to measure
        metrics["unlearned"] = {}
        if outcome.status == "completed":
            outcome.status, outcome.stopped = "diverged", "model outputs became non-finite"
    info = prepared.info
    retrain_s = info["reference"]["seconds"]
    return {
        "status": outcome.status,
        "name": folder.final.name,
        "seed": cfg.seed,
        "dataset": cfg.data.dataset,
        "architecture": cfg.training.architecture,
        "method": cfg.unlearning.method,
        "targets": {"kind": cfg.targets.kind, "retain_kind": retain_kind_for(cfg.targets.kind, cfg.targets.retain_kind),
                    "temperature": cfg.targets.temperature, "smoothing": cfg.targets.smoothing,
                    "terms": outcome.target_terms},
        "split": {"spec": split.spec, "hash": split.hash, **split.sizes, "forget_classes": list(split.forget_classes)},
        "metrics": metrics,
        "unavailable": unavailable_metrics(data, split),  # metrics this split cannot give, with the reason
        "protocol": protocol_metrics(cfg.protocol, metrics),
        "unlearning": {"epochs_run": outcome.epochs_run, "steps": outcome.steps, "stopped": outcome.stopped,
                       "history": outcome.history, "params": params, "guards": outcome.guards,
                       "uses_targets": uses_targets},
        "timings": {
            "unlearn_s": outcome.seconds,
            "original_train_s": info["original"]["seconds"],
            "reference_train_s": retrain_s,
            "speedup_vs_retrain": retrain_s / outcome.seconds if outcome.seconds > 0 else None,
            "original_cached": info["original"]["cached"],
            "reference_cached": info["reference"]["cached"],
            **({"floor_train_s": info["floor"]["seconds"], "floor_cached": info["floor"]["cached"]}
               if "floor" in info else {}),
        },
        "versions": versions(),
        "device": str(data.device),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _plots(path: Path, metrics: dict, classes: list[str], history: list[dict], reference_forget_acc: float) -> None:
    from softtargets.report.plots import per_class_bars, unlearning_curves  # matplotlib, once it draws

    roles = ("original", "reference", "unlearned")
    per_class_bars(path / "per_class_accuracy.png", {r: metrics[r]["per_class_test_acc"] for r in roles}, classes,
                   "test accuracy", "Per-class test accuracy")
    per_class_bars(path / "per_class_loss.png", {r: metrics[r]["per_class_test_loss"] for r in roles}, classes,
                   "test loss", "Per-class test loss")
    if history:
        unlearning_curves(path / "unlearning_curves.png", history, reference_forget_acc)

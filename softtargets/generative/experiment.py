"""run_amnesia(cfg): the order of the steps of `softtargets amnesia`.

config -> data -> CVAE (trained or cached) -> Fisher on generated samples (cached) -> judge (cached) ->
judge audit of the original -> Selective Amnesia -> judge audit after -> plots -> run folder -> tracker.
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict

import torch

from softtargets.config import check_seed
from softtargets.data.batches import DeviceData
from softtargets.data.datasets import DATASETS, load_dataset
from softtargets.errors import SoftTargetsError
from softtargets.evaluation import scalar_metrics
from softtargets.experiment import versions
from softtargets.generative import plots
from softtargets.generative.amnesia import selective_amnesia
from softtargets.generative.config import (SECTIONS, AmnesiaConfig, amnesia_config_from_dict, check_surrogate,
                                          parse_forget_labels)
from softtargets.generative.cvae import OneHotCVAE, fit_cvae, negative_elbo, one_hot, pixels, x_dim_of
from softtargets.generative.fisher import diagonal_fisher
from softtargets.generative.judge import judge_metrics, judge_probabilities, train_or_load_judge
from softtargets.hooks import HookList, Hooks
from softtargets.models import ARCHITECTURES
from softtargets.tracking import open_tracker
from softtargets.tracking.base import connect_config
from softtargets.tracking.local import RunFolder, check_writable
from softtargets.training.fit import ModelCache, resolve_device

GRID_COLUMNS, MORPH_STEPS = 8, 10


def validate(cfg: AmnesiaConfig) -> None:
    """Everything checkable before the data is loaded; forget labels are checked against the data."""
    if cfg.data.dataset not in DATASETS:
        raise SoftTargetsError(f"unknown dataset '{cfg.data.dataset}': choose one of {', '.join(DATASETS)}")
    check_surrogate(cfg.forgetting.surrogate)
    if cfg.judge.architecture not in ARCHITECTURES:
        raise SoftTargetsError(f"unknown judge architecture '{cfg.judge.architecture}': choose one of "
                               f"{', '.join(ARCHITECTURES)}")
    positive = {"cvae.steps": cfg.cvae.steps, "cvae.batch_size": cfg.cvae.batch_size, "cvae.z_dim": cfg.cvae.z_dim,
                "forgetting.fisher_samples": cfg.forgetting.fisher_samples,
                "forgetting.batch_size": cfg.forgetting.batch_size, "forgetting.log_every": cfg.forgetting.log_every,
                "judge.epochs": cfg.judge.epochs, "judge.batch_size": cfg.judge.batch_size,
                "samples_per_class": cfg.samples_per_class, "cvae.lr": cfg.cvae.lr, "forgetting.lr": cfg.forgetting.lr,
                "judge.lr": cfg.judge.lr}
    for key, value in positive.items():
        if value <= 0:
            raise SoftTargetsError(f"{key} must be > 0, got {value}")
    for key in ("steps", "lam", "gamma"):
        if getattr(cfg.forgetting, key) < 0:
            raise SoftTargetsError(f"forgetting.{key} must be >= 0, got {getattr(cfg.forgetting, key)}")
    concentration = cfg.forgetting.soft_concentration
    if concentration is not None and concentration <= 0:
        raise SoftTargetsError(f"forgetting.soft_concentration must be > 0 (or unset for the uniform mixture), "
                               f"got {concentration}")
    check_seed(cfg.seed)
    resolve_device(cfg.device)
    check_writable(cfg.out, "--out")
    check_writable(cfg.cache_dir, "--cache-dir")


def resolve(cfg: AmnesiaConfig):
    """Validate, load the data and check the forget labels against it: all before anything is written."""
    validate(cfg)
    bundle = load_dataset(cfg.data.dataset, cfg.data.root)
    return bundle, parse_forget_labels(cfg.data.forget, bundle.num_classes)


def run_name(cfg: AmnesiaConfig, forget: list[int]) -> str:
    digest = hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:8]
    labels = "_".join(map(str, forget))
    return f"amnesia-{cfg.data.dataset}-forget{labels}-{cfg.forgetting.surrogate}-seed{cfg.seed}-{digest}"


def run_amnesia(cfg: AmnesiaConfig, hooks: Hooks | None = None, tracking: dict | None = None) -> dict:
    """One Selective Amnesia run; returns result.json's content plus 'path' (the run folder) and 'tracker'
    (where the tracker put it, None when untracked). tracking is the CLI's choice: kind (auto|clearml|none)
    and the tracker's options."""
    bundle, forget = resolve(cfg)
    hooks = hooks or Hooks()
    options = dict(tracking or {"kind": "none"})
    tracker = open_tracker(options.pop("kind"), name=run_name(cfg, forget).rpartition("-")[0],
                           tags=["amnesia", cfg.data.dataset, cfg.forgetting.surrogate, f"seed{cfg.seed}"], **options)
    folder = None
    try:
        edited = connect_config(tracker, cfg, SECTIONS, amnesia_config_from_dict)
        if edited != cfg:
            cfg, (bundle, forget) = edited, resolve(edited)
        folder = RunFolder(cfg.out, run_name(cfg, forget))
        result = _run(cfg, DeviceData(bundle, resolve_device(cfg.device)), forget, HookList(hooks, folder, tracker),
                      folder)
    except BaseException:
        if folder is not None:
            folder.abandon()
        tracker.close("failed")
        raise
    final = folder.finish(result)
    tracker.mirror(final)
    tracker.close(result["status"])
    return {**result, "path": str(final), "tracker": tracker.where}




def train_or_load_cvae(data: DeviceData, cfg: AmnesiaConfig, cache: ModelCache, hooks: Hooks
                       ) -> tuple[OneHotCVAE, dict]:
    c = cfg.cvae
    key = ModelCache.key(role="cvae", dataset=data.bundle.name, data=data.bundle.fingerprint(), cvae=asdict(c),
                         seed=cfg.seed)
    torch.manual_seed(cfg.seed)
    model = OneHotCVAE(x_dim_of(data.bundle.input_shape), data.bundle.num_classes, c.h_dim1, c.h_dim2,
                       c.z_dim).to(data.device)
    hit = cache.load(key, "cvae", like=model.state_dict())
    if hit is not None:
        model.load_state_dict(hit[0])
        return model, {**hit[1], "cached": True, "cache_key": key}
    start = time.perf_counter()
    history = fit_cvae(model, pixels(data.train_x), data.train_y, c.steps, c.batch_size, c.lr, cfg.seed, hooks)
    meta = {"seconds": time.perf_counter() - start, "history": history}
    cache.save(key, {k: v.cpu() for k, v in model.state_dict().items()}, meta, "cvae")
    return model, {**meta, "cached": False, "cache_key": key}


def fisher_or_load(model: OneHotCVAE, cvae_key: str, samples: int, seed: int, cache: ModelCache
                   ) -> tuple[dict[str, torch.Tensor], dict]:
    """Diagonal Fisher of the CVAE loss on its own generations: c ~ U{0..C-1}, x = decoder mean of z ~ N(0, I)."""
    key = ModelCache.key(role="fisher", cvae=cvae_key, samples=samples, seed=seed)
    device = next(model.parameters()).device
    hit = cache.load(key, "fisher", like=dict(model.named_parameters()))
    if hit is not None:
        return {k: v.to(device) for k, v in hit[0].items()}, {**hit[1], "cached": True}
    start = time.perf_counter()
    torch.manual_seed(seed)
    c = one_hot(torch.randint(model.num_classes, (samples,), device=device), model.num_classes)
    fisher = diagonal_fisher(model, negative_elbo, (model.generate(c), c))
    meta = {"seconds": time.perf_counter() - start, "samples": samples}
    cache.save(key, {k: v.cpu() for k, v in fisher.items()}, meta, "fisher")
    return fisher, {**meta, "cached": False}


class Audit:
    """Fixed labels and latents, so the original and the amnesiac model are judged on the same draws."""

    def __init__(self, data: DeviceData, z_dim: int, per_class: int, seed: int):
        classes = data.bundle.num_classes
        generator = torch.Generator().manual_seed(seed)
        self.data, self.classes = data, classes
        self.labels = torch.arange(classes).repeat_interleave(per_class).to(data.device)
        self.z = torch.randn(len(self.labels), z_dim, generator=generator).to(data.device)
        self.morph_z = torch.randn(2, z_dim, generator=generator).to(data.device)

    def generations(self, model: OneHotCVAE) -> torch.Tensor:
        model.eval()
        return model.generate(one_hot(self.labels, self.classes), self.z)

    def grid(self, generations: torch.Tensor) -> torch.Tensor:
        """The first GRID_COLUMNS generations of every class, row by row."""
        per_class = generations.reshape(self.classes, -1, generations.shape[1])
        return per_class[:, :GRID_COLUMNS].reshape(-1, generations.shape[1])

    def morph(self, model: OneHotCVAE, pairs: list[tuple[int, int]]) -> torch.Tensor:
        """Seed 004's morph: c = (1-w) onehot(a) + w onehot(b) and z = (1-w) z_a + w z_b for w in [0, 1]."""
        w = torch.linspace(0, 1, MORPH_STEPS, device=self.data.device)[:, None]
        rows = []
        for a, b in pairs:
            ends = one_hot(torch.tensor([a, b], device=self.data.device), self.classes)
            rows.append(model.generate((1 - w) * ends[0] + w * ends[1],
                                       (1 - w) * self.morph_z[0] + w * self.morph_z[1]))
        return torch.cat(rows)

    @torch.no_grad()
    def encodings(self, model: OneHotCVAE) -> torch.Tensor:
        """Encoder means of the real test images, given their labels."""
        return model.encode(pixels(self.data.test_x), one_hot(self.data.test_y, self.classes))[0]


def morph_pairs(forget: list[int], num_classes: int) -> list[tuple[int, int]]:
    """Each forgotten class towards the next remembered one, plus one pair of remembered classes as control."""
    remember = [k for k in range(num_classes) if k not in forget]
    pairs = [(k, next((r for r in remember if r > k), remember[0])) for k in forget]
    if len(remember) >= 2:
        pairs.append((remember[0], remember[1]))
    return pairs


def _run(cfg: AmnesiaConfig, data: DeviceData, forget: list[int], hooks: Hooks, folder: RunFolder) -> dict:
    folder.write_yaml("config.yaml", cfg.to_dict())
    cache = ModelCache(cfg.cache_dir)
    bundle = data.bundle
    original, cvae_info = train_or_load_cvae(data, cfg, cache, hooks)
    if cvae_info["cached"]:
        for row in cvae_info["history"]:
            hooks.scalars("cvae", row["step"], {"loss": row["loss"]})
    original.eval().requires_grad_(False)
    fisher, fisher_info = fisher_or_load(original, cvae_info["cache_key"], cfg.forgetting.fisher_samples, cfg.seed,
                                         cache)
    judge, judge_info = train_or_load_judge(data, cfg.judge, cfg.seed, cache, hooks)
    judge_test_acc = (judge_probabilities(judge, data, pixels(data.test_x)).argmax(1) == data.test_y).float().mean()
    audit = Audit(data, cfg.cvae.z_dim, cfg.samples_per_class, cfg.seed)
    before = audit.generations(original)
    metrics = {"original": judge_metrics(judge_probabilities(judge, data, before), audit.labels, forget)}

    model = copy.deepcopy(original).requires_grad_(True)
    torch.manual_seed(cfg.seed)
    start = time.perf_counter()
    outcome = selective_amnesia(model, original, fisher, forget, cfg.forgetting, hooks)
    amnesia_s = time.perf_counter() - start
    after = audit.generations(model)
    if outcome.status == "completed" and torch.isfinite(after).all():
        metrics["amnesia"] = judge_metrics(judge_probabilities(judge, data, after), audit.labels, forget)
        _plots(folder, audit, original, model, before, after, forget)
    else:  # nothing meaningful to judge
        metrics["amnesia"] = {}
        if outcome.status == "completed":
            outcome.status, outcome.stopped = "diverged", "generations became non-finite"
    return {
        "status": outcome.status,
        "name": folder.final.name,
        "command": "amnesia",
        "seed": cfg.seed,
        "dataset": cfg.data.dataset,
        "forget": forget,
        "remember": [k for k in range(bundle.num_classes) if k not in forget],
        "surrogate": cfg.forgetting.surrogate,
        "chance_acc": 1 / bundle.num_classes,
        "max_entropy": float(torch.log(torch.tensor(float(bundle.num_classes)))),
        "metrics": metrics,
        "headline": {role: scalar_metrics(values) for role, values in metrics.items()},
        "judge": {"test_acc": judge_test_acc.item(), "architecture": cfg.judge.architecture,
                  "cached": judge_info["cached"]},
        "amnesia": {"steps": outcome.steps, "stopped": outcome.stopped, "history": outcome.history},
        "fisher": {"samples": fisher_info["samples"], "cached": fisher_info["cached"],
                   "mean": torch.cat([f.flatten() for f in fisher.values()]).mean().item()},
        "timings": {"cvae_train_s": cvae_info["seconds"], "fisher_s": fisher_info["seconds"],
                    "judge_train_s": judge_info["seconds"], "amnesia_s": amnesia_s,
                    "cvae_cached": cvae_info["cached"]},
        "versions": versions(),
        "device": str(data.device),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _plots(folder: RunFolder, audit: Audit, original: OneHotCVAE, model: OneHotCVAE, before: torch.Tensor,
           after: torch.Tensor, forget: list[int]) -> None:
    bundle = audit.data.bundle
    shape, classes = bundle.input_shape, bundle.classes
    plots.generation_grid(folder.path / "generations.png", {"original": audit.grid(before),
                                                            "amnesia": audit.grid(after)}, shape, classes, forget)
    pairs = morph_pairs(forget, bundle.num_classes)
    model.eval()
    plots.morph_grid(folder.path / "label_morph.png", {"original": audit.morph(original, pairs),
                                                       "amnesia": audit.morph(model, pairs)}, shape,
                     [f"{classes[a]}->{classes[b]}" for a, b in pairs])
    plots.embedding_plot(folder.path / "encoder_embedding.png", {"original": audit.encodings(original),
                                                                 "amnesia": audit.encodings(model)},
                         audit.data.test_y, classes, forget)

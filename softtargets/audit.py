"""Audits of forgetting beyond accuracy: the challenge's forgetting quality over model populations, the
relearning attack and linear mode connectivity. Each writes a run folder (result.json, PNGs) and mirrors it
to a tracker. The metric arithmetic lives in softtargets.metrics; this module knows the order of the steps.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from softtargets.cache import TensorCache
from softtargets.config import RunConfig, config_from_dict, read_yaml, replace
from softtargets.data.batches import SplitData
from softtargets.data.datasets import load_configured
from softtargets.errors import SoftTargetsError
from softtargets.evaluation import Logits, compute_logits
from softtargets.experiment import (Prepared, fast_path, model_key_parts, prepare, science, split_for, unlearn_copy,
                                    validate)
from softtargets.hooks import HookList, Hooks
from softtargets.metrics import forgetting_quality as fq
from softtargets.metrics import relearn as rl
from softtargets.metrics.accuracy import accuracy
from softtargets.metrics.lmc import lmc_path
from softtargets.models import build_model
from softtargets.report import audit_plots
from softtargets.scheduler import check_workers, run_cells
from softtargets.tracking.base import Tracker, connect_config
from softtargets.io import write_text_atomic
from softtargets.tracking.local import RunFolder, check_writable
from softtargets.tracking.runs import _open as open_tracking
from softtargets.training.fast import fit_one
from softtargets.training.fit import ModelCache, train_or_load, use_compute
from softtargets.training.parallel import Job, fill_cache


MAX_MODELS = 4096  # forget-quality population size: 8 times the challenge's 512


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:8]


def _method_slug(cfg: RunConfig) -> str:
    return cfg.unlearning.method.rpartition(":")[2].replace("/", "_")


def _tracker(tracking: dict | None, cfg: RunConfig, command: str, name: str) -> Tracker:
    """The command's tracker Task (the no-op Tracker for --tracker none), tagged like a run plus the command."""
    tags = [cfg.data.dataset, cfg.training.architecture, _method_slug(cfg), cfg.targets.kind, command]
    return open_tracking(tracking, name, tags, task_type="custom")


def _finish(folder: RunFolder, result: dict, tracker: Tracker) -> dict:
    """result.json last, the folder renamed into place, then mirrored to the tracker."""
    result["path"] = str(folder.finish(result))
    tracker.mirror(Path(result["path"]))
    tracker.close(result.get("status", "completed"))
    return {**result, "tracker": tracker.where}


def _in_folder(folder: RunFolder, tracker: Tracker, work) -> dict:
    """Run work() -> result; on any failure remove the unfinished folder and close the tracker as failed."""
    try:
        result = work()
    except BaseException:
        folder.abandon()
        tracker.close("failed")
        raise
    return _finish(folder, result, tracker)


# ---------------------------------------------------------------- forgetting quality (challenge metric)

def reference_population(prepared: Prepared, seeds: list[int], hooks: Hooks) -> list[nn.Module]:
    """Retrained references of prepared's split, one per seed, from the model cache (trained seed-parallel
    when missing). Keyed like prepare()'s reference, so seed = cfg.seed is the run's own reference and every
    method audited on this split reuses the same population."""
    cfg, data, split = prepared.cfg, prepared.data, prepared.split
    retain_d = split.retain_idx.to(data.device)
    retain = SplitData(data, data.train_x[retain_d], data.train_y[retain_d])
    parts = {**model_key_parts(cfg, data.bundle, data.device), "split": split.hash}
    cache = ModelCache(cfg.cache_dir)
    fast = fast_path(cfg, data.device)
    fill_cache([Job("reference", retain, s, parts) for s in seeds], cfg.training, cache, hooks, fast=fast)
    trainer = fit_one if fast else None
    return [train_or_load("reference", retain, cfg.training, s, cache, parts, hooks, trainer)[0] for s in seeds]


def unlearned_population(cfg: RunConfig, prepared: Prepared, seeds: list[int], hooks: Hooks, workers: int = 1
                         ) -> list[Logits]:
    """The original model unlearned once per unlearning seed; the logits of the runs that stayed finite.
    workers > 1: the seeds in worker processes (softtargets.scheduler), each loading the original from the
    model cache; the logits are the same as in this process."""
    description = f"unlearn x{len(seeds)} {cfg.targets.kind}"
    if workers > 1:
        cells = run_cells(unlearned_logits, [(cfg, seed) for seed in seeds], workers, hooks, description)
        device = prepared.data.device
        return [Logits(**{k: v.to(device) for k, v in vars(logits).items()}) for status, logits in cells
                if status == "completed" and logits.finite()]
    method_cls = validate(cfg)
    population = []
    with hooks.progress(description, len(seeds)) as advance:
        for seed in seeds:
            model, _, outcome = unlearn_copy(cfg, method_cls, prepared, Hooks(), seed)
            logits = compute_logits(model, prepared.data, prepared.split)
            if outcome.status == "completed" and logits.finite():
                population.append(logits)
            advance(1)
    return population


def unlearned_logits(cfg: RunConfig, seed: int) -> tuple[str, Logits]:
    """One unlearning seed, in a worker: the cached original unlearned; its status and logits (on the CPU)."""
    prepared = _prepared_here(cfg)
    model, _, outcome = unlearn_copy(cfg, validate(cfg), prepared, Hooks(), seed)
    logits = compute_logits(model, prepared.data, prepared.split)
    return outcome.status, Logits(**{k: v.cpu() for k, v in vars(logits).items()})


_PREPARED: dict[str, Prepared] = {}  # per worker process: its later seeds reuse the loaded original


def _prepared_here(cfg: RunConfig) -> Prepared:
    key = json.dumps([dataclasses.asdict(cfg.data), dataclasses.asdict(cfg.training), cfg.seed, cfg.device,
                      cfg.cache_dir, cfg.threads, cfg.deterministic, cfg.fast_cuda], sort_keys=True, default=str)
    if key not in _PREPARED:
        _PREPARED.clear()
        _PREPARED[key] = prepare(cfg)
    return _PREPARED[key]


def _population_stats(logits: list[Logits], y: dict[str, torch.Tensor]) -> tuple[np.ndarray, float, float]:
    """[models, forget examples] confidences, mean retain accuracy, mean test accuracy."""
    confs = np.stack([fq.logit_scaled_confidence(lg.forget, y["forget"]) for lg in logits])
    ra = float(np.mean([accuracy(lg.retain, y["retain"]) for lg in logits]))
    ta = float(np.mean([accuracy(lg.test, y["test"]) for lg in logits]))
    return confs, ra, ta


def _quality(eps: np.ndarray, n_models: int, seed: int) -> tuple[np.ndarray, dict]:
    pts = fq.points(eps, n_models)
    low, high = fq.bootstrap_interval(pts, seed)
    return pts, {"F": float(pts.mean()), "F_ci95": [low, high], "epsilon_mean": float(eps.mean()),
                 "epsilon_median": float(np.median(eps)), "share_at_cap": float(np.mean(eps >= fq.EPSILON_CAP)),
                 "max_epsilon": fq.max_epsilon(n_models)}


def forget_quality_name(cfg: RunConfig, n_models: int = 32, kinds: tuple[str, ...] | None = None,
                        null: bool = True, legacy: bool = False) -> str:
    """The run folder name of a forget-quality audit: readable parts and a digest of everything it depends on (the
    configuration's science, not where files go). legacy: the name earlier versions gave it, whose digest also
    covered out and cache_dir (so a sweep still finds the audits they named)."""
    kinds = tuple(kinds or (cfg.targets.kind,))
    config = cfg.to_dict() if legacy else science(cfg)
    return (f"forget-quality-{cfg.data.dataset}-{cfg.training.architecture}-{_method_slug(cfg)}-"
            f"{'-vs-'.join(kinds)}-seed{cfg.seed}-n{n_models}-{_digest(config, kinds, n_models, null)}")


def forget_quality(cfg: RunConfig, n_models: int = 32, kinds: tuple[str, ...] | None = None, null: bool = True,
                   hooks: Hooks | None = None, tracking: dict | None = None, out: str | Path | None = None,
                   workers: int = 1) -> dict:
    """The NeurIPS 2023 challenge score at small scale: one original model, n_models unlearning seeds per
    target kind, n_models retrained references (seeds cfg.seed ..). With null, n_models more references give
    the score of exact retraining at this N (the estimator's floor: small N biases epsilon upwards).
    workers: unlearning seeds in flight at once (the result is the same for any number)."""
    check_workers(workers)
    if not 2 <= n_models <= MAX_MODELS:
        raise SoftTargetsError(f"--n-models must be in 2..{MAX_MODELS} (the challenge used 512; 32 is the default), "
                               f"got {n_models}")
    kinds = tuple(kinds or (cfg.targets.kind,))
    for kind in kinds:
        validate(replace(cfg, **{"targets.kind": kind}))
    hooks = hooks or Hooks()
    name = forget_quality_name(cfg, n_models, kinds, null)
    tracker = _tracker(tracking, cfg, "forget-quality", name)
    cfg = connect_config(tracker, cfg)
    folder = RunFolder(out or cfg.out, name)
    hooks = HookList(hooks, folder, tracker)

    def work() -> dict:
        prepared = prepare(cfg, hooks)
        folder.write_yaml("config.yaml", {**cfg.to_dict(), "forget_quality": {"n_models": n_models,
                                                                               "kinds": list(kinds), "null": null}})
        data, split = prepared.data, prepared.split
        y = {"retain": data.train_y[split.retain_idx.to(data.device)],
             "forget": data.train_y[split.forget_idx.to(data.device)], "test": data.test_y}
        seeds = [cfg.seed + i for i in range(n_models)]
        references = [compute_logits(m, data, split) for m in reference_population(prepared, seeds, hooks)]
        ref_conf, ref_ra, ref_ta = _population_stats(references, y)
        result = {"status": "completed", "name": folder.final.name, "command": "forget-quality", "seed": cfg.seed,
                  "dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
                  "method": cfg.unlearning.method, "n_models": n_models, "delta": fq.DELTA,
                  "split": {"spec": split.spec, "hash": split.hash, **split.sizes},
                  "reference": {"acc_retain": ref_ra, "acc_test": ref_ta, "seeds": seeds}, "kinds": {}}
        columns, points = {}, {}
        for kind in kinds:
            population = unlearned_population(replace(cfg, **{"targets.kind": kind}), prepared, seeds, hooks,
                                              workers)
            if len(population) < 2:
                raise SoftTargetsError(f"only {len(population)} of {n_models} unlearning runs with {kind} targets "
                                       "stayed finite: lower --unlearn-lr or --unlearn-epochs")
            conf, ra, ta = _population_stats(population, y)
            columns[kind] = fq.epsilons(conf, ref_conf)
            points[kind], quality = _quality(columns[kind], len(population), cfg.seed)
            result["kinds"][kind] = {**quality, "score": fq.final_score(quality["F"], ra, ref_ra, ta, ref_ta),
                                     "acc_retain": ra, "acc_test": ta, "ra_ratio": ra / ref_ra,
                                     "ta_ratio": ta / ref_ta, "n_models": len(population),
                                     "n_diverged": n_models - len(population)}
            tracker.log_values({f"{kind}/F": quality["F"], f"{kind}/score": result["kinds"][kind]["score"]})
        if len(kinds) == 2:
            diff = points[kinds[1]] - points[kinds[0]]
            result["difference"] = {"of": f"{kinds[1]} - {kinds[0]}", "F": float(diff.mean()),
                                    "F_ci95": list(fq.bootstrap_interval(diff, cfg.seed))}
        if null:
            more = [cfg.seed + n_models + i for i in range(n_models)]
            null_conf = _population_stats([compute_logits(m, data, split)
                                           for m in reference_population(prepared, more, hooks)], y)[0]
            columns["retrain_vs_retrain"] = fq.epsilons(null_conf, ref_conf)
            result["null"] = _quality(columns["retrain_vs_retrain"], n_models, cfg.seed)[1]
        _write_epsilons(folder.path / "epsilons.csv", split.forget_idx.tolist(), columns)
        audit_plots.epsilon_histogram(folder.path / "epsilons.png", columns, fq.max_epsilon(n_models))
        return result

    return _in_folder(folder, tracker, work)


def _write_epsilons(path: Path, train_index: list[int], columns: dict[str, np.ndarray]) -> None:
    lines = [",".join(["train_index", *columns])]
    lines += [",".join([str(i), *(f"{columns[c][row]:.6g}" for c in columns)]) for row, i in enumerate(train_index)]
    write_text_atomic(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------- saved runs

def load_run(run_dir: str | Path, hooks: Hooks | None = None, out: str | Path | None = None
             ) -> tuple[RunConfig, Prepared, nn.Module, dict]:
    """A finished run folder's config, its prepared original/reference (from the cache) and unlearned model;
    out (default: the run's own out) must be writable, checked before anything is computed."""
    run_dir = Path(run_dir)
    if not (run_dir / "result.json").is_file():
        raise SoftTargetsError(f"{run_dir} is not a finished run folder (no result.json): give a folder written "
                               "by `softtargets run`")
    weights = run_dir / "model.pt"
    if not weights.is_file():
        raise SoftTargetsError(f"{run_dir} has no model.pt (runs from before weights were saved): rerun it with "
                               "`softtargets run`")
    result = json.loads((run_dir / "result.json").read_text())
    if result.get("status") != "completed":
        raise SoftTargetsError(f"{run_dir} ended as '{result.get('status')}': only completed runs can be audited")
    cfg = config_from_dict(read_yaml(run_dir / "config.yaml"), str(run_dir / "config.yaml"))
    validate(cfg, paths=False)  # the run's out and cache_dir may be another machine's
    check_writable(out or cfg.out, "--out")
    prepared = prepare(cfg, hooks)
    if prepared.split.hash != result["split"]["hash"]:
        raise SoftTargetsError(f"the forget split of {run_dir} cannot be rebuilt (the data or the forget file "
                               "changed since the run): rerun it")
    bundle = prepared.data.bundle
    model = build_model(cfg.training.architecture, bundle.input_shape, bundle.num_classes).to(prepared.data.device)
    model.load_state_dict(torch.load(weights, map_location=prepared.data.device, weights_only=True))
    return cfg, prepared, model, result


# ---------------------------------------------------------------- relearning attack

def relearn(cfg: RunConfig | None = None, run_dir: str | Path | None = None,
            types: tuple[str, ...] = rl.DEFAULT_TYPES, ks: tuple[int, ...] | None = None,
            settings: rl.RelearnSettings = rl.RelearnSettings(), hooks: Hooks | None = None,
            tracking: dict | None = None, out: str | Path | None = None) -> dict:
    """Attack the unlearned model (of run_dir, or unlearned now from cfg) and, for comparison, the retrained
    reference: fine-tune each on every relearn set (type x k) and record held-out forget accuracy.
    ks None: the paper's k grid for each relearn set (metrics.relearn.k_grid)."""
    hooks = hooks or Hooks()
    ks_list = None if ks is None else list(ks)
    rl.check_settings(list(types), ks_list, settings)
    if run_dir is not None:
        cfg, prepared, model, _ = load_run(run_dir, hooks, out)
        bundle, split = prepared.data.bundle, prepared.split
        attack = _attack_inputs(cfg, bundle, split, types, ks_list, settings, hooks)
        source = Path(run_dir).name
    else:
        method_cls = validate(cfg)
        use_compute(cfg)  # before the first tensor operation (training.fit.use_compute says why)
        bundle = load_configured(cfg)
        split = split_for(cfg, bundle, hooks=hooks)
        attack = _attack_inputs(cfg, bundle, split, types, ks_list, settings, hooks)  # checked before training
        prepared = prepare(cfg, hooks, bundle)
        model = _saved_model(cfg, prepared)
        if model is None:
            model = unlearn_copy(cfg, method_cls, prepared, hooks)[0]
        source = None
    grid = attack["grid"]
    name = relearn_name(cfg, types, ks, settings, source)
    tracker = _tracker(tracking, cfg, "relearn", name)
    folder = RunFolder(out or cfg.out, name)
    hooks = HookList(hooks, folder, tracker)

    def work() -> dict:
        folder.write_yaml("config.yaml", {**cfg.to_dict(), "relearn": {"source_run": source, "types": list(types),
                                                                       "k": grid, **settings.__dict__}})
        data, split = prepared.data, prepared.split
        pool, held = rl.partition(attack["order"])
        held_idx = split.forget_idx[held].to(data.device)
        held_out = SplitData(data, data.train_x[held_idx], data.train_y[held_idx])
        test = SplitData(data, data.test_x, data.test_y)
        corrupted = None if attack["corrupted"] is None else attack["corrupted"].to(data.device)
        original_acc = accuracy(compute_logits(prepared.original, data, split).forget[held.to(data.device)],
                                held_out.y)
        target = settings.recover_fraction * original_acc
        total_steps = settings.total_steps(len(data.train_y))
        curves: dict = {"unlearned": {}, "reference": {}}
        jobs = [(t, k) for t in types for k in grid[t]]
        with hooks.progress("relearn attack", 2 * len(jobs)) as advance:
            for role, start in (("unlearned", model), ("reference", prepared.reference)):
                memo = _CurveMemo(cfg, start, split, attack, settings, total_steps) if role == "reference" else None
                for t, k in jobs:
                    def attack_curve(t=t, k=k, start=start) -> dict:
                        train = rl.relearn_set(t, k, data, split, pool, corrupted, attack["mix_class"])
                        return rl.relearn_curve(copy.deepcopy(start), train, held_out, test, settings, cfg.seed,
                                                total_steps)

                    curves[role].setdefault(t, {})[str(k)] = memo.curve(t, k, attack_curve) if memo else attack_curve()
                    advance(1)
        summary = {role: {t: {k: rl.summarise(c, target, curves["reference"][t][k]) for k, c in row.items()}
                          for t, row in curves[role].items()} for role in curves}
        audit_plots.relearn_curves(folder.path / "relearn_curves.png", curves, target)
        audit_plots.relearn_auc(folder.path / "relearn_auc.png", summary)
        for role in summary:
            tracker.log_values({f"{role}/{t}/k{k}/auc": s["auc"] for t, row in summary[role].items()
                                for k, s in row.items()})
        return {"status": "completed", "name": folder.final.name, "command": "relearn", "source_run": source,
                "seed": cfg.seed, "dataset": cfg.data.dataset, "architecture": cfg.training.architecture,
                "method": cfg.unlearning.method, "targets": cfg.targets.kind,
                "settings": {**settings.__dict__, "types": list(types), "k": grid, "steps_run": total_steps,
                             "optimizer": "adam", "schedule": "cosine to 0.1 lr", "denormals": "flushed to zero",
                             "corruption": attack["corruption"]},
                "pool": len(pool), "held_out_forget": len(held), "original_held_out_forget_acc": original_acc,
                "recover_target": target, "summary": summary, "curves": curves}

    return _in_folder(folder, tracker, work)


def _saved_model(cfg: RunConfig, prepared: Prepared) -> nn.Module | None:
    """The unlearned weights of cfg's own completed run, where its folder is under cfg.out (a relearn grid writing
    into its study's folder): the model unlearning again would give, bit for bit, without the cost. None where
    there is no such run or its split differs."""
    from softtargets.experiment import run_name

    folder = Path(cfg.out) / run_name(cfg)
    try:
        result = json.loads((folder / "result.json").read_text())
        if result.get("status") != "completed" or result["split"]["hash"] != prepared.split.hash:
            return None
        state = torch.load(folder / "model.pt", map_location=prepared.data.device, weights_only=True)
    except (OSError, ValueError, KeyError, RuntimeError):
        return None
    bundle = prepared.data.bundle
    model = build_model(cfg.training.architecture, bundle.input_shape, bundle.num_classes).to(prepared.data.device)
    model.load_state_dict(state)
    return model


def relearn_name(cfg: RunConfig, types: tuple[str, ...], ks: tuple[int, ...] | None,
                 settings: rl.RelearnSettings, source: str | None = None, legacy: bool = False) -> str:
    """The run folder name of a relearning attack: readable parts and a digest of everything it depends on (ks
    None: the paper's k grid); legacy as for forget_quality_name."""
    ks = None if ks is None else sorted(ks)
    config = cfg.to_dict() if legacy else science(cfg)
    return (f"relearn-{cfg.data.dataset}-{cfg.training.architecture}-{_method_slug(cfg)}-{cfg.targets.kind}-"
            f"seed{cfg.seed}-{_digest(config, source, list(types), ks, settings.__dict__)}")


class _CurveMemo:
    """The retrained reference's attack curves in CACHE_DIR/relearn, shared by every attack on the same seed:
    the reference, its relearn sets and the attack are the same whichever unlearned model is attacked, so the
    arms of a study pay for the reference's curves once. Keyed by the reference's weights, the forget split,
    the relearn order, the corruption, the attack settings and the seed; verified like every cache entry."""

    def __init__(self, cfg: RunConfig, reference: nn.Module, split, attack: dict, settings: rl.RelearnSettings,
                 total_steps: int):
        self.cache = _RelearnCache(cfg.cache_dir)
        weights = hashlib.sha256()
        for name, tensor in reference.state_dict().items():
            weights.update(name.encode())
            weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        self.parts = {"reference": weights.hexdigest(), "forget": _tensor_digest(split.forget_idx),
                      "order": _tensor_digest(attack["order"]), "mix_class": attack["mix_class"],
                      "corruption": attack["corruption"], "settings": settings.__dict__, "seed": cfg.seed,
                      "total_steps": total_steps, "torch": torch.__version__, "denormals": "flushed",
                      "threads_first": True}  # curves from before use_compute ran first are not reused

    def curve(self, relearn_type: str, k: int, compute) -> dict:
        key = hashlib.sha256(json.dumps({**self.parts, "type": relearn_type, "k": k}, sort_keys=True,
                                        default=str).encode()).hexdigest()[:24]
        with self.cache.lock(key, "relearn reference curve"):
            hit = self.cache.load(key, "relearn-reference")
            if hit is not None:
                return {name: values.tolist() for name, values in hit[0].items()}
            curve = compute()
            self.cache.save(key, {name: torch.tensor(values, dtype=torch.int64 if name.endswith("step") else
                                                     torch.float64) for name, values in curve.items()},
                            {"type": relearn_type, "k": k}, "relearn-reference")
        return curve


class _RelearnCache(TensorCache):
    folder = "relearn"


def _tensor_digest(values: torch.Tensor) -> str:
    return hashlib.sha256(values.cpu().contiguous().numpy().tobytes()).hexdigest()


def _attack_inputs(cfg: RunConfig, bundle, split, types, ks: list[int] | None, settings: rl.RelearnSettings,
                   hooks: Hooks) -> dict:
    """Everything the attack needs from the data, checked before any model is trained: the k grid per
    relearn set, the forget set's relearn order, the class +retain_cls sets mix in, corrupted test images."""
    n_forget = len(split.forget_idx)
    out = {"grid": rl.k_grid(list(types), ks, n_forget), "mix_class": None, "corrupted": None, "corruption": None}
    if any(t.endswith("+retain_cls") for t in types):
        out["mix_class"] = rl.retained_class(split, bundle.train_y)
    if any(t.startswith("corrupted_test") for t in types):
        if settings.corrupted:
            out["corrupted"] = rl.read_cifar_c(settings.corrupted, bundle.test_x, bundle.test_y)
            out["corruption"] = f"CIFAR-C file {settings.corrupted}, severity {rl.SEVERITY}"
        else:
            out["corrupted"] = rl.jpeg_corrupt(bundle.test_x)
            out["corruption"] = f"JPEG quality {rl.JPEG_QUALITY} with PIL (CIFAR-10-C jpeg_compression, severity 5)"
    scores = None
    if settings.selection != "random":
        from softtargets.metrics.memorisation import memorisation_scores

        scores = memorisation_scores(cfg, bundle, hooks)[split.forget_idx.numpy()]
    out["order"] = rl.forget_order(n_forget, settings.selection, cfg.seed, scores)
    return out


# ---------------------------------------------------------------- linear mode connectivity

def lmc_paths(prepared: Prepared, unlearned: nn.Module) -> dict:
    """Original -> unlearned and original -> reference, 21 points each."""
    return {"original_to_unlearned": lmc_path(prepared.original, unlearned, prepared.data, prepared.split),
            "original_to_reference": lmc_path(prepared.original, prepared.reference, prepared.data, prepared.split)}


def write_lmc(path: Path, prepared: Prepared, unlearned: nn.Module) -> dict:
    """lmc.json and lmc.png into path; returns the barrier heights for result.json."""
    paths = lmc_paths(prepared, unlearned)
    write_text_atomic(path / "lmc.json", json.dumps(paths, indent=1) + "\n")
    audit_plots.lmc_plot(path / "lmc.png", paths)
    return {name: {k: v for k, v in p.items() if k.startswith("barrier_")} for name, p in paths.items()}


def lmc_extra(folder_path: Path, prepared: Prepared, result: dict) -> dict:
    """For `run --lmc`: mode connectivity of the run's unlearned model (model.pt in the unfinished folder)."""
    if result["status"] != "completed":
        return {}
    model = copy.deepcopy(prepared.original)
    model.load_state_dict(torch.load(folder_path / "model.pt", map_location=prepared.data.device,
                                     weights_only=True))
    return {"lmc": write_lmc(folder_path, prepared, model)}


def lmc(run_dir: str | Path, hooks: Hooks | None = None, tracking: dict | None = None,
        out: str | Path | None = None) -> dict:
    """Mode connectivity of a saved run's unlearned model, in a folder of its own."""
    cfg, prepared, model, _ = load_run(run_dir, hooks, out)
    name = f"lmc-{Path(run_dir).name}"
    tracker = _tracker(tracking, cfg, "lmc", name)
    folder = RunFolder(out or cfg.out, name)

    def work() -> dict:
        barriers = write_lmc(folder.path, prepared, model)
        for path_name, values in barriers.items():
            tracker.log_values({f"{path_name}/{k}": v for k, v in values.items()})
        return {"status": "completed", "name": folder.final.name, "command": "lmc", "source_run": Path(run_dir).name,
                "lmc": barriers}

    return _in_folder(folder, tracker, work)

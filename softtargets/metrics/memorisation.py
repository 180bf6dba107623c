"""Memorisation scores, one per train image, for choosing forget and relearn examples by memorisation as
Siddiqui et al. 2025 do (shoaibahmed/vision_relearning vision_unlearner.py:1067-1102 and 1150-1157: sort by
score, `high_mem` takes the most memorised first). Higher = more memorised.

Two sources (data.memorisation):
  PATH.npy   one score per train image, in train order.
  PATH.npz   the files the paper reads: C-scores of Jiang et al. 2021 under key `scores`, memorisation
             = 1 - score (vision_unlearner.py:1013-1015), or Feldman & Zhang's estimates under `tr_mem` (:1026).
  unset      estimated with this tool's own models, a cheap held-out C-score: PAIRS pairs of models are trained
             with the run's training recipe on complementary random halves of the train set, so every image
             is held out of exactly PAIRS models; its score is 1 - the mean probability those models give its
             label. Images learned only when seen (atypical, ambiguous, mislabelled) score high. The models go
             to the model cache, so the estimate is computed once per dataset and recipe.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from softtargets.data.batches import DeviceData, SplitData
from softtargets.errors import SoftTargetsError
from softtargets.hooks import Hooks
from softtargets.inference import predict_logits

PAIRS = 4  # 8 models; each image is held out of 4 of them
_estimates: dict[str, np.ndarray] = {}  # per process: key of (data, recipe) -> scores


def read_scores(path: str | Path) -> np.ndarray:
    """Scores from a .npy (as they are) or a paper-style .npz (C-scores inverted, or tr_mem)."""
    path = Path(path)
    if path.suffix.lower() not in (".npy", ".npz"):
        raise SoftTargetsError(f"data.memorisation {path}: give a .npy of per-image scores or a .npz with "
                               f"'scores' (C-scores) or 'tr_mem'")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise SoftTargetsError(f"cannot read memorisation scores {path}: {err}") from None
    if path.suffix.lower() == ".npz":
        with loaded:
            if "scores" in loaded.files:
                scores = 1.0 - loaded["scores"]
            elif "tr_mem" in loaded.files:
                scores = loaded["tr_mem"]
            else:
                raise SoftTargetsError(f"{path}: no 'scores' or 'tr_mem' array (found {', '.join(loaded.files)})")
    else:
        scores = loaded
    if scores.ndim != 1 or not np.issubdtype(scores.dtype, np.number) or not np.isfinite(scores).all():
        raise SoftTargetsError(f"{path}: memorisation scores must be a 1-D array of finite numbers, one per train "
                               f"image")
    return scores.astype(np.float64)


def estimate(data: DeviceData, recipe, cache_dir: str | None, hooks: Hooks | None = None) -> np.ndarray:
    """1 - held-out probability of the label, averaged over the PAIRS models that did not train on the image."""
    from dataclasses import asdict

    from softtargets.training.parallel import Job, fill_cache
    from softtargets.training.fit import ModelCache, train_or_load

    hooks = hooks or Hooks()
    bundle = data.bundle
    key = ModelCache.key(role="memorisation-scores", recipe=asdict(recipe), data=bundle.fingerprint(), pairs=PAIRS)
    if key in _estimates:
        return _estimates[key]
    n = len(data.train_y)
    parts = {"dataset": bundle.name, "data": bundle.fingerprint()}
    halves = []  # (seed, train positions, held-out positions)
    for pair in range(PAIRS):
        order = torch.randperm(n, generator=torch.Generator().manual_seed(pair))
        first, second = torch.sort(order[: n // 2]).values, torch.sort(order[n // 2:]).values
        halves += [(2 * pair, first, second), (2 * pair + 1, second, first)]

    def split(idx: torch.Tensor) -> SplitData:
        idx = idx.to(data.device)
        return SplitData(data, data.train_x[idx], data.train_y[idx])

    jobs = [Job("memorisation", split(train), seed, {**parts, "half": f"{seed // 2}/{seed % 2}"})
            for seed, train, _ in halves]
    cache = ModelCache(cache_dir)
    fill_cache(jobs, recipe, cache, hooks)
    held_prob = torch.zeros(n, dtype=torch.float64)
    for job, (_, _, held) in zip(jobs, halves):
        model = train_or_load(job.role, job.split, recipe, job.seed, cache, job.cache_parts, hooks)[0]
        held_d = held.to(data.device)
        probs = torch.softmax(predict_logits(model, data, data.train_x[held_d]), dim=1)
        held_prob[held] += probs.gather(1, data.train_y[held_d][:, None]).squeeze(1).double().cpu()
    scores = (1.0 - held_prob / PAIRS).numpy()
    _estimates[key] = scores
    return scores


def memorisation_scores(cfg, bundle, hooks: Hooks | None = None) -> np.ndarray:
    """The configured scores for a loaded dataset: read from data.memorisation, or estimated."""
    if cfg.data.memorisation:
        scores = read_scores(cfg.data.memorisation)
        if len(scores) != len(bundle.train_y):
            raise SoftTargetsError(f"{cfg.data.memorisation}: {len(scores)} memorisation scores but the train set "
                                   f"has {len(bundle.train_y)} images: give one score per train image, in order")
        return scores
    from softtargets.training.fit import resolve_device

    return estimate(DeviceData(bundle, resolve_device(cfg.device)), cfg.training, cfg.cache_dir, hooks)

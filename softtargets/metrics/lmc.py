"""Linear mode connectivity between two models of one architecture (methods-metrics.md section 7).

Reference: Siddiqui et al. 2025 (shoaibahmed/vision_relearning, --evaluate-linear-mode-connectivity,
stride 0.05): theta(a) = (1 - a) theta_A + a theta_B over the whole state_dict (BatchNorm running statistics
included, not re-estimated), accuracy on retain, forget and test at each a. A barrier on the path from the
original to the unlearned model predicts resistance to relearning.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn

from softtargets.data.batches import DeviceData
from softtargets.data.splits import ForgetSplit
from softtargets.evaluation import compute_logits
from softtargets.metrics.accuracy import accuracy

POINTS = 21  # a = 0, 0.05, ..., 1
SPLITS = ("retain", "forget", "test")


def interpolate_state(a: dict, b: dict, alpha: float) -> dict:
    """(1 - alpha) a + alpha b for every floating tensor; integer buffers (BatchNorm's step counter) from a."""
    return {k: torch.lerp(v, b[k].to(v.dtype), alpha) if v.is_floating_point() else v.clone() for k, v in a.items()}


def barrier(alphas: list[float], values: list[float]) -> float:
    """Accuracy barrier: max_a [(1 - a) acc(0) + a acc(1) - acc(a)], >= 0 (0 at the endpoints).

    The height of the dip below the straight line between the endpoints (Frankle et al. 2020, "Linear mode
    connectivity and the lottery ticket hypothesis"; Entezari et al. 2022 use the same form on the loss).
    """
    a, v = np.asarray(alphas, dtype=np.float64), np.asarray(values, dtype=np.float64)
    line = (1 - a) * v[0] + a * v[-1]
    return float(max(0.0, np.max(line - v)))


def lmc_path(model_a: nn.Module, model_b: nn.Module, data: DeviceData, split: ForgetSplit,
             points: int = POINTS) -> dict:
    """Accuracies along the straight line from model_a (a = 0) to model_b (a = 1), with each split's barrier."""
    state_a = {k: v.detach().clone() for k, v in model_a.state_dict().items()}
    state_b = model_b.state_dict()
    probe = copy.deepcopy(model_a)
    y = {"retain": data.train_y[split.retain_idx.to(data.device)],
         "forget": data.train_y[split.forget_idx.to(data.device)], "test": data.test_y}
    alphas = np.linspace(0.0, 1.0, points).tolist()
    curves: dict[str, list[float]] = {s: [] for s in SPLITS}
    for alpha in alphas:
        probe.load_state_dict(interpolate_state(state_a, state_b, alpha))
        logits = compute_logits(probe, data, split)
        for s in SPLITS:
            curves[s].append(accuracy(getattr(logits, s), y[s]))
    return {"alpha": alphas, **{f"acc_{s}": curves[s] for s in SPLITS},
            **{f"barrier_{s}": barrier(alphas, curves[s]) for s in SPLITS}}

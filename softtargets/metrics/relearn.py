"""The relearning (tamper-resistance) attack of Siddiqui et al. 2025, "From Dormant to Deleted"
(arXiv 2505.22310, shoaibahmed/vision_relearning; methods-metrics.md section 7).

The attacker fine-tunes a model on a relearn set and we watch whether accuracy on forget examples it never
sees comes back. A model that truly forgot behaves like the retrained reference (little recovery); one that
only hid the knowledge recovers it quickly. The forget set is permuted once (seeded): its first max(k)
examples form the pool the k relearn examples come from, the rest are held out to measure recovery.

Relearn set types: retain (D_r + k), only_forget (k only), test (D_t + k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from softtargets.data.batches import DeviceData, SplitData
from softtargets.data.splits import ForgetSplit
from softtargets.errors import SoftTargetsError
from softtargets.inference import predict_logits
from softtargets.training import Diverged, make_optimizer

RELEARN_TYPES = ("retain", "only_forget", "test")
DEFAULT_K = (0, 1, 5, 10, 50, 100)


@dataclass(frozen=True)
class RelearnSettings:
    """Siddiqui et al.: Adam lr 1e-5, no weight decay, cosine to 0.1 lr, batch 128, evaluation every 10 steps."""

    steps: int = 300
    lr: float = 1e-5
    batch_size: int = 128
    eval_every: int = 10
    recover_fraction: float = 0.9  # recovered = held-out forget accuracy >= this x the original model's


def check_settings(types: list[str], ks: list[int], settings: RelearnSettings, n_forget: int | None = None) -> None:
    """One actionable line for every way the attack's inputs can be wrong (the k range once n_forget is known)."""
    for t in types:
        if t not in RELEARN_TYPES:
            raise SoftTargetsError(f"unknown relearn type '{t}': choose from {', '.join(RELEARN_TYPES)}")
    if not types or not ks:
        raise SoftTargetsError("give at least one relearn type and one k")
    if min(ks) < 0:
        raise SoftTargetsError(f"--k must be >= 0 (forget examples added to the relearn set), got {min(ks)}")
    if n_forget is not None and max(ks) >= n_forget:
        raise SoftTargetsError(f"--k {max(ks)} needs more than {max(ks)} forget examples (the others are held out "
                               f"to measure recovery); this split has {n_forget}: lower --k")
    for name in ("steps", "batch_size", "eval_every"):
        if getattr(settings, name) < 1:
            raise SoftTargetsError(f"relearn {name.replace('_', '-')} must be >= 1, got {getattr(settings, name)}")
    if not 0 < settings.lr < math.inf:  # also false for nan
        raise SoftTargetsError(f"relearn lr must be a finite number > 0, got {settings.lr}")
    if not 0 < settings.recover_fraction <= 1:
        raise SoftTargetsError(f"--recover-fraction must be in (0, 1], got {settings.recover_fraction}")


def forget_partition(n_forget: int, max_k: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(pool, held_out) positions in the forget set: a seeded permutation split after max_k."""
    order = torch.randperm(n_forget, generator=torch.Generator().manual_seed(seed))
    return order[:max_k], order[max_k:]


def relearn_set(kind: str, k: int, data: DeviceData, split: ForgetSplit, pool: torch.Tensor) -> SplitData:
    """The attacker's training data: the base set of `kind` plus the first k examples of the forget pool."""
    extra = split.forget_idx[pool[:k]].to(data.device)
    xs, ys = [data.train_x[extra]], [data.train_y[extra]]
    if kind == "retain":
        retain = split.retain_idx.to(data.device)
        xs.append(data.train_x[retain])
        ys.append(data.train_y[retain])
    elif kind == "test":
        xs.append(data.test_x)
        ys.append(data.test_y)
    return SplitData(data, torch.cat(xs), torch.cat(ys))


def recovery_auc(steps: list[int], accuracy: list[float]) -> float:
    """Area under the held-out forget accuracy curve divided by the attack length: the mean accuracy over
    the attack (trapezoid rule), in [0, 1]. Higher = more knowledge recovered, sooner."""
    if steps[-1] == 0:
        return float(accuracy[0])
    return float(np.trapezoid(accuracy, steps) / steps[-1])


def steps_to_recover(steps: list[int], accuracy: list[float], target: float) -> int | None:
    """The first evaluated step at which held-out forget accuracy reaches target; None if it never does."""
    return next((s for s, a in zip(steps, accuracy) if a >= target), None)


def relearn_curve(model: nn.Module, train: SplitData, held_out: SplitData, test: SplitData,
                  settings: RelearnSettings, seed: int) -> dict:
    """Fine-tune model in place on train (cross-entropy on labels) for settings.steps steps; return held-out
    forget accuracy and test accuracy at step 0 and every eval_every steps. An empty train set means no
    attack: the curve stays at its start."""

    def evaluate(step: int) -> None:
        for name, part in (("forget_acc", held_out), ("test_acc", test)):
            logits = predict_logits(model, part.data, part.x)
            curve[name].append((logits.argmax(1) == part.y).float().mean().item())
        curve["step"].append(step)

    curve: dict[str, list] = {"step": [], "forget_acc": [], "test_acc": []}
    evaluate(0)
    if len(train) == 0:
        return curve
    optimizer = make_optimizer(model.parameters(), "adam", settings.lr, 0.0)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.steps, eta_min=0.1 * settings.lr)
    batches = train.cycle(settings.batch_size, torch.Generator().manual_seed(seed))
    model.train()
    for step in range(1, settings.steps + 1):
        batch = next(batches)
        loss = F.cross_entropy(model(batch.x), batch.y)
        if not math.isfinite(loss.item()):
            raise Diverged(f"relearning diverged at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % settings.eval_every == 0 or step == settings.steps:
            evaluate(step)
    return curve


def summarise(curve: dict, target: float) -> dict:
    """The curve's numbers: start, end and peak held-out forget accuracy, recovery AUC, steps to recover."""
    acc = curve["forget_acc"]
    return {"start": acc[0], "end": acc[-1], "peak": max(acc), "auc": recovery_auc(curve["step"], acc),
            "steps_to_recover": steps_to_recover(curve["step"], acc, target)}

"""Accuracy-style metrics on logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def accuracy(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of argmax predictions equal to the label (nan for an empty set)."""
    if len(y) == 0:
        return float("nan")
    return (logits.argmax(1) == y).float().mean().item()


def per_class_sum(values: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Sum of values per class. On CUDA, bincount with weights accumulates with atomics (the order, hence the
    last bits, varies; deterministic mode refuses it), so there a one-hot product sums instead (in float64)."""
    if y.device.type != "cuda":
        return torch.bincount(y, weights=values, minlength=num_classes)
    return (F.one_hot(y, num_classes).double().T @ values.double()).to(values.dtype)


def per_class_accuracy(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Accuracy restricted to each true class k (nan where class k has no examples); the original tool's plot."""
    correct = (logits.argmax(1) == y).float()
    totals = torch.bincount(y, minlength=num_classes).float()
    hits = per_class_sum(correct, y, num_classes)
    return (hits / totals).tolist()  # 0/0 -> nan


def per_class_loss(logits: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[float]:
    """Mean cross-entropy of the examples of each true class (nan where absent)."""
    losses = F.cross_entropy(logits, y, reduction="none")
    totals = torch.bincount(y, minlength=num_classes).float()
    return (per_class_sum(losses, y, num_classes) / totals).tolist()


def accuracy_distance(per_class_a: list[float], per_class_b: list[float]) -> float:
    """Mean absolute difference of per-class accuracies over classes present in both.

    The original SoftTargets tool's headline "accuracy distance" between the unlearned model and the
    retrained reference (0 = the same accuracy on every class).
    """
    a, b = torch.tensor(per_class_a), torch.tensor(per_class_b)
    keep = ~(a.isnan() | b.isnan())
    return (a[keep] - b[keep]).abs().mean().item()

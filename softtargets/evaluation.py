"""Evaluation of a model against the original and the retrained reference.

Each model is run once per split (retain-train, forget-train, test); every metric reuses those logits.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from softtargets.data.batches import DeviceData
from softtargets.data.splits import ForgetSplit
from softtargets.inference import predict_logits
from softtargets.metrics.accuracy import accuracy, accuracy_distance, per_class_accuracy, per_class_loss
from softtargets.metrics.divergence import js_divergence
from softtargets.metrics.mia import (LOSS_MIA_MIN, confidence_mia_auc, loss_mia_accuracy, max_confidence,
                                     per_example_loss, svc_mia_efficacy, true_class_confidence, unlearn_score)
from softtargets.metrics.weights import l2_distance, mean_abs_change

@dataclass
class Logits:
    """One model's logits on each split, computed once."""

    retain: torch.Tensor
    forget: torch.Tensor
    test: torch.Tensor

    def finite(self) -> bool:
        return all(torch.isfinite(t).all() for t in (self.retain, self.forget, self.test))


def compute_logits(model: nn.Module, data: DeviceData, split: ForgetSplit) -> Logits:
    retain_idx, forget_idx = split.retain_idx.to(data.device), split.forget_idx.to(data.device)
    return Logits(
        retain=predict_logits(model, data, data.train_x, index=retain_idx),
        forget=predict_logits(model, data, data.train_x, index=forget_idx),
        test=predict_logits(model, data, data.test_x),
    )


def own_metrics(logits: Logits, data: DeviceData, split: ForgetSplit, seed: int) -> dict:
    """Metrics of one model on its own: accuracies per split and per class, MIAs, unlearn_score."""
    y_retain = data.train_y[split.retain_idx.to(data.device)]
    y_forget = data.train_y[split.forget_idx.to(data.device)]
    y_test, c = data.test_y, data.bundle.num_classes
    out = {
        "acc_retain": accuracy(logits.retain, y_retain),
        "acc_forget": accuracy(logits.forget, y_forget),
        "acc_test": accuracy(logits.test, y_test),
        "per_class_test_acc": per_class_accuracy(logits.test, y_test, c),
        "per_class_test_loss": per_class_loss(logits.test, y_test, c),
        "mia_loss_acc": loss_mia_accuracy(per_example_loss(logits.forget, y_forget),
                                          per_example_loss(logits.test, y_test), seed),
    }
    forgotten = torch.isin(y_test, torch.tensor(split.forget_classes, device=y_test.device, dtype=y_test.dtype))
    # MLS-Bench compares forget-train with unseen images of the same classes; for random or partial
    # forget sets every test image is an unseen image of the same distribution.
    nonmembers = logits.test[forgotten] if split.forget_classes else logits.test
    # confidences stay where the logits are: ranked on a GPU, scikit-learn's roc_auc_score on CPU
    out["mia_auc"] = confidence_mia_auc(max_confidence(logits.forget), max_confidence(nonmembers))
    out["mia_svc_efficacy"] = svc_mia_efficacy(true_class_confidence(logits.retain, y_retain),
                                               true_class_confidence(logits.test, y_test),
                                               true_class_confidence(logits.forget, y_forget), seed)
    if split.forget_classes:
        out["acc_test_forget_classes"] = accuracy(logits.test[forgotten], y_test[forgotten])
        out["acc_test_retain_classes"] = accuracy(logits.test[~forgotten], y_test[~forgotten])
        out["unlearn_score"] = unlearn_score(out["acc_test_retain_classes"], out["acc_test_forget_classes"],
                                             out["mia_auc"])
    return out


def unavailable_metrics(data: DeviceData, split: ForgetSplit) -> dict[str, str]:
    """Metrics this split cannot give (recorded as null), each with the reason: result.json's `unavailable`."""
    n_forget, y_test = len(split.forget_idx), data.test_y.cpu()
    reasons = {}
    if min(n_forget, len(y_test)) < LOSS_MIA_MIN:
        reasons["mia_loss_acc"] = (f"needs at least {LOSS_MIA_MIN} forget and {LOSS_MIA_MIN} test examples "
                                   f"(forget {n_forget}, test {len(y_test)})")
    present = set(y_test.unique().tolist())
    absent = [k for k in range(data.bundle.num_classes) if k not in present]
    if absent:
        reasons["per_class_test_acc"] = reasons["per_class_test_loss"] = f"no test images of class(es) {absent}"
    if split.forget_classes and not present & set(split.forget_classes):
        for key in ("acc_test_forget_classes", "mia_auc", "unlearn_score"):
            reasons[key] = "no test images of the forgotten classes"
    if split.forget_classes and not present - set(split.forget_classes):
        for key in ("acc_test_retain_classes", "unlearn_score"):
            reasons[key] = "no test images of the retained classes"
    return reasons


def relative_metrics(model: nn.Module, logits: Logits, own: dict, original: nn.Module, reference: nn.Module,
                     reference_logits: Logits, reference_own: dict) -> dict:
    """How far a model is from the retrained reference (and how far it moved from the original)."""
    return {
        "forget_acc_gap": abs(own["acc_forget"] - reference_own["acc_forget"]),
        "acc_distance_to_reference": accuracy_distance(own["per_class_test_acc"],
                                                       reference_own["per_class_test_acc"]),
        "js_forget_to_reference": js_divergence(logits.forget, reference_logits.forget),
        "js_test_to_reference": js_divergence(logits.test, reference_logits.test),
        "l2_to_reference": l2_distance(model, reference),
        "l2_to_original": l2_distance(model, original),
        "param_change": mean_abs_change(model, original),
    }


def scalar_metrics(metrics: dict) -> dict[str, float]:
    """The single-number metrics (no per-class lists), with nan kept as nan."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}

"""The metrics `compare` and `report` tabulate, which way each is better, and how each comparison tests them.

Directions: "higher"/"lower" are better; "reference" means the closer to the retrained reference's value the
better, so comparisons test the per-seed distance |m - m_reference| (each seed has its own reference), not
the raw value; "info" rows are shown but never tested for a winner.

Families: every comparison has one primary metric, tested at alpha = 0.05 without correction; the other
tested metrics form the secondary family, Holm-adjusted together.

The primary metric is js_forget_to_reference, the mean Jensen-Shannon divergence between the unlearned and
the retrained model's output distributions on the forget set. The question is whether an unlearned model ends
up closer to the retrained one; on the examples it had to forget this distance compares the whole predicted
distribution, which is what the targets change (accuracy-based distances see only the argmax and tie often
between seeds), it is defined for every forget spec (the class-based metrics are not), and the reference's
own value is 0 by construction, so smaller is closer without a reference value to subtract.
"""

from __future__ import annotations

PRIMARY = "js_forget_to_reference"
ALPHA = 0.05

HEADLINE = {
    "js_forget_to_reference": ("JS divergence to reference on forget set", "lower"),
    "acc_forget": ("forget-train accuracy", "reference"),
    "acc_retain": ("retain-train accuracy", "higher"),
    "acc_test": ("test accuracy", "higher"),
    "acc_test_forget_classes": ("test accuracy on forgotten classes", "reference"),
    "acc_distance_to_reference": ("mean |per-class test acc - reference|", "lower"),
    "js_test_to_reference": ("JS divergence to reference on test set", "lower"),
    "mia_loss_acc": ("loss MIA accuracy, forget vs test (match the reference)", "reference"),
    "mia_auc": ("confidence MIA AUC (MLS-Bench; match the reference)", "reference"),
    "mia_svc_efficacy": ("SVC MIA-efficacy, confidence (SalUn; match the reference)", "reference"),
    "unlearn_score": ("MLS-Bench unlearn_score", "higher"),
    "l2_to_reference": ("L2 weight distance to reference", "lower"),
    "param_change": ("mean |theta - theta_original|", "info"),
}


def family(metric: str) -> str:
    """primary, secondary or info."""
    if metric == PRIMARY:
        return "primary"
    return "info" if HEADLINE[metric][1] == "info" else "secondary"


def compared_label(metric: str) -> str:
    """The quantity a comparison tests for a metric: the metric itself, or its distance to the reference."""
    return f"|{metric} - ref|" if HEADLINE[metric][1] == "reference" else metric


def compared_better(metric: str) -> str:
    """Which way the tested quantity is better (a distance to the reference: lower)."""
    better = HEADLINE[metric][1]
    return "lower" if better == "reference" else better


def compared_value(metric: str, unlearned: dict, reference: dict) -> float | None:
    """One seed's tested quantity: the unlearned model's value, or its distance to that seed's reference."""
    value = unlearned.get(metric)
    if value is None or HEADLINE[metric][1] != "reference":
        return value
    ref = reference.get(metric)
    return None if ref is None else abs(value - ref)

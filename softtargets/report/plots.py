"""Run plots (PNG, matplotlib Agg): per-class accuracy and loss like the original tool, unlearning curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

COLOURS = {"original": "#7f7f7f", "reference": "#2ca02c", "unlearned": "#d62728"}


def per_class_bars(path: Path, values: dict[str, list[float]], classes: list[str], ylabel: str, title: str) -> Path:
    """Grouped bars per class for original / reference / unlearned."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(classes) + 2), 3.6))
    width = 0.8 / len(values)
    x = np.arange(len(classes))
    for i, (label, ys) in enumerate(values.items()):
        ax.bar(x + (i - (len(values) - 1) / 2) * width, ys, width, label=label, color=COLOURS.get(label))
    ax.set_xticks(x, classes, rotation=45 if len(classes) > 12 or max(map(len, classes)) > 3 else 0, ha="right")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def unlearning_curves(path: Path, history: list[dict], reference_forget_acc: float) -> Path:
    """Forget and retain accuracy per unlearning epoch, with the reference's forget accuracy as the goal."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    epochs = [row["epoch"] for row in history]
    ax.plot(epochs, [row["forget_acc"] for row in history], "o-", color=COLOURS["unlearned"], label="forget acc")
    ax.plot(epochs, [row["retain_acc"] for row in history], "s-", color="#1f77b4", label="retain acc")
    ax.axhline(reference_forget_acc, ls="--", color=COLOURS["reference"], label="reference forget acc")
    ax.set_xlabel("unlearning epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

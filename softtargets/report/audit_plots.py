"""Plots of the audits (PNG, matplotlib Agg): epsilon histograms, relearning curves, mode connectivity."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from softtargets.report.plots import COLOURS  # noqa: E402

ROLE_STYLE = {"unlearned": "-", "reference": "--"}


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def epsilon_histogram(path: Path, columns: dict[str, np.ndarray], max_epsilon: float) -> Path:
    """Per-example epsilon for each population compared with the references; beyond max_epsilon scores 0."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    top = max(max_epsilon, max(float(np.max(v)) for v in columns.values())) + 0.5
    bins = np.arange(0, top + 0.5, 0.5)
    for name, eps in columns.items():
        ax.hist(np.minimum(eps, top), bins=bins, histtype="step", linewidth=1.6, label=name)
    ax.axvline(max_epsilon, ls=":", color="k", label="max resolvable epsilon")
    ax.set_xlabel("per-example epsilon (capped for display)")
    ax.set_ylabel("forget examples")
    ax.set_title("Forgetting quality: epsilon vs retrained references")
    ax.legend(fontsize=8)
    return _save(fig, path)


def relearn_curves(path: Path, curves: dict, target: float) -> Path:
    """Held-out forget accuracy during the attack: one panel per relearn type, one colour per k,
    solid = unlearned, dashed = retrained reference."""
    types = list(curves["unlearned"])
    fig, axes = plt.subplots(1, len(types), figsize=(4.2 * len(types), 3.6), squeeze=False)
    all_ks = sorted({int(k) for t in types for k in curves["unlearned"][t]})
    colour_of = dict(zip(all_ks, plt.cm.viridis(np.linspace(0, 0.9, len(all_ks)))))
    for ax, t in zip(axes[0], types):
        for k in curves["unlearned"][t]:
            colour = colour_of[int(k)]
            for role, style in ROLE_STYLE.items():
                c = curves[role][t][k]
                ax.plot(c["step"], c["forget_acc"], style, color=colour,
                        label=f"k={k}" if role == "unlearned" else None)
        ax.axhline(target, color="k", lw=0.8, ls=":")
        ax.set_title(f"relearn set: {t} + k")
        ax.set_xlabel("attack step")
        ax.set_ylim(-0.02, 1.02)
    axes[0][0].set_ylabel("held-out forget accuracy")
    axes[0][-1].legend(fontsize=7, title="solid unlearned\ndashed reference", title_fontsize=7)
    return _save(fig, path)


def relearn_auc(path: Path, summary: dict) -> Path:
    """Recovery AUC against k for each relearn type (each over its own k grid), unlearned vs reference."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    ks = sorted({int(k) for row in summary["unlearned"].values() for k in row})
    position = {k: i for i, k in enumerate(ks)}
    for i, t in enumerate(summary["unlearned"]):
        for role, style in ROLE_STYLE.items():
            row = summary[role][t]
            ax.plot([position[int(k)] for k in row], [s["auc"] for s in row.values()], style + "o", color=f"C{i}",
                    label=f"{t} ({role})")
    ax.set_xticks(range(len(ks)), [str(k) for k in ks])
    ax.set_xlabel("k forget examples in the relearn set")
    ax.set_ylabel("recovery AUC (mean held-out forget acc)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7)
    return _save(fig, path)


def lmc_plot(path: Path, paths: dict) -> Path:
    """Retain / forget / test accuracy along original -> unlearned and original -> reference."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, split in zip(axes, ("retain", "forget", "test")):
        for name, p in paths.items():
            colour = COLOURS["unlearned"] if name.endswith("unlearned") else COLOURS["reference"]
            ax.plot(p["alpha"], p[f"acc_{split}"], "o-", ms=3, color=colour,
                    label=f"{name} (barrier {p[f'barrier_{split}']:.3f})")
        ax.set_title(f"{split} accuracy")
        ax.set_xlabel("a: (1 - a) original + a endpoint")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("accuracy")
    return _save(fig, path)

"""Report figures (PNG, matplotlib Agg): the original tool's distribution plots and hard-vs-soft scatters."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

ARM_COLOURS = {"hard": "#1f77b4", "soft": "#d62728", "smooth": "#ff7f0e", "uniform": "#9467bd"}
DISTRIBUTION_METRICS = {"acc_distance_to_reference": "accuracy distance to reference",
                        "param_change": "parameter change (mean |θ − θ_original|)"}


def _finite(values) -> np.ndarray:
    return np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)


def distributions(path: Path, title: str, values: dict[str, dict[str, list[float]]]) -> Path:
    """One panel per metric: each arm's histogram (density) with its fitted normal pdf, arms overlaid.
    values: metric -> arm -> per-seed values."""
    fig, axes = plt.subplots(1, len(values), figsize=(5.2 * len(values), 3.6), squeeze=False)
    for ax, (metric, arms) in zip(axes[0], values.items()):
        everything = np.concatenate([_finite(v) for v in arms.values()] or [np.zeros(0)])
        bins = np.histogram_bin_edges(everything, bins="auto") if everything.size else 10
        for arm, raw in arms.items():
            v = _finite(raw)
            if v.size == 0:
                continue
            colour = ARM_COLOURS.get(arm)
            ax.hist(v, bins=bins, density=True, alpha=0.45, color=colour, label=f"{arm} (n={v.size})")
            if v.size > 1 and v.std() > 0:
                mu, sigma = stats.norm.fit(v)
                xs = np.linspace(everything.min() - sigma, everything.max() + sigma, 200)
                ax.plot(xs, stats.norm.pdf(xs, mu, sigma), color=colour, lw=2,
                        label=f"{arm} normal fit μ={mu:.4g} σ={sigma:.2g}")
        ax.set_xlabel(DISTRIBUTION_METRICS.get(metric, metric))
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def paired_scatter(path: Path, title: str, pairs: dict[str, tuple[list[float], list[float]]],
                   arms: tuple[str, str]) -> Path:
    """One panel per metric: each seed's (first arm, second arm) values with the y = x line; points above
    the line are seeds where the second arm's value is larger."""
    cols = min(4, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (metric, (xs, ys)) in zip(axes.flat, pairs.items()):
        ax.scatter(xs, ys, s=16, color=ARM_COLOURS.get(arms[1], "#d62728"))
        both = _finite(list(xs) + list(ys))
        if both.size:
            lo, hi = both.min(), both.max()
            pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 0.01
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="#7f7f7f", lw=1)
        ax.set_title(metric, fontsize=8)
        ax.set_xlabel(arms[0], fontsize=8)
        ax.set_ylabel(arms[1], fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path

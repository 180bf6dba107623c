"""Report figures (PNG, matplotlib Agg): the original tool's distribution plots, hard-vs-other scatters and a
forest plot of the mean differences."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

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
            colour = arm_colour(arm, list(arms))
            ax.hist(v, bins=bins, density=True, alpha=0.45, color=colour, label=f"{arm} (n={v.size})")
            if v.size > 1 and v.std() > 0:
                mu, sigma = stats.norm.fit(v)
                xs = np.linspace(everything.min() - sigma, everything.max() + sigma, 200)
                ax.plot(xs, stats.norm.pdf(xs, mu, sigma), color=colour, lw=2,
                        label=f"{arm} normal fit μ={mu:.4g} σ={sigma:.2g}")
        ax.set_xlabel(DISTRIBUTION_METRICS.get(metric, metric))
        ax.set_ylabel("density")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def paired_scatter(path: Path, title: str, pairs: dict[str, dict[str, tuple[list[float], list[float]]]],
                   baseline: str) -> Path:
    """One panel per metric: for each arm, each seed's (baseline value, arm value) with the y = x line; points
    above the line are seeds where the arm's value is larger. pairs: metric -> arm -> (xs, ys)."""
    cols = min(4, len(pairs))
    rows = math.ceil(len(pairs) / cols)
    arms = list(dict.fromkeys(arm for by_arm in pairs.values() for arm in by_arm))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.0 * rows), squeeze=False)
    for ax, (metric, by_arm) in zip(axes.flat, pairs.items()):
        for arm, (xs, ys) in by_arm.items():
            ax.scatter(xs, ys, s=12, color=arm_colour(arm, arms), alpha=0.8, label=arm)
        both = _finite([v for xs, ys in by_arm.values() for v in (*xs, *ys)])
        if both.size:
            lo, hi = both.min(), both.max()
            pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 0.01
            ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], "--", color="#7f7f7f", lw=1)
        ax.set_title(metric, fontsize=8)
        ax.set_xlabel(baseline, fontsize=8)
        ax.set_ylabel("other arm", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(pairs):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def forest(path: Path, rows: list[dict], metric: str) -> Path:
    """The mean difference arm - hard (or the arm's baseline, named in its label: delete's masked_pseudo) of every
    comparison (rows of build.overview_rows) in the metric's units, with the 95% interval of its permutation test:
    one line per group and arm; left of 0 the arm is closer to the reference than its baseline (lower), filled
    where the p, Holm-adjusted over all rows, is < 0.05. An interval end that the seeds cannot bound is left open."""
    shown = [r for r in rows if r["mean_diff"] is not None and math.isfinite(r["mean_diff"])]
    fig, ax = plt.subplots(figsize=(8, 0.28 * len(shown) + 1.4))
    arms = list(dict.fromkeys(r["arm"] for r in shown))
    for i, r in enumerate(shown):
        y = len(shown) - 1 - i
        colour = arm_colour(r["arm"], arms)
        ends = [v for v in (r["ci_low"], r["ci_high"]) if v is not None and math.isfinite(v)]
        if len(ends) == 2:
            ax.plot(ends, [y, y], color=colour, lw=1.5)
        significant = r["p_holm"] is not None and r["p_holm"] < 0.05
        ax.plot(r["mean_diff"], y, "o", color=colour, markerfacecolor=colour if significant else "white", ms=5)
    labels = [" / ".join(p for p in (r["dataset"], r["architecture"], r["method"], r["setting"], r["arm"]) if p)
              + (f" (vs {r['baseline']})" if r.get("baseline") else "") for r in shown]
    b = "baseline" if any(r.get("baseline") for r in shown) else "hard"  # delete's is masked_pseudo, its label says
    ax.set_yticks(range(len(shown)), labels[::-1], fontsize=7)
    ax.axvline(0, color="#7f7f7f", lw=1, ls="--")
    # differences span several decades (3e-5 to 0.5 JS in the published study): linear within the smallest
    # nonzero one's decade, log beyond, so tiny but consistent differences and large ones both stay readable
    sizes = [abs(r["mean_diff"]) for r in shown if r["mean_diff"] != 0]
    linear = 10 ** math.floor(math.log10(min(sizes))) if sizes else 1.0
    ax.set_xscale("symlog", linthresh=linear)
    values = [v for r in shown for v in (r["mean_diff"], r["ci_low"], r["ci_high"])
              if v is not None and math.isfinite(v)]
    ax.set_xlim(2 * min(min(values), -linear), 2 * max(max(values), linear))  # a factor 2 of room on the log part
    ax.set_xlabel(f"{metric}: mean difference arm - {b}\nwith its 95% permutation interval\n(linear within "
                  f"±{linear:g}, log beyond)\n< 0: the arm is closer to the reference than {b}\nfilled: Holm p < "
                  "0.05 over all rows", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    ax.set_ylim(-0.7, len(shown) - 0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


PALETTE = ["#d62728", "#ff7f0e", "#9467bd", "#2ca02c", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]


def arm_colour(arm: str, arms: list[str]) -> str:
    """hard's blue, then a fixed palette in the order the arms appear."""
    if arm == "hard":
        return "#1f77b4"
    others = [a for a in arms if a != "hard"]
    return PALETTE[others.index(arm) % len(PALETTE)] if arm in others else PALETTE[0]

"""The NeurIPS 2023 Machine Unlearning Challenge forgetting quality (methods-metrics.md section 8).

Reference: google-deepmind/unlearning_evaluation, metric.py (Triantafillou et al. 2024, arXiv 2406.09073).
Given, for every forget example, its logit-scaled confidence under N unlearned models and under N retrained
models, an attacker that sees one confidence tries to tell which population it came from. Each decision rule
(threshold) gives false positive/negative rates, hence a lower bound on the (epsilon, delta)-DP epsilon; the
example's epsilon is the best bound over two rule families. Small epsilon = the unlearned models are hard to
tell from retrained ones on that example.

Rates are counted with binary search on the sorted confidences instead of comparing every model with every
threshold, so one example costs O(T log N) for T thresholds (about 160,000 double thresholds).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100  # grid density of both rule families
BUFFER = 2.0  # how far the double-threshold grid reaches past the peakier distribution
TINY_RANGE_RATIO = 0.01  # a population whose range is below 1% of the other's gets the cap
BUCKET = 0.5


def logit_scaled_confidence(logits: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray) -> np.ndarray:
    """s = ln p_y - ln(1 - p_y) per example, the LiRA logit-scaled confidence (Carlini et al. 2022).

    Computed as the reference does, stably: softmax after subtracting the largest logit, in float64, with
    1 - p_y summed over the wrong classes (not 1 - p_y, which rounds to 0 for confident models) and 1e-45
    added inside both logarithms.
    """
    z = torch.as_tensor(logits).double().cpu().numpy()
    y = torch.as_tensor(labels).long().cpu().numpy()
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rows = np.arange(len(y))
    p_true = p[rows, y]
    p[rows, y] = 0.0
    return np.log(p_true + 1e-45) - np.log(p.sum(axis=1) + 1e-45)


def _single_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, fnr) of the rules 'positive if s >= t', t on a grid over the pooled range (pos, neg sorted)."""
    lo, hi = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    t = np.linspace(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    fnr = np.searchsorted(pos, t, side="left") / len(pos)  # positives below t
    fpr = (len(neg) - np.searchsorted(neg, t, side="left")) / len(neg)  # negatives at or above t
    return fpr, fnr


def _double_threshold_rates(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, fnr) of the rules 'positive if t_l <= s <= t_r', the peakier population (smaller range) taken
    as positive; t_r on a grid around it, t_l = t_r - width +- BUFFER (400 values per t_r)."""
    pos_range, neg_range = pos[-1] - pos[0], neg[-1] - neg[0]
    width = min(pos_range, neg_range)
    if pos_range >= neg_range:
        pos, neg = neg, pos
    lo, hi = pos[0] + width - BUFFER, pos[-1] + BUFFER
    right = np.linspace(lo, hi, int(math.ceil((hi - lo) * THRESHOLDS_PER_UNIT)))
    n_left = int(math.ceil(2 * BUFFER * THRESHOLDS_PER_UNIT))
    left = np.linspace(right - width - BUFFER, right - width + BUFFER, n_left, axis=1).ravel()
    right = np.repeat(right, n_left)

    def inside(sorted_s: np.ndarray) -> np.ndarray:
        count = np.searchsorted(sorted_s, right, side="right") - np.searchsorted(sorted_s, left, side="left")
        return np.maximum(count, 0)  # t_l > t_r selects nothing

    fnr = (len(pos) - inside(pos)) / len(pos)
    fpr = inside(neg) / len(neg)
    return fpr, fnr


def threshold_epsilons(fpr: np.ndarray, fnr: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per threshold: eps_t = max(ln((1 - delta - FPR) / FNR), ln((1 - delta - FNR) / FPR)), clipped at 0.

    FPR = FNR = 0 (perfect separation) gives inf; exactly one of them 0 gives nan (the threshold is
    discarded: the reference takes it as too few samples). Undefined logarithms are ignored (nan-max).
    """
    fpr, fnr = np.asarray(fpr, dtype=np.float64), np.asarray(fnr, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        eps = np.fmax(np.log(1 - delta - fpr) - np.log(fnr), np.log(1 - delta - fnr) - np.log(fpr))
    eps = np.clip(eps, 0, None)
    both_zero = (fpr == 0) & (fnr == 0)
    eps[(fpr * fnr == 0) & ~both_zero] = np.nan
    eps[both_zero] = np.inf
    return eps


def example_epsilon(unlearned: np.ndarray, retrained: np.ndarray, delta: float = DELTA) -> float:
    """epsilon of one forget example from its confidences under the unlearned and the retrained models.

    The positive population is the one with the larger median (ties: unlearned). If the smaller range is
    below 1% of the larger, the example gets the cap (one population is degenerate). Otherwise epsilon is the
    max of threshold_epsilons over the single- and double-threshold families, clipped to [0, EPSILON_CAP].
    Two cases the reference leaves undefined (it divides 0/0 or asserts): both ranges 0 gives 0 when the
    values are equal and the cap otherwise; no surviving threshold gives the cap (no evidence of forgetting).
    """
    u, r = np.sort(np.asarray(unlearned, np.float64)), np.sort(np.asarray(retrained, np.float64))
    pos, neg = (r, u) if np.median(r) > np.median(u) else (u, r)
    ranges = sorted((pos[-1] - pos[0], neg[-1] - neg[0]))
    if ranges[1] == 0:
        return 0.0 if pos[0] == neg[0] else EPSILON_CAP
    if ranges[0] / ranges[1] < TINY_RANGE_RATIO:
        return EPSILON_CAP
    fpr_d, fnr_d = _double_threshold_rates(pos, neg)
    fpr_s, fnr_s = _single_threshold_rates(pos, neg)
    eps = threshold_epsilons(np.r_[fpr_d, fpr_s], np.r_[fnr_d, fnr_s], delta)
    if np.isnan(eps).all():
        return EPSILON_CAP
    return float(np.clip(np.nanmax(eps), 0, EPSILON_CAP))


def epsilons(unlearned_confs: np.ndarray, retrained_confs: np.ndarray, delta: float = DELTA) -> np.ndarray:
    """Per-example epsilon; inputs are [models, examples] confidence matrices (model counts may differ)."""
    u, r = np.asarray(unlearned_confs), np.asarray(retrained_confs)
    if u.ndim != 2 or r.ndim != 2 or u.shape[1] != r.shape[1]:
        raise ValueError(f"confidences must be [models, examples] with equal examples, got {u.shape}, {r.shape}")
    return np.array([example_epsilon(u[:, i], r[:, i], delta) for i in range(u.shape[1])])


def max_epsilon(num_models: int) -> float:
    """ceil(ln(N - 1)): the largest epsilon N samples per population can resolve (7 for N = 512)."""
    return float(math.ceil(math.log(num_models - 1))) if num_models > 2 else 0.0


def points(eps: np.ndarray, num_models: int) -> np.ndarray:
    """Per example: 2^-floor(eps / 0.5) when eps < ceil(ln(N - 1)), else 0 (buckets of width 0.5).

    N = 2 resolves nothing (ln 1 = 0), so every example scores 0; use N >= 3.
    """
    eps = np.asarray(eps, dtype=np.float64)
    return np.where(eps < max_epsilon(num_models), 2.0 ** -np.floor(eps / BUCKET), 0.0)


def forget_score(eps: np.ndarray, num_models: int) -> float:
    """F = mean over forget examples of points(eps_x); 1 = indistinguishable from retraining on every example."""
    return float(points(eps, num_models).mean())


def final_score(forget_quality: float, retain_acc_unlearned: float, retain_acc_retrained: float,
                test_acc_unlearned: float, test_acc_retrained: float) -> float:
    """The challenge's score F * (RA_u / RA_r) * (TA_u / TA_r), accuracies averaged over each population;
    the ratios are not clipped (an unlearned population more accurate than retraining scores above F)."""
    return forget_quality * (retain_acc_unlearned / retain_acc_retrained) * (test_acc_unlearned / test_acc_retrained)


def bootstrap_interval(values: np.ndarray, seed: int = 0, confidence: float = 0.95,
                       resamples: int = 2000) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of per-example values (scipy.stats.bootstrap), resampling
    forget examples; for a paired difference pass the per-example differences."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or np.all(values == values[0]):
        mean = float(values.mean()) if len(values) else math.nan
        return mean, mean
    res = stats.bootstrap((values,), np.mean, confidence_level=confidence, n_resamples=resamples,
                          method="percentile", rng=np.random.default_rng(seed))
    return float(res.confidence_interval.low), float(res.confidence_interval.high)

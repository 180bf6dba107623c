"""Statistics for paired hard-vs-soft comparisons.

The test of a paired comparison is a two-sided sign-flip permutation test of the mean paired difference
(statistic |mean(d)|); its effect size is that mean difference, in the metric's units, with the 95% interval
that inverts the same test (the shifts delta for which the test of d - delta is not rejected), so p < 0.05
exactly when the interval excludes 0. d_z = mean(d) / sd(d) with its noncentral-t interval is a secondary,
descriptive size. Per-arm means carry t-intervals (describe).

Null distribution: a zero difference is the same under either sign, so it adds no sign pattern. With k <= 20
nonzero pairs all 2^k sign patterns are enumerated (p exact, ties included); with more, MC_DRAWS sign vectors
are drawn with numpy.random.default_rng(MC_SEED) and p = (1 + #as extreme) / (1 + MC_DRAWS). The interval's
tests of d - delta use the same patterns: the exact ones (a shifted zero pair, -delta, enters through the
binomial count of its signs) or the same draws.
"""

from __future__ import annotations

import functools
import math

import numpy as np

EXACT_MAX_NONZERO = 20  # up to 2^20 sign patterns are enumerated
MC_DRAWS = 100_000
MC_SEED = 0
_MC_CHUNK = 1 << 22  # sign entries drawn at a time (the draws depend only on the seed and the pair count)
_MC_CACHE = 1 << 25  # sign entries (bytes) worth keeping between tests
_TIE = 1e-12  # |T| >= |T_obs| - _TIE * (sum |d - delta|): sums equal up to rounding count as ties


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided t-interval; (mean, nan, nan) for fewer than 2 finite values."""
    from scipy import stats  # imported on first use: `report` starts without it

    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=float)
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    mean = float(v.mean())
    if len(v) < 2:
        return mean, math.nan, math.nan
    sem = stats.sem(v)
    if sem == 0:
        return mean, mean, mean
    lo, hi = stats.t.interval(confidence, len(v) - 1, loc=mean, scale=sem)
    return mean, float(lo), float(hi)


class SignFlip:
    """The two-sided sign-flip permutation test of the mean of paired differences d, and of d - delta for any
    shift delta on the same sign patterns (exact: all 2^k patterns of the k nonzero pairs, the zero pairs'
    signs counted binomially; Monte Carlo: the same `draws` sign vectors over all n pairs).

    For a pattern s the statistic is T = sum_i s_i (d_i - delta) = A_s - delta * C_s with A_s = sum s_i d_i
    and C_s = sum s_i; the observed one is the all-plus pattern. The patterns are kept grouped by C_s with A_s
    sorted, so p(delta) costs two binary searches per group."""

    def __init__(self, differences, draws: int = MC_DRAWS, seed: int = MC_SEED,
                 exact_max: int = EXACT_MAX_NONZERO):
        d = np.asarray(differences, dtype=float)
        if d.ndim != 1 or not np.all(np.isfinite(d)):
            raise ValueError("differences must be a 1-d array of finite numbers")
        self.n = len(d)
        nonzero = d[d != 0]
        self.k = len(nonzero)
        self.total = math.fsum(d)
        self.abs_total = math.fsum(np.abs(d))
        self.exact = self.k <= exact_max
        self.draws, self.seed = draws, seed
        if self.exact:
            a, c = _enumerate(nonzero)
            zeros = self.n - self.k
            # the zero pairs' sign sum m = 2j - zeros with j plus signs among them, C(zeros, j) ways
            self._m = np.arange(-zeros, zeros + 1, 2, dtype=float)
            self._m_ways = [math.comb(zeros, j) for j in range(zeros + 1)]
            self._patterns = 2 ** self.n  # of all n pairs: 2^k nonzero patterns times 2^zeros
        else:
            a, c = _draw(d, draws, seed)
            self._m, self._m_ways = np.zeros(1), [1]
            self._patterns = draws
        self._groups = [(float(value), np.sort(a[c == value])) for value in np.unique(c)]
        # as |delta| grows only the all-plus and all-minus patterns stay as extreme as the observed one
        extreme = sum(len(sorted_a) for value, sorted_a in self._groups if abs(value) == self.n)
        self.p_limit = min(1.0, 2 / 2 ** self.n) if self.exact else (1 + extreme) / (1 + draws)

    @property
    def name(self) -> str:
        if self.exact:
            return "sign-flip permutation (exact)"
        return f"sign-flip permutation (Monte Carlo, {self.draws} draws, seed {self.seed})"

    @property
    def p_min(self) -> float:
        """The smallest p this test can give: 2 / 2^k with k nonzero pairs (exact; 1 without any), 1 / (1 + draws)
        (Monte Carlo)."""
        if self.exact:
            return min(1.0, 2 / 2 ** self.k) if self.k else 1.0
        return 1 / (1 + self.draws)

    def p(self, delta: float = 0.0) -> float:
        """Two-sided p of the test of d - delta: the share of sign patterns whose |T| is at least the observed."""
        observed = abs(self.total - self.n * delta)
        threshold = observed - _TIE * (self.abs_total + self.n * abs(delta))
        if threshold <= 0:
            return 1.0
        count = 0
        for c, sorted_a in self._groups:
            centres = delta * (c + self._m)  # T >= threshold or T <= -threshold  <=>  A >= centre + thr, ...
            high = len(sorted_a) - np.searchsorted(sorted_a, centres + threshold, side="left")
            low = np.searchsorted(sorted_a, centres - threshold, side="right")
            count += sum(int(h + lo) * ways for h, lo, ways in zip(high, low, self._m_ways))
        if self.exact:
            return min(1.0, count / self._patterns)
        return (1 + count) / (1 + self._patterns)

    def interval(self, confidence: float = 0.95, p_zero: float | None = None) -> tuple[float, float]:
        """The shifts delta for which p(delta) >= 1 - confidence, found by bisection outwards from the mean
        (where p = 1). 0 is tried first on its side, so the interval excludes 0 exactly when p(0) < 1 -
        confidence. An infinite end where even the most extreme shift cannot be rejected (exact, n <= 5)."""
        if self.n == 0:
            return math.nan, math.nan
        alpha = 1 - confidence
        centre = self.total / self.n
        p_zero = self.p(0.0) if p_zero is None else p_zero
        return self._end(centre, -1.0, alpha, p_zero), self._end(centre, 1.0, alpha, p_zero)

    def _end(self, centre: float, direction: float, alpha: float, p_zero: float) -> float:
        inside, outside = centre, None
        if (0.0 - centre) * direction > 0:  # 0 lies on this side of the mean: decide it first
            if p_zero >= alpha:
                inside = 0.0
            else:
                outside = 0.0
        if outside is None:
            if self.p_limit >= alpha:
                return direction * math.inf
            spread = self.abs_total / self.n or abs(centre) or 1.0
            step = spread
            while True:
                candidate = inside + direction * step
                if not math.isfinite(candidate):
                    return direction * math.inf
                if self.p(candidate) < alpha:
                    outside = candidate
                    break
                inside, step = candidate, step * 2
        width = abs(outside - inside)
        while abs(outside - inside) > 1e-12 * max(abs(inside), abs(outside), width):
            middle = (inside + outside) / 2
            if middle in (inside, outside):
                break
            if self.p(middle) >= alpha:
                inside = middle
            else:
                outside = middle
        return inside


def _enumerate(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every sign pattern of values: A = sum s_i v_i and C = sum s_i, 2^len(values) of each."""
    a, c = np.zeros(1), np.zeros(1, dtype=np.int64)
    for v in values:
        a, c = np.concatenate([a + v, a - v]), np.concatenate([c + 1, c - 1])
    return a, c


def _draw(d: np.ndarray, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """draws random sign vectors over all pairs of d (numpy.random.default_rng(seed), fair and independent):
    A = s . d and C = sum s of each. The same seed and pair count give the same sign vectors."""
    a, c = np.empty(draws), np.empty(draws, dtype=np.int64)
    chunks = _cached_signs(len(d), draws, seed) if len(d) * draws <= _MC_CACHE else _signs(len(d), draws, seed)
    for start, signs in chunks:
        a[start:start + len(signs)] = signs @ d
        c[start:start + len(signs)] = signs.sum(axis=1, dtype=np.int64)
    return a, c


def _signs(n: int, draws: int, seed: int):
    """The sign vectors of _draw, chunk by chunk: (first row, int8 array of +-1)."""
    rng = np.random.default_rng(seed)
    rows = max(1, _MC_CHUNK // max(1, n))
    for start in range(0, draws, rows):
        signs = rng.integers(0, 2, size=(min(rows, draws - start), n), dtype=np.int8) * 2 - 1
        signs.flags.writeable = False
        yield start, signs


@functools.lru_cache(maxsize=4)
def _cached_signs(n: int, draws: int, seed: int) -> tuple:
    """_signs kept for the next test with as many pairs (a report makes hundreds of tests of 30 pairs)."""
    return tuple(_signs(n, draws, seed))


def sign_flip_p(differences) -> float:
    """Two-sided sign-flip permutation p of the mean of paired differences (non-finite entries dropped);
    nan without any difference."""
    d = [x for x in differences if x is not None and math.isfinite(x)]
    return SignFlip(d).p() if d else math.nan


def paired(a, b, confidence: float = 0.95) -> dict:
    """Paired comparison of b against a (same seeds, same order); pairs with a missing side drop.
    n pairs, n_nonzero of them differing; mean_diff = mean(b - a) with its 95% interval (ci_low, ci_high) from
    inverting the sign-flip permutation test; p, that test's two-sided p; p_min, the smallest p it can give
    here; test, its name; effect_dz = mean(diff) / sd(diff) with its exact interval (dz_ci_low, dz_ci_high)."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)]
    diff = [y - x for x, y in pairs]
    n = len(diff)
    sd = float(np.std(diff, ddof=1)) if n > 1 else math.nan
    mean = float(np.mean(diff)) if n else math.nan
    dz = mean / sd if sd and math.isfinite(sd) and sd > 0 else math.nan
    dz_low, dz_high = dz_interval(dz, n, confidence)
    out = {"n": n, "n_nonzero": sum(int(d != 0) for d in diff), "mean_diff": mean, "ci_low": math.nan,
           "ci_high": math.nan, "p": math.nan, "p_min": math.nan, "test": "", "effect_dz": dz, "dz_ci_low": dz_low,
           "dz_ci_high": dz_high}
    if n:
        test = SignFlip(diff)
        p = test.p()
        low, high = test.interval(confidence, p)
        out.update(ci_low=low, ci_high=high, p=p, p_min=test.p_min, test=test.name)
    return out


def at_min(stat: dict) -> bool:
    """Whether a paired() result sits at the smallest p its test can give (so p cannot rank it)."""
    p, p_min = stat.get("p"), stat.get("p_min")
    return p is not None and p_min is not None and math.isfinite(p) and p <= p_min * (1 + 1e-9)


def dz_interval(dz: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The exact confidence interval of the paired effect size d_z from n pairs: t = d_z * sqrt(n) follows a
    noncentral t with n - 1 degrees of freedom and noncentrality delta * sqrt(n); the interval inverts its cdf
    (Steiger & Fouladi 1997; Cumming & Finch 2001). (nan, nan) when d_z is undefined or n < 2."""
    if n < 2 or not math.isfinite(dz):
        return math.nan, math.nan
    from scipy import stats
    from scipy.optimize import brentq

    t, df, root_n = dz * math.sqrt(n), n - 1, math.sqrt(n)
    tail = (1 - confidence) / 2

    spread = 6 * math.sqrt(1 + t * t / (2 * df))  # far beyond the 0.1% / 99.9% quantiles of the noncentrality

    def cdf(ncp: float) -> float:  # scipy's nct.cdf is nan deep in its tails, where it is 0 (ncp >> t) or 1
        value = stats.nct.cdf(t, df, ncp)
        return value if math.isfinite(value) else float(ncp < t)

    def ncp_at(probability: float) -> float:  # the noncentrality whose cdf at t equals probability
        return brentq(lambda ncp: cdf(ncp) - probability, t - spread, t + spread, xtol=1e-10)

    return ncp_at(1 - tail) / root_n, ncp_at(tail) / root_n


def describe(values, confidence: float = 0.95) -> dict:
    """n, mean, sample standard deviation (ddof=1) and the mean's two-sided t-interval of the finite values."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    mean, lo, hi = mean_ci(v, confidence)
    std = float(np.std(v, ddof=1)) if len(v) > 1 else math.nan
    return {"n": len(v), "mean": mean, "std": std, "ci_low": lo, "ci_high": hi}


def holm(pvalues) -> list[float]:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979), in the input order; nan entries stay nan and
    do not count towards the family size. p_(i) sorted ascending -> max_{j<=i} min(1, (m - j + 1) p_(j))."""
    p = np.asarray(pvalues, dtype=float)
    finite = np.flatnonzero(np.isfinite(p))
    adjusted = np.full(len(p), math.nan)
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()

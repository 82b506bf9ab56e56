"""The statistics of seed studies: did a change move the metric beyond seed noise? (pure NumPy and SciPy).

A variant's final metric over several seeds is a sample; two variants are
compared by the difference of their means, with:

- a 95 % BCa bootstrap confidence interval (:func:`scipy.stats.bootstrap`);
- a two-sided permutation test (:func:`scipy.stats.permutation_test`), exact
  whenever every distinct permutation fits in :data:`RESAMPLES`: paired when
  the variants share their seeds (seed *i* of one against seed *i* of the
  other), unpaired otherwise;
- Welch's t-test for reference, the probability of improvement (rliable's
  ``U / (n m)``), Hedges' g, and the smallest difference the design detects
  with 80 % power (the noncentral t).

Every resampling draws from ``numpy.random.default_rng(RANDOM_SEED)``, so the
same numbers always give the same report. Values must be finite: the caller
leaves out failed or NaN runs and reports them itself.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from reprokit.core.vocabulary import Outcome

CONFIDENCE = 0.95
"""The confidence level of every interval."""
ALPHA = 0.05
"""The significance level of the tests (two-sided)."""
POWER = 0.80
"""The power at which :attr:`Effect.detectable` is computed."""
MIN_SEEDS = 4
"""Fewer seeds per variant: no significance claim (an exact test of 3 against 3 cannot reach p < 0.05)."""
RESAMPLES = 9999
"""Bootstrap and permutation resamples."""
RANDOM_SEED = 0
"""The seed of every resampling: the same numbers give the same report, every time."""

Array = NDArray[np.float64]
Statistic = Callable[..., Any]


@dataclass(frozen=True)
class Summary:
    """One variant's metric over its seeds.

    ``ci_low`` and ``ci_high`` bound the mean (95 % bootstrap, ``None`` with
    fewer than two values); ``ci_method`` says how: ``BCa bootstrap``,
    ``percentile bootstrap`` (when BCa is degenerate), ``all values equal``
    (the interval is ``[v, v]``) or ``too few values``.
    """

    n: int
    mean: float
    std: float  # ddof=1; 0.0 for a single value
    median: float
    min: float
    max: float
    ci_low: float | None
    ci_high: float | None
    ci_method: str


@dataclass(frozen=True)
class Effect:
    """Variant B against variant A: how much the metric moved, and whether beyond seed noise.

    ``difference`` is ``mean_b - mean_a`` whatever the direction; "better"
    (``prob_improvement``, :func:`decide`) follows ``higher_is_better``.
    ``welch_t`` and ``welch_p`` are the unpaired Welch test even for paired
    samples (for reference: ``p_value`` is the test to judge by). Figures
    that are undefined for the data (too few values, no spread) are ``None``.
    """

    n_a: int
    n_b: int
    paired: bool
    mean_a: float
    mean_b: float
    difference: float
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    p_value: float | None
    p_exact: bool  # every distinct permutation was enumerated
    welch_t: float | None
    welch_p: float | None
    prob_improvement: float
    hedges_g: float | None
    detectable: float | None
    higher_is_better: bool


def _sample(values: Sequence[float], name: str) -> Array:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"expected a non-empty sequence of numbers for {name}, received shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"expected finite values for {name} (leave out failed runs), received {x.tolist()}")
    return x


def _constant(x: Array) -> bool:
    return bool(np.all(x == x[0]))


def _var(x: Array) -> float:
    """The sample variance (ddof=1); exactly 0.0 for one value or equal values (NumPy's may be an ulp off)."""
    return 0.0 if x.size < 2 or _constant(x) else float(np.var(x, ddof=1))


def _rng() -> np.random.Generator:
    return np.random.default_rng(RANDOM_SEED)


def _mean(x: Array, axis: int = -1) -> Any:
    return np.mean(x, axis=axis)


def _mean_difference(a: Array, b: Array, axis: int = -1) -> Any:
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def _paired_mean_difference(a: Array, b: Array, axis: int = -1) -> Any:
    return np.mean(b - a, axis=axis)


def _interval(data: tuple[Array, ...], statistic: Statistic, estimate: float) -> tuple[float | None, float | None, str]:
    """The 95 % bootstrap interval of ``statistic``: BCa, else percentile where BCa is degenerate.

    With every sample constant, every resample gives the statistic itself:
    the interval is ``[estimate, estimate]``, without a bootstrap.
    """
    from scipy import stats  # imported here: it costs every command 0.4 s at start

    if any(x.size < 2 for x in data):
        return None, None, "too few values"
    if all(_constant(x) for x in data):
        return estimate, estimate, "all values equal"
    for method, name in (("BCa", "BCa bootstrap"), ("percentile", "percentile bootstrap")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ci = stats.bootstrap(
                data,
                statistic,
                confidence_level=CONFIDENCE,
                method=method,
                n_resamples=RESAMPLES,
                rng=_rng(),
                vectorized=True,
                paired=False,
                axis=-1,
            ).confidence_interval
        low, high = float(ci.low), float(ci.high)
        degenerate = any(issubclass(w.category, stats.DegenerateDataWarning) for w in caught)
        if math.isfinite(low) and math.isfinite(high) and not degenerate:
            for w in caught:  # warnings this function does not handle reach the caller
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            return low, high, name
    return None, None, "no bootstrap interval"  # values so large that their mean overflows


def summarize(values: Sequence[float]) -> Summary:
    """Summarizes one variant's metric over its seeds.

    Raises:
        ValueError: ``values`` is empty or holds a value that is not finite.
    """
    x = _sample(values, "values")
    mean = float(np.mean(x))
    low, high, method = _interval((x,), _mean, mean)
    return Summary(
        n=int(x.size),
        mean=mean,
        std=math.sqrt(_var(x)),
        median=float(np.median(x)),
        min=float(np.min(x)),
        max=float(np.max(x)),
        ci_low=low,
        ci_high=high,
        ci_method=method,
    )


def _permutation_p(a: Array, b: Array, paired: bool) -> tuple[float | None, bool]:
    """The two-sided permutation p of the mean difference, and whether it enumerated every permutation."""
    from scipy import stats  # imported here: it costs every command 0.4 s at start

    if min(a.size, b.size) < 2:
        return None, False
    distinct = 2**a.size if paired else math.comb(a.size + b.size, a.size)
    result = stats.permutation_test(
        (a, b),
        _paired_mean_difference if paired else _mean_difference,
        permutation_type="samples" if paired else "independent",
        vectorized=True,
        n_resamples=RESAMPLES,
        alternative="two-sided",
        axis=-1,
        rng=_rng(),
    )
    return float(result.pvalue), distinct <= RESAMPLES


def _welch(a: Array, b: Array) -> tuple[float | None, float | None]:
    from scipy import stats  # imported here: it costs every command 0.4 s at start

    if min(a.size, b.size) < 2 or (_constant(a) and _constant(b)):
        return None, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(b, a, equal_var=False)
    t, p = float(result.statistic), float(result.pvalue)
    return (t if math.isfinite(t) else None), (p if math.isfinite(p) else None)


def _hedges_g(a: Array, b: Array) -> float | None:
    n, m = a.size, b.size
    if n + m < 4:
        return None
    pooled = math.sqrt((_var(a) * (n - 1) + _var(b) * (m - 1)) / (n + m - 2))
    if pooled == 0:
        return None
    return (float(np.mean(b)) - float(np.mean(a))) / pooled * (1 - 3 / (4 * (n + m) - 9))


def _detectable(se: float, df: float) -> float | None:
    """The smallest difference a t-test with standard error ``se`` and ``df`` degrees detects with :data:`POWER`.

    None where SciPy's noncentral t cannot say (one degree of freedom: two seeds, paired).
    """
    from scipy import optimize, stats  # imported here: it costs every command 0.4 s at start

    if se == 0:
        return 0.0
    critical = float(stats.t.ppf(1 - ALPHA / 2, df))

    def shortfall(nc: float) -> float:
        power = stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc)
        return float(power) - POWER

    high = 1.0
    while (short := shortfall(high)) < 0 and high < 1e6:
        high *= 2
    if math.isnan(short) or short < 0 or math.isnan(shortfall(0.0)):
        return None
    try:
        return float(optimize.brentq(shortfall, 0.0, high, xtol=1e-12, rtol=1e-12)) * se
    except ValueError:  # NaN on the way: the distribution's tail is out of SciPy's reach
        return None


def _detectable_difference(a: Array, b: Array, paired: bool) -> float | None:
    if min(a.size, b.size) < 2:
        return None
    if paired:  # the one-sample t-test of the per-seed differences
        return _detectable(math.sqrt(_var(b - a) / a.size), a.size - 1)
    va, vb = _var(a) / a.size, _var(b) / b.size
    if va + vb == 0:
        return 0.0
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))  # Welch–Satterthwaite
    return _detectable(math.sqrt(va + vb), df)


def compare_samples(a: Sequence[float], b: Sequence[float], *, paired: bool, higher_is_better: bool) -> Effect:
    """Compares variant B's metric over its seeds with variant A's.

    Args:
        a: the metric of variant A, one value per seed.
        b: the metric of variant B, one value per seed.
        paired: ``a[i]`` and ``b[i]`` share seed ``i``.
        higher_is_better: whether a higher metric is better (accuracy) or a lower one (loss).

    Raises:
        ValueError: a sample is empty or holds a value that is not finite, or
            paired samples differ in length.
    """
    from scipy import stats  # imported here: it costs every command 0.4 s at start

    xa, xb = _sample(a, "a"), _sample(b, "b")
    if paired and xa.size != xb.size:
        raise ValueError(f"expected paired samples of one length, received {xa.size} and {xb.size}")
    mean_a, mean_b = float(np.mean(xa)), float(np.mean(xb))
    if paired:  # the interval of the mean per-seed difference
        low, high, method = _interval((xb - xa,), _mean, mean_b - mean_a)
    else:
        low, high, method = _interval((xa, xb), _mean_difference, mean_b - mean_a)
    p, exact = _permutation_p(xa, xb, paired)
    welch_t, welch_p = _welch(xa, xb)
    u = float(stats.mannwhitneyu(xb, xa, alternative="two-sided", method="asymptotic").statistic)
    p_higher = u / (xa.size * xb.size)  # P(B > A) + P(B = A) / 2
    return Effect(
        n_a=int(xa.size),
        n_b=int(xb.size),
        paired=paired,
        mean_a=mean_a,
        mean_b=mean_b,
        difference=mean_b - mean_a,
        ci_low=low,
        ci_high=high,
        ci_method=method,
        p_value=p,
        p_exact=exact,
        welch_t=welch_t,
        welch_p=welch_p,
        prob_improvement=p_higher if higher_is_better else 1 - p_higher,
        hedges_g=_hedges_g(xa, xb),
        detectable=_detectable_difference(xa, xb, paired),
        higher_is_better=higher_is_better,
    )


def differs_by_group(groups: Sequence[Sequence[float]]) -> float | None:
    """The Kruskal–Wallis p-value that the groups (a metric's values by node) come from one distribution.

    None when it cannot be tested: fewer than two groups of at least two
    finite values, or every value the same.
    """
    from scipy import stats  # imported here: it costs every command 0.4 s at start

    samples = [[v for v in g if math.isfinite(v)] for g in groups]
    samples = [g for g in samples if len(g) >= 2]
    if len(samples) < 2 or len({v for g in samples for v in g}) < 2:
        return None
    return float(stats.kruskal(*samples).pvalue)


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm–Bonferroni adjusted p-values, in the order given.

    The step-down procedure of Holm (1979), "A simple sequentially rejective
    multiple test procedure", Scand. J. Statist. 6(2): the k-th smallest of m
    p-values is multiplied by m - k + 1, made monotone and capped at 1.
    Rejecting where the adjusted p is below alpha controls the family-wise
    error rate. ``None`` (no test) stays ``None`` and does not count in m.

    Raises:
        ValueError: a p-value is outside [0, 1].
    """
    present = [(p, i) for i, p in enumerate(p_values) if p is not None]
    if any(not 0 <= p <= 1 for p, _ in present):
        raise ValueError(f"expected p-values in [0, 1], received {list(p_values)}")
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for k, (p, i) in enumerate(sorted(present)):
        running = max(running, min(1.0, (len(present) - k) * p))
        adjusted[i] = running
    return adjusted


def smallest_p(effect: Effect) -> float:
    """The smallest two-sided p-value an exact permutation test of this design can reach.

    Paired: 2 / 2**n (every sign flipped or none); unpaired: 2 / C(n + m, n).
    A paired study of 5 seeds cannot reach 0.05 (0.0625), nor 3 vs 3 unpaired (0.1).
    """
    if effect.paired:
        return min(1.0, 2.0 / 2.0**effect.n_a)
    return min(1.0, 2.0 / math.comb(effect.n_a + effect.n_b, effect.n_a))


def decide(effect: Effect, p_value: float | None, min_effect: float | None = None, comparisons: int = 1) -> Outcome:
    """What a comparison concludes.

    Too few seeds: fewer than :data:`MIN_SEEDS` per variant, or a design whose
    exact test cannot reach :data:`ALPHA` at all, even before a Holm
    correction over ``comparisons`` multiplies the smallest p (:func:`smallest_p`:
    a paired study of 2 variants needs 6 seeds, of 3 variants 7). The numbers
    are still reported, with no claim.

    Args:
        effect: the comparison.
        p_value: the p-value to judge by (``effect.p_value``, or its Holm adjustment among several variants).
        min_effect: the largest difference that does not matter; when given, a
            non-significant comparison whose whole interval lies within
            ``±min_effect`` is ``EQUIVALENT``.

    Raises:
        ValueError: ``min_effect`` is negative.
    """
    if min_effect is not None and min_effect < 0:
        raise ValueError(f"expected a non-negative min_effect, received {min_effect}")
    if min(effect.n_a, effect.n_b) < MIN_SEEDS or smallest_p(effect) * comparisons >= ALPHA:
        return Outcome.TOO_FEW_SEEDS
    if p_value is not None and p_value < ALPHA and effect.difference != 0:
        return Outcome.BETTER if (effect.difference > 0) == effect.higher_is_better else Outcome.WORSE
    if (
        min_effect is not None
        and effect.ci_low is not None
        and effect.ci_high is not None
        and -min_effect <= effect.ci_low
        and effect.ci_high <= min_effect
    ):
        return Outcome.EQUIVALENT
    return Outcome.WITHIN_NOISE

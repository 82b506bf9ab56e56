"""Which hyperparameter configuration wins, and does the choice survive a new seed? (pure NumPy and SciPy).

``reprokit tune`` trains k configurations with the same n seeds each (common
random numbers: seed *i* of every configuration is the same seed), which gives
a k × n matrix of a metric. :func:`rank` reads it as:

- each configuration's mean with its 95 % bootstrap interval (:func:`stats.summarize`);
- the probability that each configuration is the best: the share of
  bootstrap resamples of the seeds (the same seed columns for every
  configuration) in which its mean is the best, ties split evenly;
- each seed's own winner, the share of seeds that agree with the overall
  winner, and the configuration that tuning with one seed would have picked;
- Kendall's W, the agreement of the seeds ranking the configurations (0: none,
  1: every seed ranks them alike), with the Friedman test's p-value;
- the configurations statistically tied with the best (paired exact
  permutation tests, Holm-corrected);
- how many seeds per configuration rank the top :data:`TOP` reliably.

Only complete seed columns count: a seed where some configuration failed
(NaN or an infinite value) is left out of every figure, and reported.
Ties in a mean or under one seed go to the configuration listed first,
except in :attr:`ConfigStats.p_best`, which splits them evenly. Every
resampling draws from ``numpy.random.default_rng(RANDOM_SEED)``, so the same
numbers always give the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from reprokit.study import stats
from reprokit.study.stats import Array

RELIABLE = 0.80
"""The share of bootstrap draws in which the top order must hold for :attr:`Ranking.seeds_for_top`."""
TOP = 3
"""How many of the best configurations :attr:`Ranking.seeds_for_top` must rank in order."""
BEST_DRAWS = stats.RESAMPLES
"""Bootstrap draws of the seed columns for :attr:`ConfigStats.p_best`."""
TOP_DRAWS = 2000
"""Bootstrap draws of the seed columns per number of seeds for :attr:`Ranking.seeds_for_top`."""
_CHUNK = 1 << 22  # gathered values per block of draws: bounds the memory of a bootstrap


@dataclass(frozen=True)
class ConfigStats:
    """One configuration's metric over the seeds used.

    ``n`` is the number of seeds used (the same for every configuration);
    ``ci_low`` and ``ci_high`` bound the mean (95 % bootstrap,
    :func:`stats.summarize`). ``p_best`` is the share of bootstrap resamples
    of the seeds in which this configuration has the best mean; ``tied``
    says it is not significantly worse than the best (the best is tied with
    itself); ``seed_wins`` counts the seeds under which it is the best or
    ties for the best (so the counts may add up to more than the seeds).
    """

    label: str
    n: int
    mean: float
    ci_low: float | None
    ci_high: float | None
    p_best: float
    tied: bool
    seed_wins: int


@dataclass(frozen=True)
class Ranking:
    """The configurations of a tuning ranked by their metric, and how far the ranking survives a new seed.

    ``seeds`` and ``dropped`` hold seed values (as passed to :func:`rank`),
    in column order. ``kendall_w`` is ``None`` when every seed ties every
    configuration; ``friedman_p`` also with two configurations (the Friedman
    test needs three). ``tied`` compares every configuration with the best,
    which was picked from these same numbers: the best's lead is
    overestimated (the winner's curse), so the tied set errs on the small
    side. When ``tie_test_possible`` is False (fewer seeds than the
    permutation tests need to reach :data:`stats.ALPHA` after the Holm
    correction), no test is run and every configuration is tied.
    ``seed_winners`` names one winner per seed (ties: the configuration listed
    first, as a tuner keeping the first best would), ``one_seed_pick`` the
    first seed's; ``winner_share`` is the share of seeds under which the
    overall best is the best or ties for it.
    ``seeds_for_top`` is the smallest number of seeds per configuration
    that keeps the order of the top ``min(TOP, k)`` in :data:`RELIABLE` of
    bootstrap draws; ``None``: more than the seeds used; ``top_share`` is
    that share with as many seeds as used.
    """

    configs: tuple[ConfigStats, ...]
    order: tuple[int, ...]
    seeds: tuple[int, ...]
    dropped: tuple[int, ...]
    higher_is_better: bool
    seed_winners: tuple[int, ...]
    winner_share: float
    one_seed_pick: int
    kendall_w: float | None
    friedman_p: float | None
    tie_test_possible: bool
    seeds_for_top: int | None
    top_share: float

    @property
    def best(self) -> int:
        """The index of the configuration with the best mean (among equal means, the one that wins more seeds)."""
        return self.order[0]


def _matrix(values: Sequence[Sequence[float]], seeds: Sequence[int], labels: Sequence[str]) -> Array:
    rows = [list(row) for row in values]
    lengths = sorted({len(row) for row in rows})
    if not rows or lengths[0] == 0:
        raise ValueError(f"expected a non-empty matrix of configurations × seeds, received row lengths {lengths}")
    if len(lengths) > 1:
        raise ValueError(f"expected rows of one length (one value per seed), received row lengths {lengths}")
    if len(rows) < 2:
        raise ValueError(f"expected at least 2 configurations to rank, received {len(rows)}")
    if len(seeds) != lengths[0]:
        raise ValueError(f"expected one seed per column ({lengths[0]}), received {len(seeds)} seeds")
    if len(labels) != len(rows):
        raise ValueError(f"expected one label per configuration ({len(rows)}), received {len(labels)} labels")
    return np.asarray(rows, dtype=np.float64)


RESOLUTION = 2.0**-23
"""Means closer than this share of the largest value are equal (float32's epsilon): metrics arrive as float32, and
the means of two configurations with the same total (the same correct predictions in all) differ in their last
bits."""


def _snap(means: Array, score: Array) -> Array:
    """``means`` on a grid of :data:`RESOLUTION` times the largest ``|score|``: equal means compare equal."""
    largest = float(np.max(np.abs(score))) if score.size else 0.0
    step = RESOLUTION * largest if largest > 0 and np.isfinite(largest) else 1.0
    snapped: Array = np.round(means / step)
    return snapped


def _bootstrap_means(score: Array, size: int, draws: int) -> Array:
    """Each configuration's mean over ``size`` seed columns drawn with replacement, ``draws`` times (k × draws).

    One index matrix, drawn once: every configuration gets the same columns in a draw.
    """
    k, n = score.shape
    index = stats._rng().integers(0, n, size=(draws, size))
    block = max(1, _CHUNK // (k * size))
    parts = [np.mean(score[:, index[start : start + block]], axis=-1) for start in range(0, draws, block)]
    return _snap(np.concatenate(parts, axis=1), score)


def _p_best(score: Array) -> Array:
    means = _bootstrap_means(score, score.shape[1], BEST_DRAWS)
    best = means == np.max(means, axis=0)
    shares: Array = np.mean(best / np.sum(best, axis=0), axis=1)  # ties split evenly
    return shares


def _top_share(score: Array, top: tuple[int, ...], size: int) -> float:
    """The share of draws of ``size`` seed columns in which the best configurations are ``top``, in that order."""
    means = _bootstrap_means(score, size, TOP_DRAWS)
    drawn = np.argsort(-means, axis=0, kind="stable")[: len(top)]  # stable: ties go to the first listed
    return float(np.mean(np.all(drawn == np.array(top)[:, None], axis=0)))


def _seeds_for_top(score: Array, top: tuple[int, ...]) -> tuple[int | None, float]:
    n = score.shape[1]
    for size in range(2, n):
        if _top_share(score, top, size) >= RELIABLE:
            return size, _top_share(score, top, n)
    share = _top_share(score, top, n)
    return (n if share >= RELIABLE else None), share


def _concordance(score: Array) -> tuple[float | None, float | None]:
    """Kendall's W of the seeds ranking the configurations (tie-corrected), and the Friedman p-value.

    From :func:`scipy.stats.friedmanchisquare` (W = χ²_F / (n (k − 1))) with
    three configurations or more; with two, W from the ranks directly,
    ``12 S / (n² (k³ − k) − n Σ(t³ − t))``, the same formula, and no p-value.
    Both ``None`` when every seed ties every configuration (no ranking to agree on).
    """
    from scipy import stats as scipy_stats  # imported here: it costs every command 0.4 s at start

    k, n = score.shape
    if np.all(score == score[0]):
        return None, None
    if k >= 3:
        result = scipy_stats.friedmanchisquare(*score)
        w, p = float(result.statistic) / (n * (k - 1)), float(result.pvalue)
    else:
        ranks = scipy_stats.rankdata(score, axis=0)  # each seed ranks the configurations
        spread = float(np.sum((np.sum(ranks, axis=1) - n * (k + 1) / 2) ** 2))
        ties = 0.0
        for column in score.T:
            _, counts = np.unique(column, return_counts=True)
            ties += float(np.sum(counts**3 - counts))
        w, p = 12 * spread / (n**2 * (k**3 - k) - n * ties), None
    return min(1.0, max(0.0, w)), p


def _tied(x: Array, best: int, higher_is_better: bool) -> tuple[list[bool], bool]:
    """Which configurations the paired permutation tests (Holm over the k − 1 contrasts) cannot tell from the best.

    The second value says whether the tests can reach :data:`stats.ALPHA` at all
    (the smallest exact paired p, 2 / 2ⁿ, times the k − 1 contrasts); if not,
    no test is run and every configuration is tied.
    """
    k, n = x.shape
    others = [i for i in range(k) if i != best]
    if min(1.0, 2.0 / 2.0**n) * len(others) >= stats.ALPHA:
        return [True] * k, False
    p_values = [
        stats.compare_samples(x[best], x[i], paired=True, higher_is_better=higher_is_better).p_value for i in others
    ]
    tied = [True] * k
    for i, p in zip(others, stats.holm(p_values)):
        tied[i] = p is None or p >= stats.ALPHA
    return tied, True


def rank(
    values: Sequence[Sequence[float]], seeds: Sequence[int], labels: Sequence[str], *, higher_is_better: bool
) -> Ranking:
    """Ranks the configurations of a tuning by their metric over common seeds.

    Args:
        values: the metric, one row per configuration and one column per seed
            (seed *i* of every row is the same seed); NaN for a failed run.
        seeds: the seed of each column.
        labels: the name of each configuration.
        higher_is_better: whether a higher metric is better (accuracy) or a lower one (loss).

    Raises:
        ValueError: the matrix is empty or ragged, has fewer than 2
            configurations, ``seeds`` or ``labels`` do not match its columns
            or rows, or fewer than 2 seed columns are finite in every configuration.
    """
    matrix = _matrix(values, seeds, labels)
    k = matrix.shape[0]
    complete = np.all(np.isfinite(matrix), axis=0)
    if np.count_nonzero(complete) < 2:
        raise ValueError(
            f"expected at least 2 seeds with a finite value in every configuration, received {matrix.tolist()}"
        )
    x = matrix[:, complete]
    n = x.shape[1]
    summaries = [stats.summarize(row) for row in x]
    sign = 1.0 if higher_is_better else -1.0
    score = sign * x  # higher is better from here on
    seed_winners = tuple(int(i) for i in np.argmax(score, axis=0))  # argmax: ties go to the first listed
    top_of_seed = score == score.max(axis=0)  # every configuration that ties for the best under a seed
    wins = top_of_seed.sum(axis=1)
    means = _snap(np.array([sign * s.mean for s in summaries]), score)
    order = tuple(int(i) for i in np.lexsort((np.arange(k), -wins, -means)))  # equal means: more seeds won first
    best = order[0]
    p_best = _p_best(score)
    tied, possible = _tied(x, best, higher_is_better)
    kendall_w, friedman_p = _concordance(score)
    seeds_for_top, top_share = _seeds_for_top(score, order[: min(TOP, k)])
    configs = tuple(
        ConfigStats(
            label=labels[i],
            n=n,
            mean=s.mean,
            ci_low=s.ci_low,
            ci_high=s.ci_high,
            p_best=float(p_best[i]),
            tied=tied[i],
            seed_wins=int(wins[i]),
        )
        for i, s in enumerate(summaries)
    )
    return Ranking(
        configs=configs,
        order=order,
        seeds=tuple(int(s) for s, used in zip(seeds, complete) if used),
        dropped=tuple(int(s) for s, used in zip(seeds, complete) if not used),
        higher_is_better=higher_is_better,
        seed_winners=seed_winners,
        winner_share=float(np.mean(top_of_seed[best])),
        one_seed_pick=seed_winners[0],
        kendall_w=kendall_w,
        friedman_p=friedman_p,
        tie_test_possible=possible,
        seeds_for_top=seeds_for_top,
        top_share=top_share,
    )

"""Seeds on demand: a group-sequential seed study that adds seeds in rounds and stops once the verdict is settled.

Each variant is compared with the first (``m`` contrasts), one training per
seed per variant. The study looks at the data after each round, at seed counts
fixed before any run by ``max_seeds``, ``m``, pairing and ``alpha`` alone, and
keeps the false-positive rate over all its looks at most ``alpha``:

- Alpha spending, Lan & DeMets (1983), "Discrete sequential boundaries for
  clinical trials", Biometrika 70(3):659–663, Pocock type:
  ``α(t) = α ln(1 + (e − 1) t)``, ``t = n / max_seeds``.
- Each look tests with the permutation test of :mod:`reprokit.study.stats`,
  Holm over the ``m`` contrasts, at level ``u_k = α(t_k) − spent_{k−1}``.
  Looks combine by the union bound: P(a false rejection at any look) ≤ Σ cost_k.
  A two-sided permutation p is ``2 min(count) / G`` (G = 2**n paired, C(2n, n)
  unpaired, RESAMPLES + 1 Monte Carlo): P(p ≤ u) ≤ g(u) = 2 floor(u G / 2) / G,
  and a look costs ``cost_k = max over m0 ≤ m of m0 g(u_k / m0)`` (Holm rejects
  a true null only at p ≤ u / m0), at most ``u_k``; the rest carries over.
- Schedule: the first look is the smallest n ≥ MIN_SEEDS whose smallest p
  (2 / G) times ``m`` is within ``α(t)``, then one every ``max(2, ceil(n / 4))``
  seeds, and always a last look at ``max_seeds`` (a last step shorter than
  half a step is merged into it).
- Equivalence (given ``min_effect``): TOST, Schuirmann (1987), J. Pharmacokinet.
  Biopharm. 15(6):657–680: the ``1 − 2 e_k`` t-interval of the mean difference
  (paired, or Welch) within ``±min_effect``, ``e_k = (α(t_k) − α(t_{k−1})) / m``.
- Futility, non-binding (it never rejects, so it cannot raise the false-positive
  rate), only without ``min_effect`` (with it, "equivalent" is the answer a
  study of no difference should reach): before the last look, conditional
  power under the current trend below :data:`FUTILITY`, the final test taken
  at the nominal ``α / m``, Lan & Wittes (1988), "The B-value: a tool for
  monitoring data", Biometrics 44(2):579–585.

A settled contrast stays settled; at ``max_seeds`` the open ones end with
:attr:`Reason.MAX_SEEDS`. docs/sequential.md explains it for users.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from reprokit.core.vocabulary import Outcome, Word
from reprokit.study import stats
from reprokit.study.stats import ALPHA, MIN_SEEDS, RANDOM_SEED, RESAMPLES, Array

FUTILITY = 0.10
"""A contrast whose conditional power under the current trend is below this is futile."""

Samples = Sequence[tuple[Sequence[float], Sequence[float]]]
"""One look's data: per contrast, (values of the first variant, values of the other), one per seed."""


class Reason(Word):
    """Why a contrast's verdict is settled (a string enum: its value is the JSON word)."""

    SIGNIFICANT = "significant"
    EQUIVALENT = "equivalent"
    FUTILE = "futile"
    MAX_SEEDS = "max_seeds"
    OPEN = "open"  # not settled yet


@dataclass(frozen=True)
class Look:
    """One look of a design: its seeds per variant, Holm level, cumulative alpha spent and equivalence share."""

    seeds: int
    level: float
    spent: float
    equivalence: float


@dataclass(frozen=True)
class Design:
    """The looks of a sequential study, fixed by its options before any run."""

    max_seeds: int
    contrasts: int
    paired: bool
    alpha: float
    looks: tuple[Look, ...]

    @property
    def first(self) -> int:
        """The seeds per variant of the first look."""
        return self.looks[0].seeds

    def look(self, seeds: int) -> Look | None:
        """The look at ``seeds`` seeds per variant, None when there is none."""
        return next((k for k in self.looks if k.seeds == seeds), None)

    def next_seeds(self, seeds: int) -> int | None:
        """The seeds of the first look after ``seeds``, None after the last."""
        return next((k.seeds for k in self.looks if k.seeds > seeds), None)


@dataclass(frozen=True)
class Verdict:
    """A contrast's verdict at a look: BETTER or WORSE when significant, EQUIVALENT, else WITHIN_NOISE."""

    outcome: Outcome
    reason: Reason
    seeds: int  # the look at which it was settled (the current look while open)
    p_adjusted: float | None
    level: float  # the Holm level applied at that look (its cost when runs were left out: see judge)

    @property
    def settled(self) -> bool:
        """Whether the verdict is final."""
        return self.reason is not Reason.OPEN


@dataclass(frozen=True)
class Simulation:
    """Synthetic studies of a design: the share with a significant contrast, seeds used, and why contrasts stopped."""

    studies: int
    effect: float
    sd: float
    rejection_rate: float
    mean_seeds: float
    stops: tuple[tuple[Reason, int], ...]  # contrasts per final reason, over every study


def _check(contrasts: int, alpha: float) -> None:
    if contrasts < 1:
        raise ValueError(f"expected at least 1 contrast, received {contrasts}")
    if not 0 < alpha < 1:
        raise ValueError(f"expected an alpha in (0, 1), received {alpha}")


def _spending(seeds: int, max_seeds: int, alpha: float) -> float:
    """α(t) = α ln(1 + (e − 1) t), t = seeds / max_seeds; exactly α at the end."""
    return alpha if seeds >= max_seeds else alpha * math.log1p((math.e - 1) * seeds / max_seeds)


def _grid(seeds: int, paired: bool) -> int:
    """G: the test's p-values are multiples of 2 / G (every permutation, or RESAMPLES + 1 Monte Carlo)."""
    distinct = 2**seeds if paired else math.comb(2 * seeds, seeds)
    return distinct if distinct <= RESAMPLES else RESAMPLES + 1


def _cost(level: float, contrasts: int, grid: int) -> float:
    """The most a look at Holm level ``level`` adds to the false-positive rate: max over m0 of m0 g(level / m0).

    The factor 1 + 1e-12 counts a grid point that rounding puts a hair above the level.
    """
    worst = max(2 * m0 * math.floor(level / m0 * grid / 2 * (1 + 1e-12)) / grid for m0 in range(1, contrasts + 1))
    return min(level, worst)  # a valid p-value never exceeds its level: P(p ≤ u) ≤ u


def _reachable(seeds: int, contrasts: int, paired: bool, max_seeds: int, alpha: float) -> bool:
    """Whether the smallest attainable p (2 / G) times ``contrasts`` is within α(seeds / max_seeds)."""
    return contrasts * 2 / _grid(seeds, paired) <= _spending(seeds, max_seeds, alpha)


def design(max_seeds: int, contrasts: int = 1, *, paired: bool = True, alpha: float = ALPHA) -> Design:
    """The looks of a sequential study of at most ``max_seeds`` seeds per variant.

    Raises:
        ValueError: no look up to ``max_seeds`` can reach significance (the
            message names the smallest ``max_seeds`` that can), ``contrasts`` is
            below 1 or ``alpha`` outside (0, 1).
    """
    _check(contrasts, alpha)
    first = next((n for n in range(MIN_SEEDS, max_seeds + 1) if _reachable(n, contrasts, paired, max_seeds, alpha)), 0)
    if not first:
        least = next((n for n in range(MIN_SEEDS, 64) if _reachable(n, contrasts, paired, n, alpha)), None)
        kind = f"{contrasts} contrast{'s' * (contrasts > 1)}, {'paired' if paired else 'unpaired'}, alpha {alpha}"
        if least is None:
            raise ValueError(f"expected a design that can reach significance, received {kind}: no max_seeds can")
        raise ValueError(f"expected max_seeds of at least {least} to reach significance ({kind}), received {max_seeds}")
    schedule = [first]
    while schedule[-1] < max_seeds:
        step = max(2, math.ceil(schedule[-1] / 4))
        following = schedule[-1] + step
        # a last step of fewer than half a step is merged into the last look: no look of one or two seeds more
        schedule.append(max_seeds if following + step / 2 > max_seeds else following)
    looks, spent, before = [], 0.0, 0.0
    for n in schedule:
        target = _spending(n, max_seeds, alpha)
        level = target - spent
        spent = min(target, spent + _cost(level, contrasts, _grid(n, paired)))
        looks.append(Look(seeds=n, level=level, spent=spent, equivalence=(target - before) / contrasts))
        before = target
    return Design(max_seeds=max_seeds, contrasts=contrasts, paired=paired, alpha=alpha, looks=tuple(looks))


def fixed_minimum(contrasts: int = 1, *, paired: bool = True, alpha: float = ALPHA) -> int:
    """The fewest seeds per variant with which a fixed-n study can reach significance.

    The rule of :func:`reprokit.study.stats.decide`: at least MIN_SEEDS, and the
    smallest p (2 / 2**n paired, 2 / C(2n, n) unpaired) times ``contrasts`` below ``alpha``.

    Raises:
        ValueError: ``contrasts`` is below 1 or ``alpha`` outside (0, 1).
    """
    _check(contrasts, alpha)
    n = MIN_SEEDS
    while min(1.0, 2.0 / (2.0**n if paired else math.comb(2 * n, n))) * contrasts >= alpha:
        n += 1
    return n


@lru_cache(maxsize=32)
def _signs(seeds: int) -> Array:
    """The sign patterns SciPy's paired test uses: all 2**n, or its RESAMPLES draws from RANDOM_SEED."""
    if 2**seeds <= RESAMPLES:
        flips = (np.arange(2**seeds)[:, None] >> np.arange(seeds)) & 1
    else:  # scipy.stats.permutation_test, permutation_type="samples": each seed's pair permuted by the generator
        pairs = np.tile(np.arange(2), (RESAMPLES, seeds, 1))
        flips = np.random.default_rng(RANDOM_SEED).permuted(pairs, axis=-1)[..., 0]
    signs = np.ascontiguousarray((1.0 - 2.0 * flips).T)  # one row per seed
    signs.setflags(write=False)
    return signs


def _paired_p(a: Array, b: Array) -> float:
    """The p-value of :func:`reprokit.study.stats.compare_samples` for paired samples, vectorised with NumPy."""
    d = b - a
    observed = float(np.mean(d))
    flipped = _signs(d.size) * d[:, None]
    total = flipped[0].copy()
    for row in flipped[1:]:  # seed by seed, as NumPy sums SciPy's null distribution: the same rounding
        total += row
    null = total / d.size
    gamma = abs(np.finfo(np.float64).eps * 100 * observed)  # SciPy's tolerance for ties
    extra = 0 if 2**d.size <= RESAMPLES else 1
    less = (np.count_nonzero(null <= observed + gamma) + extra) / (null.size + extra)
    greater = (np.count_nonzero(null >= observed - gamma) + extra) / (null.size + extra)
    return float(min(1.0, 2 * min(less, greater)))


def _moments(a: Array, b: Array, paired: bool) -> tuple[float, float, float]:
    """The mean difference, its standard error and degrees of freedom (paired t, or Welch)."""
    if paired:
        return float(np.mean(b - a)), math.sqrt(stats._var(b - a) / a.size), a.size - 1.0
    va, vb = stats._var(a) / a.size, stats._var(b) / b.size
    df = (va + vb) ** 2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if va + vb > 0 else a.size + b.size - 2.0
    return float(np.mean(b) - np.mean(a)), math.sqrt(va + vb), df


def _equivalent(difference: float, se: float, df: float, share: float, min_effect: float) -> bool:
    """TOST: the 1 − 2 share t-interval of the difference lies within ±min_effect."""
    from scipy import special  # imported here: it costs every command 0.4 s at start

    half = float(special.stdtrit(df, 1 - share)) * se if se > 0 else 0.0
    return -min_effect <= difference - half and difference + half <= min_effect


def _conditional_power(difference: float, se: float, fraction: float, critical: float) -> float:
    """Lan & Wittes' conditional power under the current trend: B = Z √t, drift θ = Z / √t, two-sided on |Z|."""
    if se == 0:
        return 0.0 if difference == 0 else 1.0
    z = abs(difference) / se
    b, drift = z * math.sqrt(fraction), z / math.sqrt(fraction)
    return 1 - NormalDist().cdf((critical - b - drift * (1 - fraction)) / math.sqrt(1 - fraction))


def _sample(values: Sequence[float], seeds: int, name: str) -> Array:
    x = stats._sample(values, name)
    if x.size > seeds:
        raise ValueError(f"expected at most {seeds} values for {name} (one per seed), received {x.size}")
    return x


def _p_value(a: Array, b: Array, paired: bool) -> float:
    """The permutation p of :mod:`reprokit.study.stats`; 1 with fewer than 2 values (no test)."""
    if min(a.size, b.size) < 2:
        return 1.0
    p = _paired_p(a, b) if paired else stats._permutation_p(a, b, False)[0]
    return 1.0 if p is None else p


def judge(
    design: Design,
    seeds: int,
    samples: Samples,
    *,
    higher_is_better: bool,
    min_effect: float | None = None,
    before: Sequence[Verdict] | None = None,
) -> tuple[Verdict, ...]:
    """The verdicts of one look: ``samples[i]`` = (values of the first variant, of variant i + 1), ``seeds`` each.

    ``before`` holds the previous look's verdicts; the settled ones are kept unchanged.
    A sample may hold fewer values than ``seeds`` (failed runs left out): the
    look then rejects at its cost (what the design spends on it) instead of its
    level, which keeps the bound whatever the grid of the smaller samples; a
    contrast with fewer than 2 values on a side is tested as p = 1 and stays open.

    Raises:
        ValueError: ``seeds`` is not a look of the design, the samples or
            ``before`` do not match the design, a value is not finite, or
            ``min_effect`` is negative.
    """
    look = design.look(seeds)
    if look is None:
        raise ValueError(f"expected a look of the design {[k.seeds for k in design.looks]}, received {seeds} seeds")
    if len(samples) != design.contrasts or (before is not None and len(before) != design.contrasts):
        got = f"{len(samples)} samples and {'no' if before is None else len(before)} verdicts before"
        raise ValueError(f"expected {design.contrasts} contrasts, received {got}")
    if min_effect is not None and min_effect < 0:
        raise ValueError(f"expected a non-negative min_effect, received {min_effect}")
    pairs = [(_sample(a, seeds, f"a[{i}]"), _sample(b, seeds, f"b[{i}]")) for i, (a, b) in enumerate(samples)]
    if design.paired and any(a.size != b.size for a, b in pairs):
        raise ValueError(f"expected paired samples of one length, received {[(a.size, b.size) for a, b in pairs]}")
    adjusted = stats.holm([_p_value(a, b, design.paired) for a, b in pairs])  # None never: every contrast counts
    index = design.looks.index(look)
    level = look.level
    if any(x.size < seeds for pair in pairs for x in pair):
        level = look.spent - (design.looks[index - 1].spent if index else 0.0)
    last = look.seeds == design.max_seeds
    fraction = seeds / design.max_seeds
    critical = NormalDist().inv_cdf(1 - design.alpha / (2 * design.contrasts))
    verdicts = []
    for i, ((a, b), p) in enumerate(zip(pairs, adjusted)):
        if before is not None and before[i].settled:
            verdicts.append(before[i])
            continue
        tested = min(a.size, b.size) >= 2
        difference, se, df = _moments(a, b, design.paired) if tested else (0.0, 0.0, 1.0)
        outcome, reason = Outcome.WITHIN_NOISE, Reason.OPEN
        if tested and p is not None and p <= level and difference != 0:
            better = (difference > 0) == higher_is_better
            outcome, reason = (Outcome.BETTER if better else Outcome.WORSE), Reason.SIGNIFICANT
        elif tested and min_effect is not None and _equivalent(difference, se, df, look.equivalence, min_effect):
            outcome, reason = Outcome.EQUIVALENT, Reason.EQUIVALENT
        elif last:
            reason = Reason.MAX_SEEDS
        elif tested and min_effect is None and _conditional_power(difference, se, fraction, critical) < FUTILITY:
            reason = Reason.FUTILE
        verdicts.append(Verdict(outcome=outcome, reason=reason, seeds=seeds, p_adjusted=p, level=level))
    return tuple(verdicts)


def run_sequential(
    design: Design,
    draw: Callable[[int], Samples],
    *,
    higher_is_better: bool,
    min_effect: float | None = None,
) -> tuple[tuple[Verdict, ...], int]:
    """Runs a whole study: ``draw(n)`` gives the samples with ``n`` seeds; stops once every verdict is settled.

    Returns:
        The final verdicts, and the seeds per variant used.
    """
    verdicts: tuple[Verdict, ...] | None = None
    for look in design.looks:
        samples = draw(look.seeds)
        verdicts = judge(
            design, look.seeds, samples, higher_is_better=higher_is_better, min_effect=min_effect, before=verdicts
        )
        if all(v.settled for v in verdicts):
            return verdicts, look.seeds
    raise AssertionError("the last look settles every contrast")  # pragma: no cover


def _drawer(a: Array, b: Array) -> Callable[[int], Samples]:
    return lambda n: [(a[:n].tolist(), row[:n].tolist()) for row in b]


def simulate(
    design: Design, *, effect: float, sd: float, studies: int, seed: int = 0, min_effect: float | None = None
) -> Simulation:
    """Runs ``studies`` synthetic studies of the design, without training.

    Per seed, variant A ~ N(0, sd); paired, every other variant B = A + effect
    + N(0, sd) (unpaired: B ~ N(effect, sd), independent of A), all from
    ``numpy.random.default_rng(seed)``; a higher value is better.

    Raises:
        ValueError: ``studies`` is below 1 or ``sd`` negative.
    """
    if studies < 1 or sd < 0:
        raise ValueError(f"expected at least 1 study and a non-negative sd, received {studies} and {sd}")
    rng = np.random.default_rng(seed)
    shape = (design.contrasts, design.max_seeds)
    rejected, used, stops = 0, 0, Counter[Reason]()
    for _ in range(studies):
        a = rng.normal(0.0, sd, design.max_seeds)
        b = (a if design.paired else 0.0) + effect + rng.normal(0.0, sd, shape)
        verdicts, seeds = run_sequential(design, _drawer(a, b), higher_is_better=True, min_effect=min_effect)
        rejected += any(v.reason is Reason.SIGNIFICANT for v in verdicts)
        used += seeds
        stops.update(v.reason for v in verdicts)
    return Simulation(
        studies=studies,
        effect=effect,
        sd=sd,
        rejection_rate=rejected / studies,
        mean_seeds=used / studies,
        stops=tuple((r, stops[r]) for r in Reason if r is not Reason.OPEN),
    )

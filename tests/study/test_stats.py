"""The statistics of seed studies, against SciPy called directly on recorded accuracies."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pytest
from scipy import stats

from reprokit.core.vocabulary import Outcome
from reprokit.study.stats import (
    ALPHA,
    CONFIDENCE,
    MIN_SEEDS,
    POWER,
    RANDOM_SEED,
    RESAMPLES,
    Effect,
    compare_samples,
    decide,
    holm,
    smallest_p,
    summarize,
)

# final test accuracies of two variants over ten seeds (seed i of one pairs with seed i of the other)
A = [0.912, 0.905, 0.918, 0.909, 0.915, 0.902, 0.911, 0.920, 0.907, 0.913]
B = [0.917, 0.909, 0.921, 0.916, 0.914, 0.910, 0.919, 0.924, 0.908, 0.920]


def mean_difference(a: Any, b: Any, axis: int = -1) -> Any:
    return np.mean(b, axis=axis) - np.mean(a, axis=axis)


def paired_difference(a: Any, b: Any, axis: int = -1) -> Any:
    return np.mean(b - a, axis=axis)


def scipy_permutation_p(a: list[float], b: list[float], paired: bool, n_resamples: float = RESAMPLES) -> float:
    return float(
        stats.permutation_test(
            (np.array(a), np.array(b)),
            paired_difference if paired else mean_difference,
            permutation_type="samples" if paired else "independent",
            vectorized=True,
            n_resamples=n_resamples,
            alternative="two-sided",
            axis=-1,
            rng=np.random.default_rng(RANDOM_SEED),
        ).pvalue
    )


def scipy_interval(data: tuple[Any, ...], statistic: Any, method: str = "BCa") -> tuple[float, float]:
    ci = stats.bootstrap(
        data,
        statistic,
        confidence_level=CONFIDENCE,
        method=method,
        n_resamples=RESAMPLES,
        rng=np.random.default_rng(RANDOM_SEED),
        vectorized=True,
        axis=-1,
    ).confidence_interval
    return float(ci.low), float(ci.high)


def power(effect: Effect, difference: float, a: list[float], b: list[float]) -> float:
    """The power of the two-sided t-test at ``difference``, with the noncentral t."""
    if effect.paired:
        se = float(np.std(np.subtract(b, a), ddof=1)) / math.sqrt(len(a))
        df = len(a) - 1.0
    else:
        va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    critical = stats.t.ppf(1 - ALPHA / 2, df)
    nc = difference / se
    return float(stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc))


def shifted(values: list[float], by: float) -> list[float]:
    return [v + by for v in values]


# summaries


def test_a_summary_has_numpys_figures_and_scipys_bca_interval_around_the_mean() -> None:
    s = summarize(A)
    x = np.array(A)
    assert (s.n, s.mean, s.std, s.median, s.min, s.max) == (
        10,
        np.mean(x),
        np.std(x, ddof=1),
        np.median(x),
        np.min(x),
        np.max(x),
    )
    assert (s.ci_low, s.ci_high) == scipy_interval((x,), np.mean)
    assert s.ci_method == "BCa bootstrap"
    assert s.ci_low is not None and s.ci_high is not None
    assert s.ci_low < s.mean < s.ci_high


def test_equal_values_give_a_zero_width_interval_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize([0.91] * 6)
    assert (s.ci_low, s.ci_high, s.ci_method) == (s.mean, s.mean, "all values equal")
    assert s.mean == pytest.approx(0.91)
    assert s.std == 0.0


def test_a_single_value_has_no_interval_and_no_spread() -> None:
    s = summarize([0.9])
    assert (s.n, s.mean, s.std, s.ci_low, s.ci_high, s.ci_method) == (1, 0.9, 0.0, None, None, "too few values")


@pytest.mark.parametrize("values", [[0.9, math.nan, 0.91], [0.9, math.inf], []])
def test_missing_or_infinite_values_are_refused(values: list[float]) -> None:
    with pytest.raises(ValueError, match=r"finite|non-empty"):
        summarize(values)
    with pytest.raises(ValueError, match=r"finite|non-empty"):
        compare_samples([0.9, 0.91], values, paired=False, higher_is_better=True)


def test_a_degenerate_bca_interval_falls_back_to_the_percentile_bootstrap_quietly() -> None:
    values = [0.3] * 7 + [float(np.nextafter(0.3, 1))]  # the jackknife cannot see the one-ulp spread
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = summarize(values)
    assert s.ci_method == "percentile bootstrap"
    assert (s.ci_low, s.ci_high) == scipy_interval((np.array(values),), np.mean, method="percentile")


# comparisons: the test and the interval


def test_the_paired_p_value_is_scipys_permutation_test_on_the_same_data() -> None:
    effect = compare_samples(A, B, paired=True, higher_is_better=True)
    assert effect.p_value == scipy_permutation_p(A, B, paired=True)
    assert effect.p_exact  # 2**10 = 1024 sign patterns
    assert effect.difference == pytest.approx(np.mean(B) - np.mean(A))


def test_a_paired_permutation_test_with_few_seeds_is_exact() -> None:
    effect = compare_samples(A[:5], B[:5], paired=True, higher_is_better=True)
    assert effect.p_exact
    assert effect.p_value == scipy_permutation_p(A[:5], B[:5], paired=True, n_resamples=np.inf)
    assert effect.p_value is not None
    assert (effect.p_value * 32) == pytest.approx(round(effect.p_value * 32))  # a count out of 2**5


def test_three_seeds_against_three_cannot_reach_significance() -> None:
    a, b = [0.90, 0.91, 0.92], [0.95, 0.96, 0.97]
    effect = compare_samples(a, b, paired=True, higher_is_better=True)
    assert effect.p_exact
    assert effect.p_value == pytest.approx(0.25)  # 2 of 2**3 sign patterns are as extreme
    assert decide(effect, effect.p_value) is Outcome.TOO_FEW_SEEDS
    assert decide(effect, 0.001) is Outcome.TOO_FEW_SEEDS  # even with a p that would count


def test_the_unpaired_p_value_is_scipys_and_ten_against_ten_is_sampled() -> None:
    effect = compare_samples(A, B, paired=False, higher_is_better=True)
    assert effect.p_value == scipy_permutation_p(A, B, paired=False)
    assert not effect.p_exact  # comb(20, 10) = 184756 orderings
    small = compare_samples(A[:5], B[:5], paired=False, higher_is_better=True)
    assert small.p_exact  # comb(10, 5) = 252
    assert small.p_value == scipy_permutation_p(A[:5], B[:5], paired=False, n_resamples=np.inf)


def test_the_intervals_are_scipys_bca_of_the_per_seed_or_the_independent_difference() -> None:
    paired = compare_samples(A, B, paired=True, higher_is_better=True)
    assert (paired.ci_low, paired.ci_high) == scipy_interval((np.subtract(B, A),), np.mean)
    unpaired = compare_samples(A, B, paired=False, higher_is_better=True)
    assert (unpaired.ci_low, unpaired.ci_high) == scipy_interval((np.array(A), np.array(B)), mean_difference)
    widths = []
    for effect in (paired, unpaired):
        assert effect.ci_method == "BCa bootstrap"
        assert effect.ci_low is not None and effect.ci_high is not None
        assert effect.ci_low < effect.difference < effect.ci_high
        widths.append(effect.ci_high - effect.ci_low)
    assert widths[0] < widths[1]  # pairing removes the noise the seeds share


def test_paired_samples_of_different_lengths_are_refused() -> None:
    with pytest.raises(ValueError, match="one length"):
        compare_samples(A, B[:9], paired=True, higher_is_better=True)


# comparisons: the effect sizes


def test_welch_is_scipys_unequal_variance_t_test() -> None:
    effect = compare_samples(A, B[:7], paired=False, higher_is_better=True)
    expected = stats.ttest_ind(B[:7], A, equal_var=False)
    assert (effect.welch_t, effect.welch_p) == (float(expected.statistic), float(expected.pvalue))


def test_the_probability_of_improvement_counts_ties_as_half() -> None:
    same = compare_samples(A, list(reversed(A)), paired=False, higher_is_better=True)
    assert same.prob_improvement == 0.5
    # B > A in 3 of 4 pairs and one tie: (3 + 0.5) / 4
    effect = compare_samples([1.0, 2.0], [2.0, 3.0], paired=False, higher_is_better=True)
    assert effect.prob_improvement == pytest.approx(3.5 / 4)


def test_the_probability_of_improvement_flips_when_lower_is_better() -> None:
    higher = compare_samples(A, B, paired=False, higher_is_better=True)
    lower = compare_samples(A, B, paired=False, higher_is_better=False)
    u = stats.mannwhitneyu(B, A).statistic
    assert higher.prob_improvement == pytest.approx(u / 100)
    assert lower.prob_improvement == pytest.approx(1 - u / 100)
    assert higher.prob_improvement > 0.5 > lower.prob_improvement
    assert lower.difference == higher.difference  # the difference keeps its sign: B minus A


def test_hedges_g_matches_a_hand_computed_example() -> None:
    # means 5 and 7, both variances (9 + 1 + 1 + 9) / 3 = 20/3; J = 1 - 3 / (4 * 8 - 9) = 20/23
    effect = compare_samples([2, 4, 6, 8], [4, 6, 8, 10], paired=False, higher_is_better=True)
    assert effect.hedges_g == pytest.approx(2 / math.sqrt(20 / 3) * 20 / 23)
    assert compare_samples([2], [4, 6], paired=False, higher_is_better=True).hedges_g is None  # n + m < 4


@pytest.mark.parametrize("paired", [True, False])
def test_the_detectable_difference_has_eighty_percent_power(paired: bool) -> None:
    effect = compare_samples(A, B, paired=paired, higher_is_better=True)
    assert effect.detectable is not None
    assert power(effect, effect.detectable, A, B) == pytest.approx(POWER, abs=1e-9)
    assert power(effect, 0.9 * effect.detectable, A, B) < POWER


@pytest.mark.parametrize("paired", [True, False])
def test_the_detectable_difference_shrinks_with_more_seeds(paired: bool) -> None:
    # the same five seeds, seen twice and four times: the spread stays, the number of seeds grows
    sizes = [compare_samples(A[:5] * k, B[:5] * k, paired=paired, higher_is_better=True).detectable for k in (1, 2, 4)]
    assert all(s is not None for s in sizes)
    assert sizes[0] > sizes[1] > sizes[2]  # type: ignore[operator]


@pytest.mark.parametrize("paired", [True, False])
def test_constant_samples_give_defined_figures_without_warnings(paired: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = compare_samples([0.9] * 5, [0.9] * 5, paired=paired, higher_is_better=True)
        apart = compare_samples([0.9] * 5, [0.91] * 5, paired=paired, higher_is_better=True)
    assert (same.p_value, same.ci_low, same.ci_high, same.ci_method) == (1.0, 0.0, 0.0, "all values equal")
    assert (same.welch_t, same.welch_p, same.hedges_g, same.detectable) == (None, None, None, 0.0)
    assert (apart.ci_low, apart.ci_high) == (apart.difference, apart.difference)
    assert (apart.welch_t, apart.hedges_g, apart.detectable) == (None, None, 0.0)
    assert apart.p_value == pytest.approx(2 / 32 if paired else 2 / 252)  # the most extreme arrangement


def test_a_group_of_one_gives_no_test() -> None:
    effect = compare_samples([0.9], A, paired=False, higher_is_better=True)
    assert (effect.p_value, effect.p_exact, effect.ci_low, effect.welch_t, effect.detectable) == (
        None,
        False,
        None,
        None,
        None,
    )
    assert effect.hedges_g is not None  # B's spread alone gives the pooled sd


def test_the_same_numbers_give_the_same_effect() -> None:
    for paired in (True, False):
        assert compare_samples(A, B, paired=paired, higher_is_better=True) == compare_samples(
            A, B, paired=paired, higher_is_better=True
        )
    assert summarize(A) == summarize(A)


# Holm


def test_holm_matches_a_hand_worked_example() -> None:
    # sorted 0.01 * 3 = 0.03, 0.03 * 2 = 0.06, 0.04 * 1 = 0.04 raised to 0.06 to stay monotone
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_holm_keeps_the_order_of_p_values_and_caps_them_at_one() -> None:
    p = [0.2, 0.001, 0.7, 0.04, 0.6]
    adjusted = [q for q in holm(p) if q is not None]
    assert len(adjusted) == len(p)
    ranked = [adjusted[i] for i in np.argsort(p)]
    assert ranked == sorted(ranked)
    assert all(p_ <= q <= 1 for p_, q in zip(p, adjusted))
    assert adjusted[4] == 1.0  # 0.6 * 2 capped


def test_holm_leaves_missing_p_values_out_of_the_count() -> None:
    assert holm([None, 0.01, None, 0.04]) == pytest.approx([None, 0.02, None, 0.04])
    assert holm([]) == []
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


# decisions


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_a_shift_of_five_standard_deviations_is_better_or_worse_by_direction(higher_is_better: bool) -> None:
    a, sd = A[:8], float(np.std(A[:8], ddof=1))
    up = compare_samples(a, shifted(a, 5 * sd), paired=False, higher_is_better=higher_is_better)
    assert up.p_value is not None and up.p_value < ALPHA
    assert decide(up, up.p_value) is (Outcome.BETTER if higher_is_better else Outcome.WORSE)
    down = compare_samples(a, shifted(a, -5 * sd), paired=False, higher_is_better=higher_is_better)
    assert decide(down, down.p_value) is (Outcome.WORSE if higher_is_better else Outcome.BETTER)
    assert decide(up, 0.2) is Outcome.WITHIN_NOISE  # the p given (Holm-adjusted) is what counts, not the effect's


def test_identical_samples_are_equivalent_only_given_a_margin() -> None:
    effect = compare_samples(A, list(reversed(A)), paired=False, higher_is_better=True)
    assert effect.ci_low is not None and effect.ci_high is not None
    margin = max(-effect.ci_low, effect.ci_high)
    assert decide(effect, effect.p_value, min_effect=margin) is Outcome.EQUIVALENT
    assert decide(effect, effect.p_value, min_effect=0.5 * margin) is Outcome.WITHIN_NOISE  # the interval pokes out
    assert decide(effect, effect.p_value) is Outcome.WITHIN_NOISE
    same_seeds = compare_samples(A, A, paired=True, higher_is_better=True)  # every per-seed difference is 0
    assert decide(same_seeds, same_seeds.p_value, min_effect=0.0) is Outcome.EQUIVALENT


def test_too_few_seeds_wins_over_everything() -> None:
    n = MIN_SEEDS - 1
    effect = compare_samples(A[:n], shifted(A[:n], 1.0), paired=False, higher_is_better=True)
    assert decide(effect, 0.0, min_effect=10.0) is Outcome.TOO_FEW_SEEDS
    enough = compare_samples(A[:MIN_SEEDS], shifted(A[:MIN_SEEDS], 1.0), paired=False, higher_is_better=True)
    assert decide(enough, enough.p_value) is Outcome.BETTER  # 4 against 4 can: 2 / comb(8, 4) < 0.05


def test_a_negative_margin_is_refused() -> None:
    effect = compare_samples(A, B, paired=True, higher_is_better=True)
    with pytest.raises(ValueError, match="non-negative"):
        decide(effect, effect.p_value, min_effect=-0.01)


def test_a_paired_study_of_five_seeds_makes_no_claim_because_its_exact_test_cannot_reach_alpha() -> None:
    a = [0.80, 0.81, 0.82, 0.83, 0.84]
    far = [v + 0.10 for v in a]
    five = compare_samples(a, far, paired=True, higher_is_better=True)
    six = compare_samples([*a, 0.85], [*far, 0.95], paired=True, higher_is_better=True)
    assert smallest_p(five) == 2 / 32
    assert decide(five, five.p_value) is Outcome.TOO_FEW_SEEDS
    assert decide(six, six.p_value) is Outcome.BETTER
    assert decide(six, six.p_value, comparisons=2) is Outcome.TOO_FEW_SEEDS  # Holm doubles the smallest p


def test_two_paired_seeds_compare_without_a_solver_error():
    effect = compare_samples([0.81, 0.84], [0.80, 0.86], paired=True, higher_is_better=True)
    assert effect.detectable is None or effect.detectable > 0

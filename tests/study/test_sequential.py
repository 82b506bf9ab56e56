"""Seeds on demand: the sequential design's schedule, its looks' verdicts, its error rates over synthetic studies."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pytest
from scipy.stats import norm

from reprokit.core.vocabulary import Outcome
from reprokit.study import sequential, stats
from reprokit.study.sequential import (
    FUTILITY,
    Reason,
    Verdict,
    design,
    fixed_minimum,
    judge,
    run_sequential,
    simulate,
)
from reprokit.study.stats import ALPHA, MIN_SEEDS, RESAMPLES, compare_samples, decide


def designs() -> list[sequential.Design]:
    """Every design of 6 to 50 seeds, 1 to 5 contrasts, paired or not, that can reach significance."""
    found = []
    for max_seeds in (6, 7, 8, 10, 12, 16, 20, 30, 50):
        for contrasts in (1, 2, 3, 5):
            for paired in (True, False):
                if max_seeds >= next(n for n in range(4, 20) if contrasts * smallest_p(n, paired) <= ALPHA):
                    found.append(design(max_seeds, contrasts, paired=paired))
    return found


def spending(seeds: int, max_seeds: int) -> float:
    return ALPHA * math.log(1 + (math.e - 1) * seeds / max_seeds)


def smallest_p(seeds: int, paired: bool) -> float:
    distinct = 2**seeds if paired else math.comb(2 * seeds, seeds)
    return 2 / distinct if distinct <= RESAMPLES else 2 / (RESAMPLES + 1)


def noise(seeds: int, seed: int = 1) -> list[float]:
    return np.random.default_rng(seed).normal(0.9, 0.01, seeds).tolist()


DESIGNS = designs()


def test_the_schedule_is_fixed_by_the_options_alone():
    assert design(30, 2, paired=False) == design(30, 2, paired=False)
    assert [look.seeds for look in design(30).looks] == [7, 9, 12, 15, 19, 24, 30]
    for d in DESIGNS:
        seeds = [look.seeds for look in d.looks]
        assert seeds[-1] == d.max_seeds
        for n, later in itertools.pairwise(seeds):
            step = max(2, math.ceil(n / 4))
            # one look every step; a last step shorter than half a step is merged into the last look
            assert later == (d.max_seeds if n + step + step / 2 > d.max_seeds else n + step)
    assert [look.seeds for look in design(30, 2).looks] == [8, 10, 13, 17, 22, 30]


def test_the_first_look_is_the_smallest_seed_count_at_which_a_rejection_is_possible():
    for d in DESIGNS:
        m = d.contrasts
        assert d.first >= MIN_SEEDS
        assert m * smallest_p(d.first, d.paired) <= spending(d.first, d.max_seeds) * (1 + 1e-9)
        for n in range(MIN_SEEDS, d.first):
            assert m * smallest_p(n, d.paired) > spending(n, d.max_seeds)


def test_the_spent_alpha_grows_and_never_exceeds_alpha():
    for d in DESIGNS:
        spent = [look.spent for look in d.looks]
        assert spent == sorted(spent)
        assert 0 < spent[-1] <= ALPHA
        assert all(look.spent <= spending(look.seeds, d.max_seeds) + 1e-15 for look in d.looks)


def test_a_look_costs_no_more_than_its_level_and_the_unspent_alpha_carries_over():
    for d in DESIGNS:
        before = 0.0
        for look in d.looks:
            assert look.level == pytest.approx(spending(look.seeds, d.max_seeds) - before, abs=1e-15)
            assert look.spent - before <= look.level + 1e-15
            before = look.spent


def test_a_look_costs_the_worst_holm_case_on_the_grid_of_attainable_p_values():
    d = design(30, 3)
    for before, look in zip([0.0, *[k.spent for k in d.looks]], d.looks):
        grid = min(2**look.seeds, RESAMPLES + 1)
        worst = max(m0 * 2 * math.floor(look.level / m0 * grid / 2) / grid for m0 in (1, 2, 3))
        assert look.spent - before == pytest.approx(worst, abs=1e-15)


def test_the_equivalence_shares_add_up_to_alpha_per_contrast():
    for d in DESIGNS:
        assert sum(look.equivalence for look in d.looks) * d.contrasts == pytest.approx(ALPHA)


def test_five_seeds_cannot_reach_significance_and_the_error_names_the_max_that_would():
    with pytest.raises(ValueError, match=r"at least 6 .* received 5"):
        design(5)
    with pytest.raises(ValueError, match=r"at least 7 .* received 6"):
        design(6, 2)
    assert design(6).looks == (sequential.Look(seeds=6, level=ALPHA, spent=2 / 64, equivalence=ALPHA),)


def test_a_design_refuses_no_contrasts_and_an_alpha_outside_0_1():
    with pytest.raises(ValueError, match="at least 1 contrast"):
        design(30, 0)
    with pytest.raises(ValueError, match="alpha"):
        design(30, alpha=1.5)


def test_the_next_look_and_the_look_at_a_seed_count():
    d = design(30)
    assert d.first == 7
    assert [d.next_seeds(n) for n in (0, 7, 8, 24, 30)] == [7, 9, 9, 30, None]
    assert d.look(12) == d.looks[2]
    assert d.look(13) is None


def test_a_fixed_study_needs_6_paired_seeds():
    assert fixed_minimum() == 6
    assert fixed_minimum(1, paired=True) == 6


@pytest.mark.parametrize("paired", [True, False])
@pytest.mark.parametrize("contrasts", [1, 2, 3, 4])
def test_the_fixed_minimum_agrees_with_the_too_few_seeds_rule_of_decide(contrasts, paired):
    template = compare_samples(noise(4), noise(4, 2), paired=paired, higher_is_better=True)
    least = fixed_minimum(contrasts, paired=paired)
    for n in range(2, least + 3):
        effect = dataclasses.replace(template, n_a=n, n_b=n)
        refused = decide(effect, None, comparisons=contrasts) is Outcome.TOO_FEW_SEEDS
        assert refused == (n < least), n


SAMPLES = [
    (noise(4), noise(4, 2)),
    (noise(6), [v + 0.003 for v in noise(6)]),
    (noise(9), noise(9, 3)),
    ([0.90, 0.91, 0.92, 0.93, 0.90, 0.91, 0.92, 0.93, 0.90, 0.91, 0.92, 0.93, 0.94], [0.91, 0.91] * 6 + [0.95]),
    (noise(14), noise(14, 4)),
    (noise(16), [v + 0.1 * (-1) ** i for i, v in enumerate(noise(16))]),  # ties on the null distribution
]


@pytest.mark.parametrize(("a", "b"), SAMPLES)
def test_the_vectorised_paired_test_gives_the_p_value_of_compare_samples(a, b):
    expected = compare_samples(a, b, paired=True, higher_is_better=True).p_value
    assert sequential._paired_p(np.array(a), np.array(b)) == expected


def test_the_vectorised_paired_test_agrees_with_scipy_on_ties_and_rounding():
    rng = np.random.default_rng(7)
    for n in range(4, 17):
        a = np.round(rng.normal(0.9, 0.01, n), 3)
        for b in (a + np.round(rng.normal(0, 0.005, n), 3), a + np.where(rng.random(n) < 0.5, 0.1, -0.1)):
            p = sequential._paired_p(a, b)
            assert p == stats._permutation_p(a, b, True)[0], n
            grid = min(2**n, RESAMPLES + 1)
            assert p * grid / 2 == pytest.approx(round(p * grid / 2), abs=1e-9)  # the grid the cost counts on


def test_a_huge_effect_is_significant_at_the_first_look():
    d = design(30, 2)
    a = noise(d.first)
    better = [v + 0.05 for v in a]
    verdicts = judge(d, d.first, [(a, better), (a, [v - 0.05 for v in a])], higher_is_better=True)
    assert [(v.outcome, v.reason, v.seeds) for v in verdicts] == [
        (Outcome.BETTER, Reason.SIGNIFICANT, d.first),
        (Outcome.WORSE, Reason.SIGNIFICANT, d.first),
    ]
    assert all(v.settled and v.p_adjusted is not None and v.p_adjusted <= v.level for v in verdicts)
    lower = judge(d, d.first, [(a, better), (a, better)], higher_is_better=False)
    assert {v.outcome for v in lower} == {Outcome.WORSE}


def test_identical_variants_are_futile_at_the_first_look_and_equivalent_given_a_min_effect():
    d = design(30)
    a = noise(d.first)
    (futile,) = judge(d, d.first, [(a, a)], higher_is_better=True)
    assert (futile.outcome, futile.reason, futile.seeds) == (Outcome.WITHIN_NOISE, Reason.FUTILE, d.first)
    (equivalent,) = judge(d, d.first, [(a, a)], higher_is_better=True, min_effect=0.01)
    assert (equivalent.outcome, equivalent.reason) == (Outcome.EQUIVALENT, Reason.EQUIVALENT)


def test_a_constant_nonzero_difference_is_never_futile():
    d = design(30)
    a = noise(d.first)
    (verdict,) = judge(d, d.first, [(a, [v + 1e-4 for v in a])], higher_is_better=True)
    assert verdict.reason is Reason.SIGNIFICANT


def test_a_small_noisy_difference_is_equivalent_only_when_its_interval_is_within_the_margin():
    d = design(30)
    n = d.looks[-1].seeds
    a = noise(n)
    b = [v + 0.0005 + e for v, e in zip(a, noise(n, 5))]
    b = [v - 0.9 for v in b]  # per-seed noise of sd 0.01 around a difference of 0.0005
    for margin, reason in ((0.05, Reason.EQUIVALENT), (0.001, Reason.MAX_SEEDS)):
        (verdict,) = judge(d, n, [(a, b)], higher_is_better=True, min_effect=margin)
        assert verdict.reason is reason


def test_an_uncertain_trend_stays_open_before_the_last_look_and_ends_at_max_seeds():
    d = design(30)
    n = d.looks[1].seeds
    a = noise(n)
    b = [v + 0.004 + e - 0.9 for v, e in zip(a, noise(n, 6))]
    (verdict,) = judge(d, n, [(a, b)], higher_is_better=True)
    assert (verdict.reason, verdict.settled, verdict.seeds) == (Reason.OPEN, False, n)
    m = d.max_seeds
    a = noise(m)
    b = [v + 0.003 + e - 0.9 for v, e in zip(a, noise(m, 6))]
    (verdict,) = judge(d, m, [(a, b)], higher_is_better=True)
    assert (verdict.outcome, verdict.reason, verdict.settled) == (Outcome.WITHIN_NOISE, Reason.MAX_SEEDS, True)


def test_a_settled_verdict_is_kept_unchanged_at_later_looks():
    d = design(30)
    settled = Verdict(Outcome.BETTER, Reason.SIGNIFICANT, seeds=7, p_adjusted=0.01, level=0.0169)
    a = noise(9)
    verdicts = judge(d, 9, [(a, a)], higher_is_better=True, before=[settled])
    assert verdicts == (settled,)


def test_judge_refuses_a_seed_count_that_is_not_a_look():
    d = design(30)
    with pytest.raises(ValueError, match=r"expected a look of the design \[7, 9, 12, 15, 19, 24, 30\], received 8"):
        judge(d, 8, [(noise(8), noise(8, 2))], higher_is_better=True)


def test_judge_refuses_samples_that_do_not_match_the_design():
    d = design(30)
    with pytest.raises(ValueError, match="expected at most 7 values"):
        judge(d, 7, [(noise(8), noise(8))], higher_is_better=True)
    with pytest.raises(ValueError, match="expected paired samples of one length"):
        judge(d, 7, [(noise(7), noise(6))], higher_is_better=True)
    with pytest.raises(ValueError, match="expected 1 contrasts"):
        judge(d, 7, [(noise(7), noise(7)), (noise(7), noise(7))], higher_is_better=True)
    with pytest.raises(ValueError, match="non-negative min_effect"):
        judge(d, 7, [(noise(7), noise(7))], higher_is_better=True, min_effect=-1)


def test_an_unpaired_design_judges_with_the_unpaired_permutation_test():
    d = design(20, paired=False)
    a, b = noise(d.first), noise(d.first, 2)
    (verdict,) = judge(d, d.first, [(a, b)], higher_is_better=True)
    assert verdict.p_adjusted == compare_samples(a, b, paired=False, higher_is_better=True).p_value


def test_a_study_draws_seeds_look_by_look_until_every_verdict_is_settled():
    d = design(30, 2)
    drawn: list[int] = []
    rng = np.random.default_rng(3)
    a = rng.normal(0, 1, 30)
    b = [a + 3 + rng.normal(0, 1, 30), a + rng.normal(0, 0.3, 30)]

    def draw(n: int) -> list[tuple[list[float], list[float]]]:
        drawn.append(n)
        return [(a[:n].tolist(), row[:n].tolist()) for row in b]

    verdicts, seeds = run_sequential(d, draw, higher_is_better=True, min_effect=1.0)
    assert all(v.settled for v in verdicts)
    assert seeds == drawn[-1] == max(v.seeds for v in verdicts)
    assert drawn == [look.seeds for look in d.looks[: len(drawn)]]
    assert verdicts[0].outcome is Outcome.BETTER


def test_over_2000_null_studies_the_false_positive_rate_stays_within_alpha():
    result = simulate(design(30), effect=0.0, sd=1.0, studies=2000)
    assert result.rejection_rate <= ALPHA  # measured 0.032
    assert sum(count for _, count in result.stops) == 2000
    several = simulate(design(20, 3), effect=0.0, sd=1.0, studies=1000, seed=1)
    assert several.rejection_rate <= ALPHA


def test_an_effect_of_one_sd_is_found_in_most_studies_with_fewer_seeds_than_the_max():
    result = simulate(design(30), effect=1.0, sd=1.0, studies=1000)
    assert result.rejection_rate > 0.85  # measured 0.9545 over 2000 studies
    assert result.mean_seeds < 20  # measured 13.0


def test_the_futility_threshold_is_ten_percent_conditional_power():
    assert FUTILITY == 0.10
    assert sequential._conditional_power(0.0, 0.0, 0.5, 2.0) == 0.0
    assert sequential._conditional_power(0.1, 0.0, 0.5, 2.0) == 1.0
    z, t, critical = 1.5, 0.4, 2.2
    by_hand = 1 - norm.cdf((critical - z * math.sqrt(t) - z / math.sqrt(t) * (1 - t)) / math.sqrt(1 - t))
    assert sequential._conditional_power(-z, 1.0, t, critical) == pytest.approx(by_hand)


def test_a_look_missing_a_failed_run_rejects_at_its_cost_instead_of_its_level():
    d = design(30)
    cost = d.looks[2].spent - d.looks[1].spent
    assert cost < d.looks[2].level
    a = noise(11)
    (verdict,) = judge(d, 12, [(a, [v + 0.05 for v in a])], higher_is_better=True)  # 11 of 12 seeds: p = 2 / 2**11
    assert (verdict.reason, verdict.level, verdict.p_adjusted) == (Reason.SIGNIFICANT, cost, 2 / 2**11)
    a = noise(6)
    (verdict,) = judge(d, 7, [(a, [v + 0.05 for v in a])], higher_is_better=True)  # p = 2 / 64 is above 2 / 128
    assert (verdict.reason, verdict.level) == (Reason.OPEN, d.looks[0].spent)


def test_an_unpaired_look_tests_the_values_each_variant_has():
    d = design(20, paired=False)
    a, b = noise(d.first), noise(d.first - 1, 2)
    (verdict,) = judge(d, d.first, [(a, b)], higher_is_better=True)
    assert verdict.p_adjusted == compare_samples(a, b, paired=False, higher_is_better=True).p_value


def test_a_contrast_with_a_single_value_stays_open_until_the_last_look():
    d = design(30)
    (verdict,) = judge(d, 7, [([0.9], [0.9])], higher_is_better=True, min_effect=0.1)
    assert (verdict.reason, verdict.p_adjusted) == (Reason.OPEN, 1.0)
    (verdict,) = judge(d, 30, [([0.9], [0.9])], higher_is_better=True, min_effect=0.1)
    assert verdict.reason is Reason.MAX_SEEDS

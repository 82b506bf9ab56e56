"""Ranking the configurations of a tuning over common seeds, against NumPy and SciPy called directly."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats

from reprokit.study.ranking import BEST_DRAWS, RELIABLE, TOP, TOP_DRAWS, Ranking, rank
from reprokit.study.stats import RANDOM_SEED, RESAMPLES, summarize

SEEDS = [11, 12, 13, 14, 15, 16, 17, 18]
LABELS = ["lr=0.1", "lr=0.03", "lr=0.01", "lr=0.003"]
SHARED = [0.0, 0.01, -0.02, 0.015, -0.005, 0.02, -0.01, 0.005]  # what a seed does to every configuration
JITTER = [0.002, -0.003, 0.001, 0.004, -0.001, -0.004, 0.003, 0.0]
# accuracies: every seed ranks the configurations alike, lr=0.003 first (gaps of 0.03 against jitter below 0.01)
CLEAR = [[0.80 + 0.03 * i + SHARED[j] + JITTER[(i + j) % 8] for j in range(8)] for i in range(4)]
# five configurations that do not differ: twelve seeds of noise (a draw in which no configuration got lucky)
NOISE = np.random.default_rng(4).normal(0.9, 0.01, (5, 12)).tolist()
NOISE_LABELS = [f"config {i}" for i in range(5)]


def ranked(values: list[list[float]]) -> Ranking:
    """Ranks accuracies over seeds 0, 1, … of configurations c0, c1, …"""
    return rank(values, list(range(len(values[0]))), [f"c{i}" for i in range(len(values))], higher_is_better=True)


# a clear winner


def test_a_configuration_best_under_every_seed_has_probability_one_of_being_best() -> None:
    r = rank(CLEAR, SEEDS, LABELS, higher_is_better=True)
    assert r.best == 3
    assert r.order == (3, 2, 1, 0)
    assert [c.p_best for c in r.configs] == [0.0, 0.0, 0.0, 1.0]
    assert r.seed_winners == (3,) * 8
    assert [c.seed_wins for c in r.configs] == [0, 0, 0, 8]
    assert r.winner_share == 1.0
    assert r.one_seed_pick == 3


def test_seeds_that_rank_the_configurations_alike_have_a_concordance_of_one() -> None:
    r = rank(CLEAR, SEEDS, LABELS, higher_is_better=True)
    assert r.kendall_w == pytest.approx(1.0)
    assert r.friedman_p == stats.friedmanchisquare(*CLEAR).pvalue
    assert r.friedman_p is not None and r.friedman_p < 1e-4


def test_a_clear_ranking_needs_only_two_seeds_to_keep_its_top_order() -> None:
    r = rank(CLEAR, SEEDS, LABELS, higher_is_better=True)
    assert r.seeds_for_top == 2
    assert r.top_share == 1.0


def test_only_the_best_is_tied_with_the_best_when_every_seed_agrees() -> None:
    r = rank(CLEAR, SEEDS, LABELS, higher_is_better=True)
    assert r.tie_test_possible  # 3 contrasts × 2 / 2**8 < 0.05
    assert [c.tied for c in r.configs] == [False, False, False, True]


def test_each_configuration_has_the_summary_of_its_values() -> None:
    r = rank(CLEAR, SEEDS, LABELS, higher_is_better=True)
    for config, values, label in zip(r.configs, CLEAR, LABELS):
        s = summarize(values)
        assert (config.label, config.n, config.mean, config.ci_low, config.ci_high) == (
            label,
            8,
            s.mean,
            s.ci_low,
            s.ci_high,
        )
    assert (r.seeds, r.dropped, r.higher_is_better) == (tuple(SEEDS), (), True)


# pure noise


def test_configurations_that_do_not_differ_share_the_probability_of_being_best() -> None:
    r = rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True)
    p_best = [c.p_best for c in r.configs]
    assert sum(p_best) == pytest.approx(1.0)
    assert max(p_best) < 0.8
    assert sum(p > 0.05 for p in p_best) >= 3
    assert r.winner_share < 0.5


def test_seeds_of_noise_hardly_agree_on_a_ranking() -> None:
    r = rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True)
    assert r.kendall_w is not None and r.kendall_w < 0.2
    assert r.friedman_p is not None and r.friedman_p > 0.05
    assert r.seeds_for_top is None  # not even 12 seeds rank the top 3 of noise
    assert r.top_share < RELIABLE


def test_every_configuration_of_noise_is_tied_with_the_best() -> None:
    r = rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True)
    assert r.tie_test_possible
    assert all(c.tied for c in r.configs)


def test_kendalls_w_is_the_friedman_statistic_over_n_times_k_minus_one() -> None:
    r = rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True)
    result = stats.friedmanchisquare(*NOISE)
    assert r.friedman_p == result.pvalue
    assert r.kendall_w == pytest.approx(result.statistic / (12 * 4))
    ranks = stats.rankdata(np.array(NOISE), axis=0)  # each seed ranks the five configurations
    spread = np.sum((ranks.sum(axis=1) - 12 * 3) ** 2)
    assert r.kendall_w == pytest.approx(12 * spread / (12**2 * (5**3 - 5)))  # no ties: the textbook W


def test_the_probability_of_being_best_resamples_the_same_seeds_for_every_configuration() -> None:
    values = np.array(NOISE)[:3, :6]
    index = np.random.default_rng(RANDOM_SEED).integers(0, 6, size=(BEST_DRAWS, 6))
    means = values[:, index].mean(axis=-1)
    expected = np.bincount(means.argmax(axis=0), minlength=3) / BEST_DRAWS  # no ties in continuous data
    r = ranked(values.tolist())
    assert [c.p_best for c in r.configs] == pytest.approx(expected.tolist())
    assert BEST_DRAWS == RESAMPLES
    assert TOP_DRAWS >= 1000


# direction, failed runs, ties


def test_with_lower_is_better_the_lowest_loss_wins_and_every_figure_mirrors_the_negated_metric() -> None:
    losses = [[1.0 - v for v in row] for row in NOISE]
    low = rank(losses, list(range(12)), NOISE_LABELS, higher_is_better=False)
    high = rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True)
    assert low.best == int(np.argmin(np.mean(losses, axis=1)))
    assert low.higher_is_better is False
    for name in ("order", "seed_winners", "winner_share", "one_seed_pick", "seeds_for_top", "top_share"):
        assert getattr(low, name) == getattr(high, name), name
    assert low.kendall_w == pytest.approx(high.kendall_w)
    # bootstrap means within float32's resolution are ties: 1 - v puts another few draws on that grid
    assert [c.p_best for c in low.configs] == pytest.approx([c.p_best for c in high.configs], abs=1e-3)
    assert [c.tied for c in low.configs] == [c.tied for c in high.configs]
    clear = rank([[-v for v in row] for row in CLEAR], SEEDS, LABELS, higher_is_better=False)
    assert (clear.best, clear.configs[3].p_best, clear.configs[3].mean) == (3, 1.0, -np.mean(CLEAR[3]))


def test_seeds_where_some_configuration_failed_are_left_out_of_every_figure() -> None:
    values = [row[:] for row in CLEAR]
    values[1][2] = math.nan
    values[3][5] = math.inf
    r = rank(values, SEEDS, LABELS, higher_is_better=True)
    kept = [0, 1, 3, 4, 6, 7]
    expected = rank([[row[j] for j in kept] for row in CLEAR], [SEEDS[j] for j in kept], LABELS, higher_is_better=True)
    assert (r.seeds, r.dropped) == ((11, 12, 14, 15, 17, 18), (13, 16))
    assert r.configs[0].n == 6
    assert r == dataclasses.replace(expected, dropped=(13, 16))


def test_the_one_seed_pick_is_the_first_seed_used() -> None:
    values = [row[:] for row in CLEAR]
    values[0][0] = math.nan
    assert rank(values, SEEDS, LABELS, higher_is_better=True).one_seed_pick == 3


def test_tuning_with_one_seed_can_pick_another_configuration_than_the_mean() -> None:
    values = [row[:] for row in CLEAR]
    values[0][0] = 0.99  # lr=0.1 got lucky with the first seed
    r = rank(values, SEEDS, LABELS, higher_is_better=True)
    assert r.best == 3
    assert r.one_seed_pick == 0
    assert r.seed_winners[0] == 0
    assert r.winner_share == 7 / 8
    assert r.configs[0].seed_wins == 1


def test_equal_configurations_split_the_probability_of_being_best_and_the_first_listed_leads() -> None:
    values = [CLEAR[2], CLEAR[3], CLEAR[3]]  # the last two are the same runs
    r = ranked(values)
    assert r.order == (1, 2, 0)
    assert [c.p_best for c in r.configs] == [0.0, 0.5, 0.5]
    assert r.seed_winners == (1,) * 8  # ties under a seed go to the first listed
    assert [c.tied for c in r.configs] == [False, True, True]
    assert r.seeds_for_top == 2  # the equal pair keeps its order in every draw


def test_equal_means_are_ordered_as_listed() -> None:
    r = ranked([[1.0, 3.0, 2.0, 2.0], [3.0, 1.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    assert r.configs[0].mean == r.configs[1].mean
    assert r.order == (0, 1, 2)


def test_seeds_that_tie_every_configuration_have_no_concordance() -> None:
    r = ranked([[0.9, 0.8, 0.7], [0.9, 0.8, 0.7], [0.9, 0.8, 0.7]])
    assert (r.kendall_w, r.friedman_p) == (None, None)
    assert [c.p_best for c in r.configs] == pytest.approx([1 / 3] * 3)


# two configurations, few seeds


def test_two_configurations_have_kendalls_w_from_their_ranks_and_no_friedman_test() -> None:
    a = [0.90, 0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.97]
    b = [0.91, 0.92, 0.93, 0.94, 0.95, 0.96, 0.95, 0.96]  # better under the first six seeds, worse under two
    r = ranked([a, b])
    assert r.friedman_p is None
    assert r.kendall_w == pytest.approx(((6 - 2) / 8) ** 2)  # k = 2: W = ((wins − losses) / n)²
    assert r.seed_winners == (1, 1, 1, 1, 1, 1, 0, 0)
    assert r.tie_test_possible  # 2 / 2**8 < 0.05
    assert min(TOP, 2) == 2
    assert 0 < r.top_share <= 1


def test_two_configurations_tying_on_some_seeds_have_the_tie_corrected_w() -> None:
    r = ranked([[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 1.0, 0.0]])  # better, better, tied, worse
    assert r.kendall_w == pytest.approx(12 * 0.5 / (16 * 6 - 4 * 6))  # S = 2 × 0.5², Σ(t³ − t) = 6


def test_too_few_seeds_for_the_permutation_test_tie_every_configuration() -> None:
    r = rank([row[:6] for row in CLEAR], SEEDS[:6], LABELS, higher_is_better=True)
    assert not r.tie_test_possible  # 3 contrasts × 2 / 2**6 ≥ 0.05
    assert all(c.tied for c in r.configs)
    assert r.configs[3].p_best == 1.0
    two = ranked([CLEAR[0][:6], CLEAR[3][:6]])
    assert two.tie_test_possible  # 1 contrast × 2 / 2**6 < 0.05
    assert [c.tied for c in two.configs] == [False, True]


def test_two_seeds_are_enough_to_rank() -> None:
    r = ranked([[0.9, 0.8], [0.7, 0.95], [0.1, 0.2]])
    assert r.order == (0, 1, 2)
    assert r.seeds_for_top is None  # seed 2 alone reverses the top two: a quarter of the draws
    assert r.top_share == pytest.approx(0.75, abs=0.03)


# the same numbers, the same figures


def test_two_rankings_of_the_same_numbers_are_equal() -> None:
    assert rank(NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True) == rank(
        NOISE, list(range(12)), NOISE_LABELS, higher_is_better=True
    )


# refused input


@pytest.mark.parametrize(
    ("values", "seeds", "labels", "match"),
    [
        ([], [], [], "non-empty"),
        ([[], []], [], ["a", "b"], "non-empty"),
        ([[0.9, 0.8], [0.7]], [1, 2], ["a", "b"], "one length"),
        ([[0.9, 0.8]], [1, 2], ["a"], "at least 2 configurations"),
        ([[0.9, 0.8], [0.7, 0.6]], [1], ["a", "b"], "one seed per column"),
        ([[0.9, 0.8], [0.7, 0.6]], [1, 2], ["a"], "one label per configuration"),
        ([[0.9, math.nan, 0.7], [0.7, 0.6, math.nan]], [1, 2, 3], ["a", "b"], "at least 2 seeds"),
        ([[0.9], [0.7]], [1], ["a", "b"], "at least 2 seeds"),
    ],
)
def test_a_matrix_that_cannot_be_ranked_is_refused(
    values: list[list[float]], seeds: list[int], labels: list[str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        rank(values, seeds, labels, higher_is_better=True)


def test_a_seed_under_which_two_configurations_tie_counts_as_a_win_for_both_and_picks_the_first_listed() -> None:
    values = [[0.9, 0.8, 0.9, 0.7], [0.9, 0.9, 0.8, 0.9]]
    r = rank(values, [1, 2, 3, 4], ["a", "b"], higher_is_better=True)
    assert [c.seed_wins for c in r.configs] == [2, 3]  # seed 1 is a tie: a win for both
    assert r.best == 1 and r.winner_share == 3 / 4
    assert r.seed_winners[0] == 0 and r.one_seed_pick == 0  # a tuner keeping the first best picks "a"


def test_means_equal_but_for_float32_rounding_are_a_tie_that_the_configuration_winning_more_seeds_leads() -> None:
    # accuracies on 450 test samples, as float32: both configurations got 3450 right over the 8 seeds, but
    # "more" wins 7 seeds (and ties 5 of them), "fewer" 6
    fewer = [434, 426, 436, 430, 434, 427, 435, 428]
    more = [434, 427, 434, 431, 434, 427, 435, 428]
    as_metrics = [[float(np.float32(k / 450)) for k in row] for row in (fewer, more)]
    assert np.mean(as_metrics[0]) != np.mean(as_metrics[1])  # their means differ in the last bits
    for rows, labels in ((as_metrics, ["fewer", "more"]), (as_metrics[::-1], ["more", "fewer"])):
        ranked = rank(rows, list(range(8)), labels, higher_is_better=True)
        assert labels[ranked.best] == "more" and sorted(c.seed_wins for c in ranked.configs) == [6, 7]

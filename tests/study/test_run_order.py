"""The order a study starts its runs in, and which import it prepares ahead (pure logic, no run)."""

from reprokit.study.running import _interleaved, _next_seed


def test_runs_start_seed_by_seed_across_variants_and_repeats_come_last():
    per_variant = [[(0, False), (1, False), (0, True)], [(0, False), (1, False)]]
    assert _interleaved(per_variant) == [(0, 0, False), (1, 0, False), (0, 1, False), (1, 1, False), (0, 0, True)]


def test_each_run_prepares_the_import_of_the_next_seeds_first_run_and_the_last_seed_prepares_none():
    todo = [(0, 0, False), (1, 0, False), (2, 0, False), (0, 1, False), (1, 1, False), (0, 0, True)]
    assert [_next_seed(todo, i) for i in range(len(todo))] == [
        (0, 1, False),
        (0, 1, False),
        (0, 1, False),
        (0, 0, True),  # the repeat of seed 0 forks from seed 0's import again
        (0, 0, True),
        None,
    ]

"""What a script's own hyperparameter search chose across the seeds of a study, on recorded trials (no training)."""

from __future__ import annotations

from reprokit.run.trace import SearchTrial
from reprokit.study.searches import search_records, search_spreads
from reprokit.study.store import RunResult, SearchRecord


def trial(number: int, units: int, score: float | None, status: str = "COMPLETED", name: str = "digits"):
    return SearchTrial("keras-tuner", name, str(number), {"units": repr(units)}, score, status, maximize=True)


def run(seed: int, best: str | None, digest: str = "d", repeat: bool = False, error: str | None = None):
    record = SearchRecord("keras-tuner", "digits", 2, best, digest)
    return RunResult(seed, repeat, error=error, searches=(record,))


def test_a_run_keeps_each_searchs_best_hyperparameters_and_a_fingerprint_of_every_trial():
    trials = [trial(0, 8, 0.5), trial(1, 32, 0.9), trial(0, 16, 0.7, name="other"), trial(2, 16, 0.8)]
    digits, other = search_records(trials)
    assert (digits.label, digits.trials, digits.best) == ("keras-tuner search digits", 3, "units=32")
    assert (other.name, other.trials, other.best) == ("other", 1, "units=16")
    (again,) = search_records(trials[:2] + trials[3:])
    assert again.digest == digits.digest  # another search's trials do not enter this one's fingerprint
    (changed,) = search_records([trial(0, 8, 0.5), trial(1, 32, 0.9000001), trial(2, 16, 0.8)])
    assert changed.digest != digits.digest and changed.best == digits.best  # one score's last bits differ


def test_a_search_with_no_completed_trial_chooses_nothing():
    (record,) = search_records([trial(0, 8, None, status="FAILED")])
    assert record.best is None and record.trials == 1


def test_a_search_that_chooses_the_same_under_every_seed_is_stable():
    (spread,) = search_spreads([run(1, "units=32"), run(2, "units=32"), run(1, "units=8", repeat=True)])
    assert spread.stable and spread.seeds == 2  # the repeat of a seed is not another seed
    assert spread.sentence() == (
        "The keras-tuner search digits chose the same hyperparameters under all 2 seeds: units=32."
    )


def test_the_most_frequent_choice_comes_first_with_its_seeds_and_failed_runs_are_left_out():
    runs = [run(1, "units=8"), run(2, "units=32"), run(3, "units=32"), run(4, "units=16"), run(5, None, error="x")]
    (spread,) = search_spreads(runs)
    assert [(c.best, c.seeds) for c in spread.choices] == [("units=32", (2, 3)), ("units=8", (1,)), ("units=16", (4,))]
    assert not spread.stable and spread.top_share == 0.5
    assert spread.sentence().startswith(
        "The seed changes what the keras-tuner search digits chooses: 3 different best hyperparameters across 4 "
        "seeds; the most frequent, units=32, under 2 of them (50%)."
    )


def test_a_choice_that_changes_under_every_seed_says_so_and_one_seed_cannot_tell():
    (spread,) = search_spreads([run(1, "units=8"), run(2, "units=32")])
    assert "other best hyperparameters under each of the 2 seeds (seed 1: units=8)" in spread.sentence()
    (alone,) = search_spreads([run(1, "units=8")])
    assert "one seed: run more" in alone.sentence()


def test_a_stored_run_keeps_its_searches():
    stored = run(7, "units=32", digest="abc")
    assert RunResult.from_dict(stored.to_dict()) == stored
    assert RunResult.from_dict({k: v for k, v in stored.to_dict().items() if k != "searches"}).searches == ()

"""The script's own hyperparameter search, compared between two runs (pure: recorded trials, no training).

The ``search_trial`` lines below are what the run processes of the search
examples sent (``examples/search/``); the other trials are made up from them.
"""

import dataclasses
import json
import math

import pytest

from helpers import recorded_report
from reprokit.checking.runs import PAIRS
from reprokit.checking.search import SearchResult, best_trial, compare_search, search_pair, search_result
from reprokit.core.controls import Controls
from reprokit.core.vocabulary import Pair, Source
from reprokit.protocol import SearchTrialEvent, parse_event
from reprokit.report.checkrich import render_report
from reprokit.report.ci import markdown, plain_summary
from reprokit.run.trace import RunSpec, RunTrace, SearchTrial, TraceBuilder

# keras-tuner's RandomSearch on digits (keras_tuner_search.py, seed 1234): 2 trials, one epoch each
KERAS_TUNER_LINES = (
    '{"type": "search_trial", "library": "keras-tuner", "search": "digits", "trial": "0", '
    '"params": {"units": "8", "learning_rate": "0.0022584063478787337"}, "score": 0.6711111068725586, '
    '"status": "COMPLETED", "maximize": true}',
    '{"type": "search_trial", "library": "keras-tuner", "search": "digits", "trial": "1", '
    '"params": {"units": "32", "learning_rate": "0.015789362541705442"}, "score": 0.9222221970558167, '
    '"status": "COMPLETED", "maximize": true}',
)
# Optuna without a sampler seed (optuna_search.py --unseeded): the first trial of two controlled runs
OPTUNA_UNSEEDED_LINES = (
    '{"type": "search_trial", "library": "optuna", "search": "digits", "trial": "0", '
    '"params": {"units": "32", "learning_rate": "0.062499837073262794"}, "score": 0.7866666913032532, '
    '"status": "COMPLETE", "maximize": true}',
    '{"type": "search_trial", "library": "optuna", "search": "digits", "trial": "0", '
    '"params": {"units": "16", "learning_rate": "0.022833591347678903"}, "score": 0.7177777886390686, '
    '"status": "COMPLETE", "maximize": true}',
)


def recorded(*lines: str) -> list[SearchTrial]:
    trials = []
    for line in lines:
        event = parse_event(line)
        assert isinstance(event, SearchTrialEvent), line
        trials.append(SearchTrial.of(event))
    return trials


KT = recorded(*KERAS_TUNER_LINES)


def trial(number: int, units: int, lr: float, score: float | None, status: str = "COMPLETED", **kw) -> SearchTrial:
    params = {"units": repr(units), "learning_rate": repr(lr)}
    return SearchTrial("keras-tuner", "digits", str(number), params, score, status, kw.pop("maximize", True), **kw)


def run(name: str, trials, seed: int = 1234, **kw) -> RunTrace:
    spec = RunSpec(name, name.split("-", maxsplit=1)[0], Controls(seed, True))
    return RunTrace(spec, (), (), (), {}, "script", 1.0, searches=tuple(trials), **kw)


def controlled(a, b, **kw):
    return search_pair(Pair.CONTROLLED, run("controlled-1", a, **kw), run("controlled-2", b, **kw))


def seeded(a, b, **kw):
    return search_pair(Pair.SEED, run("controlled-1", a, **kw), run("seed-1", b, 1235, **kw))


def test_two_runs_with_the_same_trials_and_best_are_a_reproducible_search():
    pair = controlled(KT, KT)
    (search,) = pair.searches
    assert (search.library, search.name, search.trials) == ("keras-tuner", "digits", (2, 2))
    assert search.identical is True and search.same_best is True and search.first_difference is None
    assert search.best[0] == KT[1]  # val_accuracy 0.922 beats 0.671
    assert pair.summary == (
        "The keras-tuner search is reproducible: the same 2 trials and the same best hyperparameters "
        "(units=32, learning_rate=0.015789362541705442) in runs controlled-1 and controlled-2."
    )


def test_a_trial_with_other_hyperparameters_makes_the_search_not_reproducible_and_names_both():
    a, b = recorded(OPTUNA_UNSEEDED_LINES[0]), recorded(OPTUNA_UNSEEDED_LINES[1])
    pair = controlled(a, b)
    (search,) = pair.searches
    assert search.identical is False and search.first_difference == 1
    assert search.differing == (a[0], b[0])
    assert search.same_best is False
    assert pair.summary == (
        "The Optuna search is not reproducible: trial 1 differs: units=32, learning_rate=0.062499837073262794 "
        "(score 0.786667) in controlled-1 vs units=16, learning_rate=0.022833591347678903 (score 0.717778) in "
        "controlled-2. The best hyperparameters differ: units=32, learning_rate=0.062499837073262794 vs "
        "units=16, learning_rate=0.022833591347678903."
    )


def test_the_same_hyperparameters_with_another_score_are_a_difference_too():
    later = dataclasses.replace(KT[1], score=0.9222222)
    pair = controlled(KT, [KT[0], later])
    assert pair.identical is False and pair.searches[0].first_difference == 2
    assert pair.same_best is True  # the same hyperparameters still win
    assert "trial 2 had the same hyperparameters (units=32, learning_rate=0.015789362541705442) but scored " in (
        pair.summary
    )
    assert "The best hyperparameters are the same all the same" in pair.summary


def test_scores_that_differ_beyond_six_digits_are_shown_in_full():
    later = dataclasses.replace(KT[1], score=KT[1].score + 1e-12)
    summary = controlled(KT, [KT[0], later]).summary
    assert f"scored {KT[1].score!r} in controlled-1 vs {later.score!r} in controlled-2" in summary


def test_a_run_that_finished_more_trials_differs_at_the_first_trial_the_other_lacks():
    pair = controlled(KT, KT[:1])
    (search,) = pair.searches
    assert search.identical is False and search.first_difference == 2 and search.trials == (2, 1)
    assert search.differing == (KT[1], None)
    assert "trial 2 ran in controlled-1 only: units=32, learning_rate=0.015789362541705442 (score 0.922222); " in (
        pair.summary
    )
    assert "controlled-2 finished 1 trial." in pair.summary


@pytest.mark.parametrize("stopped", ["stopped_early", "stopped_at_max_steps"])
def test_runs_stopped_before_their_scripts_ended_never_claim_a_reproducible_search(stopped):
    pair = controlled(KT[:1], KT, **{stopped: True})
    (search,) = pair.searches
    assert search.identical is None and search.complete is False
    assert search.best == (None, None) and search.same_best is None
    assert SearchResult(pair).reproducible is None
    assert "is reproducible" not in pair.summary
    assert pair.summary.startswith(
        "The keras-tuner search was not judged: its first trial is the same in runs controlled-1 and controlled-2, "
        "but the runs ended before it did."
    )
    assert "no best trial is judged" in pair.summary


def test_runs_stopped_early_still_report_the_difference_they_saw():
    a, b = recorded(OPTUNA_UNSEEDED_LINES[0]), recorded(OPTUNA_UNSEEDED_LINES[1])
    pair = controlled(a, b, stopped_early=True)
    assert pair.identical is False and pair.same_best is None
    assert pair.summary.endswith(
        "The runs stopped early once their difference was proven (--full trains them to the end): the trial each "
        "was training then ended early, and no best trial is judged."
    )


def test_the_best_trial_follows_the_direction_and_takes_the_first_of_equals():
    trials = [trial(0, 8, 0.1, 0.5), trial(1, 16, 0.1, 0.25), trial(2, 32, 0.1, 0.25)]
    assert best_trial(trials) == trials[0]
    lowest = [dataclasses.replace(t, maximize=False) for t in trials]
    assert best_trial(lowest) == lowest[1]  # 0.25 twice: the first


def test_failed_pruned_and_unscored_trials_are_never_the_best():
    trials = [
        trial(0, 8, 0.1, 0.99, "FAILED"),
        trial(1, 8, 0.1, 0.98, "PRUNED"),
        trial(2, 8, 0.1, math.nan),
        trial(3, 8, 0.1, None, "COMPLETE"),
        trial(4, 16, 0.1, 0.5, "COMPLETE"),
    ]
    assert best_trial(trials) == trials[4]
    assert best_trial(trials[:4]) is None
    assert best_trial([trial(0, 8, 0.1, 0.5, maximize=None)]) is None  # no direction: no best


def test_a_nan_score_equals_itself_between_runs():
    nan = [trial(0, 8, 0.1, math.nan)]
    assert compare_search(nan, [trial(0, 8, 0.1, math.nan)]).identical is True


def test_a_search_with_several_objectives_compares_their_values_and_has_no_single_best():
    def both(values):
        return SearchTrial("optuna", "study", "0", {"x": "0.5"}, None, "COMPLETE", None, values)

    assert compare_search([both((0.5, 1.0))], [both((0.5, 1.0))]).identical is True
    differs = compare_search([both((0.5, 1.0))], [both((0.5, 2.0))])
    assert differs.identical is False and differs.best == (None, None) and differs.same_best is None
    summary = search_pair(Pair.CONTROLLED, run("controlled-1", [both((0.5, 1.0))]), run("c-2", [both((0.5, 2))]))
    assert "but ended COMPLETE with values 0.5, 1 in controlled-1 vs COMPLETE with values 0.5, 2 in c-2" in (
        summary.summary
    )


def test_another_seed_that_chooses_other_hyperparameters_is_reported_with_both():
    other = [trial(0, 16, 0.004, 0.9), trial(1, 8, 0.05, 0.8)]
    pair = seeded(KT, other)
    assert pair.same_best is False
    assert pair.summary == (
        "The seed changes the chosen hyperparameters of the keras-tuner search: units=32, "
        "learning_rate=0.015789362541705442 under seed 1234 vs units=16, learning_rate=0.004 under seed 1235."
    )


def test_another_seed_that_chooses_the_same_hyperparameters_says_so():
    assert seeded(KT, KT).summary == (
        "The same best hyperparameters under seeds 1234 and 1235 for the keras-tuner search: units=32, "
        "learning_rate=0.015789362541705442, from the same 2 trials."
    )
    rescored = [dataclasses.replace(t, score=t.score + 0.01) for t in KT]
    assert seeded(KT, rescored).summary.endswith("though the trials differ from trial 1 on.")


def test_another_seed_is_not_judged_on_runs_stopped_early():
    pair = seeded(KT, [trial(0, 16, 0.004, 0.9)], stopped_early=True)
    assert pair.same_best is None
    assert pair.summary.startswith(
        "Whether the seed changes the chosen hyperparameters of the keras-tuner search was not judged."
    )


def test_each_search_is_compared_on_its_own_and_named_when_there_are_several():
    study = [SearchTrial("optuna", "study", "0", {"x": "1"}, 1.0, "COMPLETE", False)]
    pair = controlled([KT[0], study[0], KT[1]], [*KT, dataclasses.replace(study[0], params={"x": "2"})])
    assert [(s.library, s.name, s.identical) for s in pair.searches] == [
        ("keras-tuner", "digits", True),
        ("optuna", "study", False),
    ]
    assert pair.identical is False
    assert pair.summary.startswith("The keras-tuner search 'digits' is reproducible")
    assert "The Optuna search 'study' is not reproducible: trial 1 differs: x=1 (score 1) in controlled-1" in (
        pair.summary
    )


def test_a_search_seen_in_one_run_only_is_not_reproducible():
    pair = controlled(KT, [])
    assert pair.identical is False
    assert "trial 1 ran in controlled-1 only" in pair.summary and "controlled-2 finished 0 trials" in pair.summary


def test_a_check_of_a_script_without_a_search_has_none_and_the_json_says_null():
    traces = {name: run(name, []) for name in ("controlled-1", "controlled-2", "seed-1")}
    assert search_result(traces, PAIRS) is None
    assert json.loads(recorded_report("seed").to_json())["search"] is None


def test_the_controlled_and_seed_pairs_are_found_among_a_checks_runs():
    traces = {"controlled-1": run("controlled-1", KT), "controlled-2": run("controlled-2", KT)}
    traces["seed-1"] = run("seed-1", [trial(0, 16, 0.004, 0.9)], 1235)
    result = search_result(traces, PAIRS)
    assert result is not None and result.reproducible is True and result.words == "reproducible"
    assert (result.controlled.pair, result.seed.pair) == (Pair.CONTROLLED, Pair.SEED)
    quick = search_result({k: v for k, v in traces.items() if k != "seed-1"}, PAIRS)
    assert quick is not None and quick.seed is None


def test_the_search_trial_events_of_a_run_rebuild_into_its_trace():
    builder = TraceBuilder(RunSpec("controlled-1", "controlled", Controls(1234, True)))
    for line in KERAS_TUNER_LINES:
        builder.add(parse_event(line))
    trace = builder.build(1.0, None)
    assert trace.searches == tuple(KT) and not trace.stopped
    assert KT[0].params == {"units": "8", "learning_rate": "0.0022584063478787337"}
    assert KT[0].key == ("keras-tuner", "digits")


def searched_report(a, b, seed=None, **kw):
    pairs = {"controlled-1": run("controlled-1", a, **kw), "controlled-2": run("controlled-2", b, **kw)}
    if seed is not None:
        pairs["seed-1"] = run("seed-1", seed, 1235, **kw)
    return dataclasses.replace(recorded_report("seed"), search=search_result(pairs, PAIRS))


def test_the_json_report_has_the_search_of_each_pair():
    doc = json.loads(searched_report(KT, KT, [trial(0, 16, 0.004, 0.9)]).to_json())
    search = doc["search"]
    assert search["reproducible"] is True
    controlled_, seed = search["pairs"]
    assert set(controlled_) == {"name", "runs", "seeds", "identical", "same_best", "summary", "searches"}
    assert (controlled_["name"], controlled_["runs"], controlled_["seeds"]) == (
        "controlled",
        ["controlled-1", "controlled-2"],
        [1234, 1234],
    )
    assert controlled_["identical"] is True and controlled_["same_best"] is True
    (kt,) = controlled_["searches"]
    best = {
        "trial": "1",
        "params": {"units": "32", "learning_rate": "0.015789362541705442"},
        "score": 0.9222221970558167,
        "status": "COMPLETED",
        "values": [],
    }
    assert kt == {
        "library": "keras-tuner",
        "name": "digits",
        "trials": [2, 2],
        "identical": True,
        "first_differing_trial": None,
        "differing": None,
        "best": [best, best],
        "same_best": True,
        "complete": True,
    }
    assert (seed["name"], seed["seeds"], seed["same_best"]) == ("seed", [1234, 1235], False)
    assert seed["summary"].startswith("The seed changes the chosen hyperparameters")


def test_a_differing_search_names_both_trials_in_the_json():
    a, b = recorded(OPTUNA_UNSEEDED_LINES[0]), recorded(OPTUNA_UNSEEDED_LINES[1])
    doc = json.loads(searched_report(a, b, stopped_early=True).to_json())["search"]
    assert doc["reproducible"] is False
    (search,) = doc["pairs"][0]["searches"]
    assert search["first_differing_trial"] == 1 and search["complete"] is False
    assert [t["params"]["units"] for t in search["differing"]] == ["32", "16"]
    assert search["best"] == [None, None]


def test_the_terminal_and_markdown_reports_show_the_search():
    report = searched_report(KT, KT, [trial(0, 16, 0.004, 0.9)])
    text = " ".join(plain_summary(report, width=200).split())
    assert "Hyperparameter search" in text and "✔ THE SEARCH IS REPRODUCIBLE" in text
    assert "controlled pair (same seed 1234): The keras-tuner search is reproducible: the same 2 trials" in text
    assert "seed pair (seeds 1234 and 1235): The seed changes the chosen hyperparameters" in text
    assert "controlled-1 1234 2 units=32, learning_rate=0.015789362541705442 0.922222" in text
    assert "seed-1 1235 1 units=16, learning_rate=0.004 0.9" in text
    md = markdown(report, frozenset({Source.UNCONTROLLED}))
    assert "**Hyperparameter search**: ✅ reproducible" in md
    assert "- controlled pair (same seed 1234): The keras-tuner search is reproducible: the same 2 trials" in md
    a, b = recorded(OPTUNA_UNSEEDED_LINES[0]), recorded(OPTUNA_UNSEEDED_LINES[1])
    failing = searched_report(a, b, stopped_early=True)
    assert "**Hyperparameter search**: ❌ not reproducible" in markdown(failing, frozenset({Source.UNCONTROLLED}))
    assert "✘ THE SEARCH IS NOT REPRODUCIBLE" in plain_summary(failing, width=200)


def test_a_report_without_a_search_shows_no_search_panel():
    report = recorded_report("seed")
    assert report.search is None
    assert "Hyperparameter search" not in plain_summary(report)
    assert "Hyperparameter search" not in markdown(report, frozenset({Source.UNCONTROLLED}))
    assert list(render_report(report))  # renders as before

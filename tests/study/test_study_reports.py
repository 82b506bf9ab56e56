"""Seed-study reports built from recorded runs: metrics, what is left out and why, the repeat, every format."""

import json
import math
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
import scipy.stats

from helpers import words
from reprokit.core.controls import Controls
from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Outcome
from reprokit.report.ci import Format
from reprokit.report.ci import plain_summary as plain  # the same renderer as a check's
from reprokit.report.studyformats import render_study
from reprokit.run.runner import Target
from reprokit.run.trace import ModelResult, RunSpec, RunTrace
from reprokit.study.analysis import compare_report, seeds_report
from reprokit.study.metrics import direction, headline, resolve_mode, run_metrics
from reprokit.study.running import StudyOptions, VariantRuns
from reprokit.study.store import RunResult, SearchRecord, StudyStore

ACCURACY_A = [0.958, 0.951, 0.962, 0.949, 0.960, 0.955, 0.957, 0.953]
ACCURACY_B = [0.911, 0.902, 0.925, 0.899, 0.915, 0.908, 0.921, 0.905]


def trace(models=(), evaluations=None) -> RunTrace:
    return RunTrace(
        RunSpec("seed-1", "study", Controls(1, True)),
        (),
        tuple(models),
        (),
        {},
        "script",
        1.0,
        evaluations=evaluations or {},
    )


def test_a_runs_metrics_are_the_last_history_values_the_evaluate_results_and_a_loops_final_loss():
    fitted = ModelResult("sequential", 10, {}, None, {"loss": (0.9, 0.4), "val_accuracy": (0.5, 0.8)})
    assert run_metrics(trace([fitted], {"sequential": {"loss": 0.45, "accuracy": 0.875}})) == {
        "loss": 0.4,
        "val_accuracy": 0.8,
        "evaluate_loss": 0.45,
        "evaluate_accuracy": 0.875,
    }
    looped = ModelResult("sequential", 58, {}, None, {}, last_loss=0.25)
    assert run_metrics(trace([looped])) == {"loss": 0.25}


def test_metrics_of_several_models_are_prefixed_by_the_model_label():
    a = ModelResult("generator", 5, {}, None, {}, last_loss=1.5)
    b = ModelResult("critic", 5, {}, None, {"loss": (0.3,)})
    assert run_metrics(trace([a, b])) == {"generator/loss": 1.5, "critic/loss": 0.3}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_accuracy", "max"),
        ("evaluate_auc", "max"),
        ("loss", "min"),
        ("val_mean_squared_error", "min"),
        ("critic/loss", "min"),
        ("f1_score", "max"),
        ("throughput", None),
    ],
)
def test_which_way_a_metric_is_better_is_inferred_from_its_name(name, expected):
    assert direction(name) == expected


def test_the_headline_is_what_users_report_first_evaluate_then_validation_then_training():
    assert headline(["loss", "accuracy", "val_loss", "val_accuracy", "evaluate_loss", "evaluate_accuracy"]) == (
        "evaluate_accuracy"
    )
    assert headline(["loss", "accuracy", "val_loss", "val_accuracy"]) == "val_accuracy"
    assert headline(["loss", "accuracy"]) == "accuracy"
    assert headline(["loss"]) == "loss"


def test_an_unknown_metric_or_direction_is_a_usage_error_naming_what_exists():
    with pytest.raises(UsageError, match=r"\(loss, accuracy\), received 'val_acc'"):
        headline(["loss", "accuracy"], "val_acc")
    with pytest.raises(UsageError, match="--mode max or --mode min"):
        resolve_mode("throughput", None)
    assert resolve_mode("throughput", "max") == "max"


def result(seed: int, value: float, repeat: bool = False, weights: str | None = None, **extra) -> RunResult:
    return RunResult(
        seed,
        repeat,
        {"evaluate_accuracy": value, "loss": 1 - value},
        steps=40,
        wall_seconds=3.0,
        weights={"sequential": weights or f"w{seed}"},
        probes={"sequential": "probe"},
        **extra,
    )


def stored(tmp_path: Path, name: str, results: list[RunResult], label: str = "") -> VariantRuns:
    """A variant's runs kept in a real study folder, with predictions that agree on 3 of 4 rows between seeds."""
    store = StudyStore(tmp_path, name)
    for r in results:
        classes = [r.seed % 2, 1, 2, 3]
        store.save(r, {"predictions/sequential/0": np.eye(4, dtype="float32")[classes]} if r.ok else {})
    return VariantRuns(Target(Path("train.py"), ("--hidden", name)), tuple(results), store, label)


def test_a_seeds_report_summarizes_every_seed_and_says_the_seed_pins_the_script(tmp_path):
    runs = [result(1234 + i, v) for i, v in enumerate(ACCURACY_A)] + [result(1234, ACCURACY_A[0], repeat=True)]
    runs[-1] = RunResult(**{**runs[-1].__dict__, "weights": {"sequential": "w1234"}})
    report = seeds_report(stored(tmp_path, "a", runs), None, None, 1234, tmp_path, 30.0, 8)
    stats = report.variant.metric("evaluate_accuracy")
    assert report.metric == "evaluate_accuracy" and report.pinned is True
    assert stats.summary.n == 8 and math.isclose(stats.summary.mean, np.mean(ACCURACY_A))
    assert math.isclose(stats.summary.std, np.std(ACCURACY_A, ddof=1))
    assert stats.summary.ci_low < stats.summary.mean < stats.summary.ci_high
    assert report.variant.agreement.pairs == 28 and 0.7 < report.variant.agreement.mean < 0.9
    text = words(plain(report))
    assert "Seed 1234 run twice gave bit-identical results: the seed pins this script." in text
    replay = f"reprokit seeds train.py --seed 1234 --seeds 1 --no-repeat --fresh --study-dir {tmp_path} -- --hidden a"
    assert f"Replay a seed exactly: {replay}" in text
    assert "Runs kept in" in text and "any study of the same command line reuses them" in text


def test_a_repeat_that_differs_says_the_seed_does_not_pin_the_script_and_points_to_check(tmp_path):
    runs = [result(1234, 0.95), result(1235, 0.96), result(1234, 0.93, repeat=True, weights="other")]
    report = seeds_report(stored(tmp_path, "u", runs), None, None, 1234, tmp_path, 9.0, 2)
    assert report.pinned is False
    assert "final weights of sequential" in report.variant.repeat.differences
    text = words(plain(report))
    assert "THE SEED DOES NOT PIN THIS SCRIPT" in text and "reprokit check train.py" in text
    assert report.to_dict()["pinned"] is False
    junit = ET.fromstring(render_study(report, Format.JUNIT, frozenset()))
    assert junit.find(".//testcase[@name='seed pins the script']/failure") is not None


def test_a_nan_metric_and_a_failed_run_are_named_and_never_averaged_in(tmp_path):
    runs = [
        result(1234, 0.95),
        result(1235, float("nan")),
        RunResult(1236, error="ValueError: boom", details="Traceback …"),
        result(1237, 0.97),
    ]
    report = seeds_report(stored(tmp_path, "n", runs), "evaluate_accuracy", None, 1234, tmp_path, 9.0, 4)
    stats = report.variant.metric("evaluate_accuracy")
    assert stats.summary.n == 2 and math.isclose(stats.summary.mean, 0.96)
    assert dict(stats.left_out) == {1235: "nan", 1236: "the run failed"}
    doc = json.loads(render_study(report, Format.JSON, frozenset()))
    assert doc["kind"] == "seeds" and doc["failed_runs"] == 1
    assert doc["metrics"][0]["n"] == 2 and {"seed": 1236, "reason": "the run failed"} in doc["metrics"][0]["left_out"]
    assert [r["error"] for r in doc["runs"]] == [None, None, "ValueError: boom", None]
    assert "train.py --hidden n, seed 1236 failed: ValueError: boom" in words(plain(report))


def test_the_study_folder_gives_back_what_was_kept_nan_included(tmp_path):
    store = StudyStore(tmp_path, "k")
    kept = result(7, float("nan"))
    store.save(kept, {"predictions/sequential/0": np.ones((2, 3))})
    loaded = store.load()[(7, False)]
    assert loaded.cached and math.isnan(loaded.metrics["evaluate_accuracy"])
    assert loaded.weights == kept.weights and store.predictions(loaded)["predictions/sequential/0"].shape == (2, 3)
    store.clear()
    assert store.load() == {}


def compared(tmp_path, min_effect=None, third=None):
    a = stored(tmp_path, "a", [result(1234 + i, v) for i, v in enumerate(ACCURACY_A)], "A")
    b = stored(tmp_path, "b", [result(1234 + i, v) for i, v in enumerate(ACCURACY_B)], "B")
    variants = [a, b] + ([stored(tmp_path, "c", third, "C")] if third else [])
    return compare_report(variants, None, None, True, min_effect, 1234, tmp_path, 60.0, 8)


def test_a_variant_that_truly_differs_is_worse_with_the_statistics_scipy_gives(tmp_path):
    report = compared(tmp_path)
    (contrast,) = report.contrasts
    e = contrast.effect
    assert contrast.outcome is Outcome.WORSE and e.paired and e.p_exact
    assert math.isclose(e.difference, np.mean(ACCURACY_B) - np.mean(ACCURACY_A))
    assert e.ci_low < e.difference < e.ci_high < 0
    assert math.isclose(e.welch_p, scipy.stats.ttest_ind(ACCURACY_B, ACCURACY_A, equal_var=False).pvalue)
    assert e.prob_improvement == 0.0
    doc = report.to_dict()
    assert doc["comparisons"][0]["outcome"] == "worse" and doc["comparisons"][0]["baseline"] == "A"
    assert "B vs A: WORSE" in words(plain(report))


def test_the_same_values_under_another_name_are_equivalent_with_min_effect_and_noise_without(tmp_path):
    same = [result(1234 + i, v) for i, v in enumerate(ACCURACY_A)]
    with_delta = compared(tmp_path, min_effect=0.005, third=same)
    assert [c.outcome for c in with_delta.contrasts] == [Outcome.WORSE, Outcome.EQUIVALENT]
    without = compared(tmp_path / "2", third=same)
    assert without.contrasts[1].outcome is Outcome.WITHIN_NOISE
    assert "Not a finding of no difference" in words(plain(without))
    # Holm: the adjusted p of the worse variant is twice its own (2 contrasts)
    assert math.isclose(without.contrasts[0].p_adjusted, 2 * without.contrasts[0].effect.p_value)


def test_three_seeds_per_variant_report_numbers_and_make_no_claim(tmp_path):
    a = stored(tmp_path, "a", [result(1234 + i, v) for i, v in enumerate(ACCURACY_A[:3])], "A")
    b = stored(tmp_path, "b", [result(1234 + i, v) for i, v in enumerate(ACCURACY_B[:3])], "B")
    report = compare_report([a, b], None, None, True, None, 1234, tmp_path, 9.0, 3)
    assert report.contrasts[0].outcome is Outcome.TOO_FEW_SEEDS
    assert "TOO FEW SEEDS for any claim" in words(plain(report))
    assert report.contrasts[0].effect.difference < 0  # the numbers are still there


def test_a_paired_comparison_leaves_out_seeds_whose_pair_failed_and_says_so(tmp_path):
    third = [result(1234 + i, v) for i, v in enumerate(ACCURACY_A)]
    third[2] = RunResult(1236, error="the script failed")
    report = compared(tmp_path, third=third)
    contrast = report.contrasts[1]
    assert contrast.effect.n_a == contrast.effect.n_b == 7
    assert (1236, "the run failed") in contrast.left_out and (1236, "its pair has no value") in contrast.left_out


def test_markdown_and_junit_of_a_comparison_carry_the_outcome_and_fail_only_what_fail_if_names(tmp_path):
    report = compared(tmp_path)
    md = render_study(report, Format.MARKDOWN, frozenset())
    assert "| B | 8 |" in md and "| worse |" in md
    failing = ET.fromstring(render_study(report, Format.JUNIT, frozenset({Outcome.WORSE})))
    passing = ET.fromstring(render_study(report, Format.JUNIT, frozenset({Outcome.BETTER})))
    assert failing.find(".//failure") is not None and passing.find(".//failure") is None


def test_a_study_of_unpaired_variants_gives_each_its_own_seeds():
    options = StudyOptions(seeds=4, seed=10, paired=False)
    assert options.seeds_of(0) == [10, 11, 12, 13] and options.seeds_of(1) == [14, 15, 16, 17]
    assert StudyOptions(seeds=2, seed=10).seeds_of(3) == [10, 11]


def test_unpaired_variants_must_all_have_seeds_a_process_can_take_checked_before_any_run():
    import reprokit

    last = 2**32 - 1
    with pytest.raises(UsageError, match="expected seeds within"):
        reprokit.compare("a.py", "b.py", "c.py", seeds=10, seed=last - 25, paired=False)
    with pytest.raises(UsageError, match="script not found"):  # two blocks of 10 fit: the next check speaks
        reprokit.compare("a.py", "b.py", seeds=10, seed=last - 25, paired=False)


def test_a_search_whose_trials_differ_in_the_repeat_unpins_the_seed_and_the_spread_of_its_choice_is_reported(
    tmp_path,
):
    def searched(best: str, digest: str) -> dict:
        return {"searches": (SearchRecord("optuna", "study", 2, best, digest),)}

    runs = [
        result(1234, 0.95, **searched("units=32", "t1")),
        result(1235, 0.96, **searched("units=8", "t2")),
        result(1236, 0.94, **searched("units=32", "t3")),
        result(1234, 0.95, repeat=True, weights="w1234", **searched("units=32", "other trials")),
    ]
    report = seeds_report(stored(tmp_path, "s", runs), None, None, 1234, tmp_path, 9.0, 3)
    assert report.pinned is False and report.variant.repeat.differences == ("the trials of the optuna search study",)
    (spread,) = report.to_dict()["searches"]
    assert spread["stable"] is False and spread["choices"] == [
        {"best": "units=32", "seeds": [1234, 1236]},
        {"best": "units=8", "seeds": [1235]},
    ]
    assert "the most frequent, units=32, under 2 of them (67%)" in words(plain(report))

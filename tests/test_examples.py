"""Every example, checked for real once per session: each assertion is what the example's docstring promises."""

import json
from xml.etree import ElementTree as ET

import pytest

from helpers import EXAMPLES, words

pytestmark = pytest.mark.e2e


def line_of(example: str, text: str) -> int:
    """The first line of ``example`` that holds ``text``."""
    lines = (EXAMPLES / example).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def detected(report: dict) -> dict:
    return {name: source["detected"] for name, source in report["sources"].items()}


def pairs(report: dict) -> dict:
    return {c["name"]: c for c in report["comparisons"]}


def test_the_seed_question_is_answered_as_seed_driven_and_reproducible_once_seeded(checked_example):
    checked = checked_example("seed_question.py")
    assert checked.result.returncode == 0, checked.result.stderr
    doc = checked.report
    assert doc["verdict"] == "reproducible"
    assert detected(doc) == {
        "seed": True,
        "nondeterministic_ops": False,
        "uncontrolled": False,
        "written_files": False,
        "resume": None,
    }
    seed = pairs(doc)["seed"]
    assert seed["first_divergent_step"] == 0  # the initial weights already differ
    assert seed["first_divergence_stage"] == "initialization"
    assert "in the initial weights (before the first step)" in doc["sources"]["seed"]["evidence"]
    assert "The model was built from other random numbers" in doc["sources"]["seed"]["evidence"]
    assert seed["max_abs_diff"] > 0.01
    assert seed["prediction_agreement"] is not None and seed["prediction_agreement"] < 1
    controlled = pairs(doc)["controlled"]
    assert controlled["identical"] and controlled["steps"] == [900, 900]
    assert [r["name"] for r in doc["runs"]] == ["controlled-1", "controlled-2", "ops-1", "ops-2", "seed-1"]
    assert [(r["seed"], r["op_determinism"]) for r in doc["runs"]] == [
        (1234, True),
        (1234, True),
        (1234, False),
        (1234, False),
        (1235, True),
    ]
    (aligned,) = seed["alignment"]  # why the weights differ: the order of the hidden units, another solution
    assert aligned["model"] == "sequential"
    assert 0 < aligned["relative_l2_after"] < aligned["relative_l2_before"]
    assert 0 < aligned["explained_by_order"] < 1
    assert aligned["mean_cka"] > aligned["mean_cka_untrained"] + 0.1  # trained features, not the architecture's
    assert aligned["prediction_agreement"] == seed["prediction_agreement"]
    hidden, output = aligned["layers"]
    assert (hidden["units"], hidden["aligned"], hidden["matched"]["units"]) == (30, True, 30)
    assert not output["aligned"] and output["note"].startswith("output layer")
    assert "After matching hidden units, the weights differ by" in doc["sources"]["seed"]["evidence"]
    explanation = doc["explanation"]  # only the seed changes the result: nothing to replay
    assert (explanation["kind"], explanation["pair"]) == ("nothing to explain", "seed")
    assert "only the seed changes the result" in explanation["detail"]


def test_the_seed_question_report_explains_and_shows_the_one_line_fix(checked_example):
    text = checked_example("seed_question.py").text("rich")
    assert "REPRODUCIBLE UNDER CONTROL — your own runs differ: the seed" in text  # both facts, in one line
    assert "come from the seed" in text
    assert "keras.utils.set_random_seed(1234)" in text
    assert "initial weights" in text
    why = words(text[text.index("Why are the weights different?") :])
    assert "the seed (1234 vs 1235)" in why and "order of hidden units" in why and "other solutions" in why
    assert words(text[text.rindex("Next:") :]).startswith(f"Next: reprokit seeds {EXAMPLES / 'seed_question.py'} (")
    assert "\x1b[" not in text  # stdout is not a terminal: no escape codes,
    assert [line for line in text.splitlines() if line != line.rstrip()] == []  # and no padding


def test_the_ci_formats_of_one_check_agree_with_its_verdict(checked_example):
    checked = checked_example("seed_question.py")
    suite = ET.fromstring(checked.text("junit")).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "0", "0")
    verdict = next(p for p in suite.iter("property") if p.get("name") == "verdict")
    assert verdict.get("value") == "reproducible"
    markdown = checked.text("markdown")
    assert markdown.startswith(f"### ✅ reprokit check `{EXAMPLES / 'seed_question.py'}`: reproducible")
    assert "| seed-driven | ⚠️ detected |" in markdown and "| uncontrolled | ✅ none |" in markdown
    assert f"The HTML report, with plots: `{checked.html}`" in markdown  # written by the same command


def test_nondeterministic_ops_in_a_tf_data_pipeline_are_named_with_the_line_that_gives_up_order(checked_example):
    example = "nondeterministic_pipeline.py"
    checked = checked_example(example)
    assert checked.result.returncode == 0, checked.result.stderr
    doc = checked.report
    assert doc["verdict"] == "reproducible"
    assert detected(doc) == {
        "seed": True,
        "nondeterministic_ops": True,
        "uncontrolled": False,
        "written_files": False,
        "resume": None,
    }
    ops = pairs(doc)["ops"]
    # The order of examples changes: the very first batch already differs, the examples are the same.
    assert (ops["first_divergent_step"], ops["first_divergence_stage"]) == (1, "input pipeline")
    assert ops["input_change"] == "order"
    assert pairs(doc)["controlled"]["identical"]
    line = line_of(example, ".interleave(load_shard")
    evidence = doc["sources"]["nondeterministic_ops"]["evidence"]
    assert f"nondeterministic_pipeline.py:{line}: interleave(deterministic=False)" in evidence
    explanation = doc["explanation"]
    assert (explanation["pair"], explanation["kind"]) == ("ops", "pipeline")
    assert explanation["pipeline"][0]["line"] == line
    assert "Dataset.interleave(..., num_parallel_calls=8, deterministic=False)" in explanation["detail"]
    assert "enable_op_determinism()" in checked.text("rich")


def test_unseeded_augmentation_is_uncontrolled_and_not_reproducible_with_exit_code_1(checked_example):
    example = "unseeded_augmentation.py"
    checked = checked_example(example)
    assert checked.result.returncode == 1, checked.result.stderr
    doc = checked.report
    assert doc["verdict"] == "not_reproducible"
    # seed-driven by time: another seed differs from the initial weights on, before the noise joins in at step 1
    assert detected(doc) == {
        "seed": True,
        "nondeterministic_ops": None,
        "uncontrolled": True,
        "written_files": False,
        "resume": None,
    }
    controlled = pairs(doc)["controlled"]
    assert (controlled["first_divergent_step"], controlled["first_divergence_stage"]) == (1, "input pipeline")
    assert controlled["input_change"] == "values"
    assert "default_rng(1234)" in doc["sources"]["uncontrolled"]["fix"]
    evidence = doc["sources"]["uncontrolled"]["evidence"]
    line = line_of(example, "rng = np.random.default_rng()")
    assert f"Likely cause: unseeded_augmentation.py:{line}: np.random.default_rng() without a seed" in evidence
    assert doc["explanation"]["kind"] == "pipeline" and "before any layer runs" in doc["explanation"]["detail"]
    assert 'failures="1"' in checked.text("junit")
    assert "| uncontrolled | ❌ detected |" in checked.text("markdown")


def test_a_hand_written_loop_is_tracked_step_by_step_and_seed_driven(checked_example):
    checked = checked_example("custom_loop.py")
    assert checked.result.returncode == 0, checked.result.stderr
    doc = checked.report
    assert doc["verdict"] == "reproducible"
    assert detected(doc) == {
        "seed": True,
        "nondeterministic_ops": False,
        "uncontrolled": False,
        "written_files": False,
        "resume": None,
    }
    assert pairs(doc)["controlled"]["steps"] == [58, 58]  # 29 batches x 2 epochs, hand-written loop
    assert pairs(doc)["seed"]["first_divergence_stage"] == "initialization"
    assert doc["explanation"]["kind"] == "nothing to explain"  # nothing differs under fixed seeds


def test_the_tuning_example_tells_a_real_change_from_seed_noise(tuning_study):
    pinned, done = tuning_study.seeds, tuning_study.compare
    assert pinned.returncode == 0, pinned.stderr
    assert json.loads(pinned.stdout)["pinned"] is True and json.loads(pinned.stdout)["metric"] == "evaluate_accuracy"
    cka = json.loads(pinned.stdout)["hidden_cka"]  # two seeds: one pair of hidden layers compared
    assert cka["pairs"] == 1 and 0 < cka["untrained"] < cka["mean"] <= 1
    assert done.returncode == 0, done.stderr
    compared = json.loads(done.stdout)
    outcomes = [c["outcome"] for c in compared["comparisons"]]
    assert outcomes == ["worse", "within_seed_noise"]
    # --seeds auto: both settled at the first look of a design of two comparisons (8 seeds), not at --max-seeds
    assert compared["sequential"]["looks"] == [8] and compared["seeds"] == 8
    assert [c["settled"]["reason"] for c in compared["comparisons"]] == ["significant", "futile"]
    assert all(len(v["seeds"]) == 8 for v in compared["variants"])
    assert (compared["runs_trained"], compared["runs_reused"]) == (0, 24)  # tune's runs: the comparison trained none

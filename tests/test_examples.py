"""Every example, checked for real: each assertion is what the example's docstring promises."""

import io

import pytest
from rich.console import Console

from helpers import EXAMPLES, reprokit
from reprokit import CheckOptions, Target, run_check

pytestmark = pytest.mark.e2e


def line_of(example: str, text: str) -> int:
    """The first line of ``example`` that holds ``text``."""
    lines = (EXAMPLES / example).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def detected(report: dict) -> dict:
    return {name: source["detected"] for name, source in report["sources"].items()}


@pytest.fixture(scope="module")
def seed_question():
    return run_check(CheckOptions(Target(EXAMPLES / "seed_question.py")))


def test_the_seed_question_is_answered_as_seed_driven_and_reproducible_once_seeded(seed_question):
    doc = seed_question.to_dict()
    assert doc["verdict"] == "reproducible"
    assert detected(doc) == {"seed": True, "nondeterministic_ops": False, "uncontrolled": False}
    seed = next(c for c in doc["comparisons"] if c["name"] == "seed")
    assert seed["first_divergent_step"] == 0  # the initial weights already differ
    assert seed["first_divergence_stage"] == "initialization"
    assert "in the initial weights (before the first step)" in doc["sources"]["seed"]["evidence"]
    assert "The model was built from other random numbers" in doc["sources"]["seed"]["evidence"]
    assert seed["max_abs_diff"] > 0.01
    assert seed["prediction_agreement"] is not None and seed["prediction_agreement"] < 1
    controlled = next(c for c in doc["comparisons"] if c["name"] == "controlled")
    assert controlled["identical"] and controlled["steps"] == [900, 900]
    assert [r["name"] for r in doc["runs"]] == ["controlled-1", "controlled-2", "ops-1", "ops-2", "seed-1"]
    assert [(r["seed"], r["op_determinism"]) for r in doc["runs"]] == [
        (1234, True),
        (1234, True),
        (1234, False),
        (1234, False),
        (1235, True),
    ]


def test_the_seed_question_report_explains_and_shows_the_one_line_fix(seed_question):
    out = io.StringIO()
    Console(file=out, width=80).print(seed_question)
    text = out.getvalue()
    assert "REPRODUCIBLE with every seed fixed" in text
    assert "come from the seed" in text
    assert "keras.utils.set_random_seed(1234)" in text
    assert "initial weights" in text


@pytest.mark.parametrize(
    ("example", "expected", "verdict", "exit_code"),
    [
        (
            "nondeterministic_pipeline.py",
            {"seed": True, "nondeterministic_ops": True, "uncontrolled": False},
            "reproducible",
            0,
        ),
        (
            "unseeded_augmentation.py",
            {"seed": None, "nondeterministic_ops": None, "uncontrolled": True},
            "not_reproducible",
            1,
        ),
        (
            "custom_loop.py",
            {"seed": True, "nondeterministic_ops": False, "uncontrolled": False},
            "reproducible",
            0,
        ),
    ],
)
def test_each_example_gets_the_verdict_its_docstring_promises(example, expected, verdict, exit_code):
    result = reprokit("check", EXAMPLES / example, "--explain", "--format", "json")
    assert result.returncode == exit_code, result.stderr
    doc = result.report
    assert detected(doc) == expected
    assert doc["verdict"] == verdict
    by_name = {c["name"]: c for c in doc["comparisons"]}
    if example == "nondeterministic_pipeline.py":
        ops = by_name["ops"]
        # The order of examples changes: the very first batch already differs, the examples are the same.
        assert (ops["first_divergent_step"], ops["first_divergence_stage"]) == (1, "input pipeline")
        assert ops["input_change"] == "order"
        assert by_name["controlled"]["identical"]
        line = line_of(example, ".interleave(load_shard")
        assert (
            f"nondeterministic_pipeline.py:{line}: interleave(deterministic=False)"
            in (doc["sources"]["nondeterministic_ops"]["evidence"])
        )
        explanation = doc["explanation"]
        assert (explanation["pair"], explanation["kind"]) == ("ops", "pipeline")
        assert explanation["pipeline"][0]["line"] == line
        assert "Dataset.interleave(..., num_parallel_calls=8, deterministic=False)" in explanation["detail"]
    if example == "unseeded_augmentation.py":
        controlled = by_name["controlled"]
        assert (controlled["first_divergent_step"], controlled["first_divergence_stage"]) == (1, "input pipeline")
        assert controlled["input_change"] == "values"
        assert "default_rng(1234)" in doc["sources"]["uncontrolled"]["fix"]
        evidence = doc["sources"]["uncontrolled"]["evidence"]
        line = line_of(example, "rng = np.random.default_rng()")
        assert f"Likely cause: unseeded_augmentation.py:{line}: np.random.default_rng() without a seed" in evidence
        assert doc["explanation"]["kind"] == "pipeline" and "before any layer runs" in doc["explanation"]["detail"]
    if example == "custom_loop.py":
        assert by_name["controlled"]["steps"] == [58, 58]  # 29 batches x 2 epochs, hand-written loop
        assert by_name["seed"]["first_divergence_stage"] == "initialization"
        assert doc["explanation"] is None  # nothing differs under fixed seeds: nothing to explain

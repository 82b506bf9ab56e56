"""Early exit never changes a verdict: the session's checks of the examples against full ones."""

import pytest

from helpers import EXAMPLES, reprokit
from reprokit import CheckOptions, RunSettings, Target, run_check

pytestmark = pytest.mark.e2e


def classification(doc: dict) -> dict:
    """Everything a check concludes, without the sizes that depend on how long runs trained."""
    return {
        "verdict": doc["verdict"],
        "sources": {name: source["detected"] for name, source in doc["sources"].items()},
        "pairs": {
            c["name"]: (
                c["identical"],
                c["first_divergent_step"],
                c["first_divergence_stage"],
                c["input_change"],
                c["first_divergent_variables"],
            )
            for c in doc["comparisons"]
        },
    }


@pytest.mark.parametrize(
    ("example", "stops"),
    # nondeterministic ops: the ops pair stops. Where every pair differs and every run stops (uncontrolled), the
    # classification is asserted by test_every_pair_that_proved_its_divergence_stops_long_before_the_end.
    [("nondeterministic_pipeline.py", {"ops-1", "ops-2"})],
)
def test_a_check_that_stops_early_reaches_the_same_classification_as_a_full_one(checked_example, example, stops):
    early = checked_example(example).report
    full = reprokit("check", EXAMPLES / example, "--full", "--format", "json").report
    assert classification(early) == classification(full)
    # Whether a run stops before its end depends on timing (these examples train
    # for ~1 s after a ~5 s start); which runs may stop does not.
    assert {r["name"] for r in early["runs"] if r["stopped_early"]} <= stops
    assert not any(r["stopped_early"] for r in full["runs"])


def test_a_seed_driven_check_trains_every_run_to_the_end(checked_example):
    # Only the seed pair differs, and it trains on for its effect size: nothing may stop.
    doc = checked_example("custom_loop.py").report
    assert not any(r["stopped_early"] for r in doc["runs"])
    assert {r["steps"] for r in doc["runs"]} == {58}


UNSEEDED_DATA = """
import keras
import numpy as np

rng = np.random.default_rng()  # unseeded: other data in every run
x = rng.random((4000, 8)).astype("float32")
y = (x.sum(axis=1) > 4).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(2)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
# 30000 steps (~15 s): none ends before its pairs settle, even while a busy parent reads their steps late
model.fit(x, y, batch_size=4, epochs=30, verbose=0)
"""


def test_every_pair_that_proved_its_divergence_stops_long_before_the_end(write_script):
    every_run_at_once = RunSettings(jobs=5)
    report = run_check(CheckOptions(Target(write_script(UNSEEDED_DATA)), settings=every_run_at_once))
    assert report.verdict == "not_reproducible"
    assert {f.source: f.detected for f in report.findings} == {
        "seed": True,  # by time: the initial weights differ with another seed, the data only from step 1
        "nondeterministic_ops": None,
        "uncontrolled": True,
        "written_files": False,
        "resume": None,
    }
    controlled = next(c for c in report.comparisons if c.name == "controlled")
    assert (controlled.first_divergent_step, controlled.divergence.input_change) == (1, "values")
    # Every pair differs from step 1 on and settles after the 32-step order window;
    # the runs linked by pairs then stop together, unless one of them already ended.
    stopped = [r for r in report.runs if r.stopped_early]
    assert len(stopped) >= 3, [(r.name, r.steps) for r in report.runs]
    assert all(r.steps < 6000 for r in stopped)  # of 30000
    assert any("Stopped early" in note for note in report.notes)

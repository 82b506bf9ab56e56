"""Early exit never changes a verdict: each class of example, checked with and without it."""

import pytest

from helpers import EXAMPLES
from reprokit import CheckOptions, Target, run_check

pytestmark = pytest.mark.e2e


def classification(report):
    """Everything a check concludes, without the sizes that depend on how long runs trained."""
    return {
        "verdict": report.verdict,
        "sources": {f.source: f.detected for f in report.findings},
        "pairs": {
            c.name: (
                c.identical,
                c.first_divergent_step,
                c.divergence.stage if c.divergence else None,
                c.divergence.input_change if c.divergence else None,
                c.first_divergent_variables,
            )
            for c in report.comparisons
        },
    }


@pytest.mark.parametrize(
    ("example", "stops"),
    [
        ("nondeterministic_pipeline.py", {"ops-1", "ops-2"}),  # nondeterministic ops: the ops pair stops
        ("unseeded_augmentation.py", {"controlled-1", "controlled-2", "ops-1", "ops-2", "seed-1"}),  # uncontrolled
        ("custom_loop.py", set()),  # seed-driven, a hand-written loop: only the seed pair differs, and trains on
    ],
)
def test_a_check_that_stops_early_reaches_the_same_classification_as_a_full_one(example, stops):
    target = Target(EXAMPLES / example)
    early = run_check(CheckOptions(target))
    full = run_check(CheckOptions(target, full=True))
    assert classification(early) == classification(full)
    assert {r.name for r in early.runs if r.stopped_early} <= stops
    assert not any(r.stopped_early for r in full.runs)
    if stops:
        stopped = [r for r in early.runs if r.stopped_early]
        assert stopped, "a pair that diverged should have stopped early"
        assert sum(r.steps for r in early.runs) < sum(r.steps for r in full.runs)

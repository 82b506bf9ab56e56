"""Attribution of differences to sources, on recorded comparisons."""

import dataclasses

import pytest

from helpers import recorded_comparison
from reprokit.checking.classify import classify, verdict
from reprokit.checking.comparison import Comparison, Divergence
from reprokit.core.vocabulary import Source, Status
from reprokit.run.trace import Pin


@pytest.fixture(scope="module")
def same():
    return recorded_comparison("controlled-1", "controlled-2")


@pytest.fixture(scope="module")
def different():
    return recorded_comparison("controlled-1", "seed-1")


def pairs(controlled: Comparison, ops: Comparison | None, seed: Comparison | None) -> list[Comparison]:
    found = [dataclasses.replace(controlled, name="controlled")]
    if ops is not None:
        found.append(dataclasses.replace(ops, name="ops"))
    if seed is not None:
        found.append(dataclasses.replace(seed, name="seed"))
    return found


def detected(findings):
    """What each pair's source concluded (files read back have tests of their own below)."""
    return {f.source: f.detected for f in findings if f.source not in (Source.WRITTEN_FILES, Source.RESUME)}


def test_only_the_seed_pair_differing_is_seed_driven(same, different):
    findings = classify(pairs(same, same, different), seed=7)
    assert detected(findings) == {"seed": True, "nondeterministic_ops": False, "uncontrolled": False}
    assert verdict(findings) == "reproducible"
    seed = findings[0]
    assert "seeds 7 and 8" in seed.evidence and "initial weights" in seed.evidence
    assert "keras.utils.set_random_seed(7)" in seed.fix


def test_the_ops_pair_differing_with_controlled_identical_is_nondeterministic_ops(same, different):
    findings = classify(pairs(same, different, same), seed=1)
    assert detected(findings) == {"seed": False, "nondeterministic_ops": True, "uncontrolled": False}
    assert "enable_op_determinism()" in findings[1].fix


def test_a_differing_controlled_pair_is_uncontrolled_and_masks_the_others(different):
    findings = classify(pairs(different, different, different), seed=1)
    assert detected(findings) == {"seed": None, "nondeterministic_ops": None, "uncontrolled": True}
    assert verdict(findings) == "not_reproducible"
    assert "Not separable" in findings[0].evidence and "Not separable" in findings[1].evidence
    assert "default_rng(1)" in findings[2].fix


def test_quick_mode_leaves_seed_and_ops_unchecked(same):
    findings = classify(pairs(same, None, None), seed=1)
    assert detected(findings) == {"seed": None, "nondeterministic_ops": None, "uncontrolled": False}
    assert all("Not checked" in f.evidence for f in findings[:2])


def test_a_script_that_pins_its_own_seed_is_named_when_the_seed_changes_nothing(same):
    pin = Pin("keras.utils.set_random_seed(0)", "seed", "/home/u/train.py", 12)
    findings = classify(pairs(same, same, same), seed=1, pins=[pin])
    assert findings[0].detected is False
    assert "train.py:12 keras.utils.set_random_seed(0)" in findings[0].evidence


def test_a_script_that_enables_determinism_itself_is_named(same):
    pin = Pin("tf.config.experimental.enable_op_determinism()", "determinism", "/x/train.py", 3)
    findings = classify(pairs(same, same, same), seed=1, pins=[pin])
    assert findings[1].detected is False
    assert "enables op determinism itself (train.py:3" in findings[1].evidence


def test_detected_sources_carry_an_explanation_and_undetected_ones_no_fix(same, different):
    for f in classify(pairs(same, different, different), seed=1):
        assert (f.fix is not None) == bool(f.detected)
        assert (f.explanation is not None) == bool(f.detected)


def differing_from(c: Comparison, step: int, model: str = "sequential") -> Comparison:
    """``c`` as if its runs first differed after ``step`` optimizer steps of ``model``."""
    divergence = Divergence(model, step, ("sequential/dense/kernel",), True, "values")
    return dataclasses.replace(c, identical=False, divergence=divergence)


def test_a_seed_pair_that_differs_before_the_controlled_pair_is_seed_driven_with_that_evidence(same, different):
    controlled = differing_from(same, 5)  # identical under one seed until step 5
    findings = classify(pairs(controlled, differing_from(same, 5), different), seed=7)
    assert detected(findings) == {"seed": True, "nondeterministic_ops": None, "uncontrolled": True}
    assert "stayed bit-identical until step 5 of sequential" in findings[0].evidence
    assert "keras.utils.set_random_seed(7)" in findings[0].fix
    assert verdict(findings) == "not_reproducible"


def test_an_ops_pair_that_differs_before_the_controlled_pair_is_nondeterministic_ops(same):
    controlled = differing_from(same, 9)
    findings = classify(pairs(controlled, differing_from(same, 2), differing_from(same, 9)), seed=1)
    assert detected(findings) == {"seed": None, "nondeterministic_ops": True, "uncontrolled": True}
    assert "With op determinism on, the same runs stayed bit-identical until step 9" in findings[1].evidence


def test_divergences_from_the_same_step_or_in_another_model_stay_not_separable(same, different):
    controlled = differing_from(same, 0)  # the initial weights differ under one seed: nothing is earlier
    assert detected(classify(pairs(controlled, different, different), seed=1))["seed"] is None
    in_another_model = differing_from(same, 0, model="discriminator")
    findings = classify(pairs(differing_from(same, 4), in_another_model, in_another_model), seed=1)
    assert detected(findings) == {"seed": None, "nondeterministic_ops": None, "uncontrolled": True}


def test_identical_default_ops_runs_with_a_known_race_are_not_observed_never_none(same):
    suspects = ("train.py:12: Dataset.map(..., num_parallel_calls=4, deterministic=False)",)
    findings = classify(pairs(same, same, same), seed=1, suspects=suspects, ops_runs=4)
    ops = findings[1]
    assert (ops.status, ops.detected, ops.runs) == (Status.NOT_OBSERVED, False, 4)
    assert ops.evidence.startswith("Not observed in 4 runs with the same seed and default ops")
    assert "train.py:12: Dataset.map(" in ops.evidence
    assert "enable_op_determinism()" in ops.fix
    without = classify(pairs(same, same, same), seed=1)[1]
    assert (without.status, without.runs) == (Status.NONE, 2)


def test_likely_causes_name_each_line_once_from_the_linter_and_the_runs():
    from reprokit.checking.confirm import likely_causes
    from reprokit.lint.engine import lint_source
    from reprokit.run.trace import PipelineCall

    ops = Source.NONDETERMINISTIC_OPS
    source = "import tensorflow as tf\nds = tf.data.Dataset.range(8).map(f, deterministic=False)\n"
    lint = lint_source(source, "/src/train.py")
    on_line_2 = PipelineCall("Dataset.map(..., deterministic=False)", "/src/train.py", 2)
    random_map = PipelineCall("Dataset.map(augment, num_parallel_calls=AUTOTUNE) draws ...", "/src/train.py", 9, True)
    found = likely_causes(ops, lint, [on_line_2, random_map])
    assert found == (f"train.py:2: {lint[0].message} (RK104)", f"train.py:9: {random_map.call}")
    assert likely_causes(Source.UNCONTROLLED, lint, [random_map]) == ()  # tf.data calls explain ops alone
    assert likely_causes(ops, [], []) == ()
    gpu_only = lint_source("import tensorflow as tf\nc = tf.math.bincount(x)\n", "/src/train.py")
    assert likely_causes(ops, gpu_only, []) == ()  # on CPU, a GPU-only hazard races nowhere
    assert likely_causes(ops, gpu_only, [], gpu=True)[0].startswith("train.py:2:")


def test_an_identical_sampled_pair_says_its_weights_were_seen_at_sampled_steps_only(same):
    every = dataclasses.replace(same, weight_steps=same.steps[0])
    sampled = dataclasses.replace(same, weight_steps=3)

    def uncontrolled(c: Comparison) -> str:
        return next(f.evidence for f in classify(pairs(c, c, c), seed=1) if f.source is Source.UNCONTROLLED)

    assert "every variable at every step" in uncontrolled(every)
    text = uncontrolled(sampled)
    assert "every variable at every step" not in text
    assert "every batch and loss at every step, every variable after 3 sampled steps and at the end" in text

"""Comparison logic on recorded runs of examples/seed_question.py (see tests/data/record.py)."""

import dataclasses
import math

import numpy as np

from helpers import recorded_arrays, recorded_trace
from reprokit.checking.comparison import abs_diff, compare_runs, first_divergence, short_name
from reprokit.run.trace import Point


def compare(a_name, b_name, *, a=None, b=None, arrays_b=None):
    a = a or recorded_trace(a_name)
    b = b or recorded_trace(b_name)
    return compare_runs("x", a, b, recorded_arrays(a_name), arrays_b or recorded_arrays(b_name))


def test_two_controlled_runs_are_identical_at_every_step():
    c = compare("controlled-1", "controlled-2")
    assert c.identical
    assert c.divergence is None
    assert c.max_abs_diff == 0.0
    assert c.relative_l2 == 0.0
    assert c.prediction_agreement == 1.0
    assert c.steps == (15, 15)
    assert c.final_losses[0] == c.final_losses[1] is not None


def test_runs_with_different_seeds_diverge_in_the_initial_kernels():
    c = compare("controlled-1", "seed-1")
    assert not c.identical
    assert c.first_divergent_step == 0
    assert c.divergence.model == "sequential"
    # Keras initializes biases to zeros whatever the seed: only kernels differ.
    assert set(c.first_divergent_variables) == {"sequential/dense/kernel", "sequential/dense_1/kernel"}
    assert c.max_abs_diff > 0.1
    assert 0 < c.relative_l2 < 2
    assert c.prediction_agreement is not None and 0 <= c.prediction_agreement < 1
    assert [v.variable for v in c.variables][:1] in (
        ["sequential/dense/kernel"],
        ["sequential/dense_1/kernel"],
    )


def test_a_change_at_one_step_is_found_at_that_step_with_its_variable():
    a = recorded_trace("controlled-1")
    points = list(a.points)
    k = 7
    changed = dict(points[k].weights, **{"sequential/dense_1/bias": "0" * 16})
    points[k] = dataclasses.replace(points[k], weights=changed, inputs=("other",))
    b = dataclasses.replace(a, points=tuple(points))
    d = first_divergence(a.points, b.points)
    assert (d.step, d.variables, d.inputs_differ) == (k, ("sequential/dense_1/bias",), True)


def test_a_run_with_fewer_steps_diverges_where_it_stopped():
    a = recorded_trace("controlled-1")
    b = dataclasses.replace(a, points=a.points[:10])
    assert first_divergence(a.points, b.points).step == 10
    assert first_divergence(b.points, a.points).step == 10


def test_inputs_are_unknown_when_a_step_did_not_observe_them():
    p = Point("m", 1, {"v": "a"}, (), None)
    q = Point("m", 1, {"v": "b"}, ("x",), None)
    assert first_divergence((p,), (q,)).inputs_differ is None


def test_identical_fingerprints_but_different_final_weights_are_not_identical():
    a = recorded_trace("controlled-1")
    model = a.models[0]
    other = dataclasses.replace(model, weights=dict(model.weights, **{"sequential/dense/bias": "f" * 16}))
    b = dataclasses.replace(a, models=(other,))
    c = compare("controlled-1", "controlled-2", a=a, b=b)
    assert not c.identical
    assert c.divergence.variables == ("sequential/dense/bias",)


def test_nan_equal_nan_and_nan_against_a_number_is_infinitely_different():
    a = np.array([np.nan, 1.0, np.inf], dtype=np.float32)
    b = np.array([np.nan, 1.5, np.inf], dtype=np.float32)
    assert abs_diff(a, b).tolist() == [0.0, 0.5, 0.0]
    assert math.isinf(abs_diff(np.array([np.nan]), np.array([0.0]))[0])


def test_prediction_agreement_needs_the_same_probe_in_both_runs():
    a = recorded_trace("controlled-1")
    model = dataclasses.replace(a.models[0], probe="another-probe")
    b = dataclasses.replace(recorded_trace("controlled-2"), models=(model,))
    assert compare("controlled-1", "controlled-2", a=a, b=b).prediction_agreement is None


def test_variable_names_lose_their_model_prefix_for_display():
    assert short_name("sequential", "sequential/dense/kernel") == "dense/kernel"
    assert short_name("gen#2", "gen/dense/kernel") == "dense/kernel"
    assert short_name("m", "other/kernel") == "other/kernel"


def points(model, steps):
    """Points from (inputs, input_rows, weights) per step, step 1 on; step 0 shared."""
    made = [Point(model, 0, {"w": "init"})]
    for k, (inputs, rows, weights) in enumerate(steps, start=1):
        made.append(Point(model, k, {"w": weights}, (inputs,), None, (rows,)))
    return tuple(made)


def test_a_divergence_in_the_initial_weights_is_the_initialization_stage():
    a = (Point("m", 0, {"w": "x"}),)
    b = (Point("m", 0, {"w": "y"}),)
    assert first_divergence(a, b).stage == "initialization"


def test_identical_inputs_with_different_weights_after_the_step_is_the_computation_stage():
    a = points("m", [("i1", "r1", "w1"), ("i2", "r2", "w2")])
    b = points("m", [("i1", "r1", "w1"), ("i2", "r2", "other")])
    d = first_divergence(a, b)
    assert (d.step, d.stage, d.input_change) == (2, "computation", None)


def test_batches_that_hold_the_same_examples_by_the_end_are_a_reordering():
    # Rows fingerprints are order-free sums: 1+2 == 2+1 (in hex, summed mod 2**64).
    one, two, three = "0" * 15 + "1", "0" * 15 + "2", "0" * 15 + "3"
    a = points("m", [("i1", one, "w1"), ("i2", two, "w2")])
    b = points("m", [("j1", two, "v1"), ("j2", one, "v2")])
    d = first_divergence(a, b)
    assert (d.step, d.stage, d.input_change) == (1, "input pipeline", "order")
    c = points("m", [("j1", two, "v1"), ("j2", three, "v2")])
    assert first_divergence(a, c).input_change == "values"

"""Runs that fingerprint their weights at sampled steps only: where their first divergence is known to lie.

Pure logic on the recorded runs of examples/seed_question.py (15 steps), thinned as a sampled run records them.
"""

import dataclasses

from helpers import recorded_arrays, recorded_trace
from reprokit.checking.comparison import compare_runs, first_divergence
from reprokit.checking.early import EarlyExit
from reprokit.checking.tracks import first_steps
from reprokit.core.snapshots import sampled_step


def sampled(points):
    """The points as a sampled run records them: weights only after steps 1, 2, 4, 8, … (and at step 0)."""
    last, kept = {}, []
    for p in points:
        if p.step == 0 or sampled_step(last.get(p.model, 0), p.step):
            last[p.model] = p.step
            kept.append(p)
        else:
            kept.append(dataclasses.replace(p, weights={}))
    return tuple(kept)


def changed_from(points, step, variable="sequential/dense_1/bias"):
    """Every point from ``step`` on has ``variable`` changed: a divergence at ``step``."""
    return tuple(
        dataclasses.replace(p, weights=dict(p.weights, **{variable: "0" * 16})) if p.step >= step and p.weights else p
        for p in points
    )


def test_the_sample_schedule_is_every_power_of_two_and_every_64th_step_or_the_first_past_one():
    taken, last = [], 0
    for step in range(1, 300):
        if sampled_step(last, step):
            taken.append(step)
            last = step
    assert taken == [1, 2, 4, 8, 16, 32, 64, 128, 192, 256]
    assert [s for s in range(3, 40, 3) if sampled_step(s - 3, s)] == [3, 6, 9, 18, 33]  # jumps of 3: first past one
    assert not sampled_step(5, 5) and not sampled_step(5, 6)


def test_a_divergence_between_two_samples_is_an_interval_whose_stage_is_unknown():
    a = sampled(recorded_trace("controlled-1").points)
    b = changed_from(a, 11)  # first seen at the sample after step 8: step 16 is past the end, so at none
    assert first_divergence(a, b) is None
    b = changed_from(sampled(recorded_trace("controlled-1").points), 6)
    d = first_divergence(a, b)
    assert (d.step, d.after, d.located, d.stage) == (8, 4, False, None)
    assert d.steps == "steps 5–8" and d.variables == ("sequential/dense_1/bias",)


def test_a_divergence_at_a_sample_right_after_an_equal_one_is_exact():
    a = sampled(recorded_trace("controlled-1").points)
    b = changed_from(a, 2)
    d = first_divergence(a, b)
    assert (d.step, d.after, d.steps) == (2, None, "step 2")


def test_runs_fingerprinted_at_every_step_keep_exact_steps_even_where_steps_jump():
    a = recorded_trace("controlled-1").points
    jumping = tuple(p for p in a if p.step in (0, 5, 10, 15))  # XLA: steps seen only after each call
    d = first_divergence(jumping, changed_from(jumping, 10))
    assert (d.step, d.after) == (10, None)


def test_final_weights_that_differ_after_the_last_sample_are_an_interval_up_to_the_end():
    trace = recorded_trace("controlled-1")
    a = dataclasses.replace(trace, points=sampled(trace.points))
    last = a.models[0]
    other = dataclasses.replace(last, weights=dict(last.weights, **{"sequential/dense/bias": "0" * 16}))
    b = dataclasses.replace(a, models=(other, *a.models[1:]))
    c = compare_runs("x", a, b, recorded_arrays("controlled-1"), recorded_arrays("controlled-1"))
    assert not c.identical
    assert (c.divergence.step, c.divergence.after) == (15, 8)  # the samples were 1, 2, 4, 8; the end is step 15


def test_tracks_and_early_exit_compare_only_the_steps_both_runs_fingerprinted():
    a = sampled(recorded_trace("controlled-1").points)
    b = changed_from(a, 6)
    assert first_steps(a, b) == {("sequential", "sequential/dense_1/bias"): 8}
    stops = {}
    watch = EarlyExit([("controlled", "controlled-1", "controlled-2")], lambda run, step: stops.update({run: step}))
    for pa, pb in zip(a, b):
        if pa.step > 7:
            break
        watch.add("controlled-1", pa)
        watch.add("controlled-2", pb)
    assert stops == {}  # steps 5-7 went unfingerprinted: nothing is proven before the sample at step 8
    watch.add("controlled-1", a[8])
    watch.add("controlled-2", b[8])
    assert set(stops) == {"controlled-1", "controlled-2"}

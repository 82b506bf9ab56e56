"""The pure parts of a run's recorder: step budget, model registry, step buffers (no TensorFlow)."""

from types import SimpleNamespace

import numpy as np
import pytest

from reprokit.worker.budget import StepBudget, StepBudgetSpent
from reprokit.worker.buffers import StepBuffers
from reprokit.worker.registry import ModelRegistry, OptimizerRecord, TrackedModel, variable_names


def variables(*paths):
    return [SimpleNamespace(path=p) for p in paths]


def model(name, weights):
    return SimpleNamespace(name=name, weights=weights)


def test_max_steps_ends_the_run_after_that_step_and_says_why():
    budget = StepBudget(max_steps=3)
    assert budget.count(2) == 2 and not budget.spent
    budget.count(1)
    assert budget.spent and budget.stopped_at_max_steps and not budget.stopped_early


def test_the_parents_stop_request_ends_the_run_early_unless_max_steps_ends_it_too():
    budget = StepBudget(max_steps=10)
    budget.request_stop(4)
    budget.count(3)
    assert not budget.spent
    budget.count(1)
    assert budget.spent and budget.stopped_early and not budget.stopped_at_max_steps
    both = StepBudget(max_steps=5)
    both.request_stop(5)
    both.count(5)
    assert both.stopped_at_max_steps and not both.stopped_early


def test_without_a_limit_the_budget_is_never_spent():
    budget = StepBudget()
    budget.count(10**6)
    budget.end_step(eager=True)
    assert not budget.spent and not budget.stopped_at_max_steps and not budget.stopped_early


def test_a_spent_budget_ends_fit_through_stop_training_and_raises_outside_fit():
    budget = StepBudget(max_steps=1)
    fitted = SimpleNamespace(stop_training=False)
    with budget.fitting(fitted):
        budget.count(1)
        budget.end_step(eager=True)  # inside fit: no exception
    assert fitted.stop_training
    with pytest.raises(StepBudgetSpent, match="after 1 optimizer steps"):
        budget.raise_if_spent()  # the next fit ends the run
    with pytest.raises(StepBudgetSpent):
        budget.end_step(eager=True)


def test_a_traced_step_cannot_raise_so_the_call_that_made_it_does():
    budget = StepBudget(max_steps=2)
    budget.count(2)
    budget.end_step(eager=False)  # inside a tf.py_function: must not raise
    budget.after_call(steps_before=2)  # a call that made no step does not end the run
    with pytest.raises(StepBudgetSpent):
        budget.after_call(steps_before=1)


def test_the_budget_passes_through_the_scripts_own_except_exception():
    assert not issubclass(StepBudgetSpent, Exception)


def test_models_get_unique_labels_in_order_of_first_sight():
    registry = ModelRegistry()
    first, second = model("dense", variables("a")), model("dense", variables("b"))
    assert registry.register(first).label == "dense"
    assert registry.register(second).label == "dense#2"
    assert registry.register(first) is registry.register(first)


def test_an_optimizer_trains_the_outermost_model_holding_its_variables():
    registry = ModelRegistry()
    inner_weights = variables("inner/kernel")
    inner = registry.register(model("inner", inner_weights))
    outer = registry.register(model("outer", [*inner_weights, *variables("head/kernel")]))
    reads = []
    record = registry.optimizer("sgd", inner_weights, lambda o: reads.append(o) or 7)
    assert record.tracked == (outer,) and inner not in record.tracked
    assert registry.optimizer("sgd", inner_weights, lambda o: 0) is record  # known: the count is not read again
    assert reads == ["sgd"]
    assert registry.trained() == [outer] and registry.has_optimizers()


def test_bare_variables_are_tracked_under_the_optimizers_name():
    registry = ModelRegistry()
    loose = variables("v")
    record = registry.optimizer(SimpleNamespace(name="SGD"), loose, lambda o: 0)
    (tracked,) = record.tracked
    assert tracked.label == "variables:SGD" and tracked.model is None and tracked.weights() == loose


def test_an_optimizer_record_counts_the_steps_since_it_last_looked():
    record = OptimizerRecord("adam", frozenset(), [], iterations=2)
    assert record.advance(5) == 3
    assert record.advance(5) == 0
    assert record.advance(4) == -1 and record.advance(6) == 1  # a step count that went back is not a step


def test_a_tracked_model_reports_its_initial_weights_once_and_keeps_its_first_probe():
    tracked = TrackedModel("m", model("m", variables("m/w", "m/w")))
    assert tracked.first_sight() and not tracked.first_sight()
    tracked.set_probe("batch 1")
    tracked.set_probe("batch 2")
    tracked.advance(3)
    assert tracked.probe == "batch 1" and tracked.step == 3
    assert tracked.names(tracked.weights()) == ["m/w", "m/w#2"] == variable_names(tracked.weights())


def test_a_step_keeps_the_first_16_batches_it_saw_and_the_next_step_starts_empty():
    buffers = StepBuffers()
    batches = [[np.full((4, 2), i, dtype="float32")] for i in range(20)]
    for arrays in batches:
        buffers.add_input(arrays)
    buffers.set_loss(0.25)
    inputs, rows, loss = buffers.take()
    assert len(inputs) == len(rows) == 16 and len(set(inputs)) == 16 and loss == 0.25
    assert buffers.take() == ((), (), None)


def test_traced_batches_belong_to_the_graph_they_were_traced_in_and_are_taken_once():
    buffers = StepBuffers()
    graph, other = object(), object()
    tracked = TrackedModel("m")
    buffers.add_traced_input(graph, tracked, ["x"], None)
    buffers.set_traced_loss(graph, "loss")
    assert buffers.take_traced(other).inputs == []
    traced = buffers.take_traced(graph)
    assert traced.inputs == [(tracked, ["x"], None)] and traced.loss == "loss"
    assert buffers.take_traced(graph).inputs == []  # taken once

"""What a run observes, kept by job and sent as protocol events (imports TensorFlow).

The hooks of :mod:`reprokit.worker.instrument` and :mod:`reprokit.worker.diagnose` report
to one :class:`Recorder`; the worker creates it and reads its results. It
hands each job to a part with a small interface of its own:

* :class:`~reprokit.worker.registry.ModelRegistry`: which models and optimizers
  train, under which labels;
* :class:`~reprokit.worker.buffers.StepBuffers`: what the current optimizer step
  saw (input batches, their rows, the loss), eagerly or while it is traced;
* :class:`~reprokit.worker.budget.StepBudget`: counts optimizer steps and ends the
  run at ``--max-steps`` or at the parent's stop request;
* :class:`~reprokit.worker.reporting.Emitter`: the ``init`` and ``step`` events (fingerprints of the
  weights) and every other event, sent to the parent, and the weights'
  :class:`~reprokit.core.snapshots.Snapshots` at steps 0, 1, 2, 4, 8, …;
* :func:`~reprokit.worker.reporting.final_results`: the summary of every trained model and the arrays
  to save (final weights, predictions on a probe batch, and for
  :mod:`reprokit.weights.matching` the model's structure and its hidden layers'
  activations on the probe) at the end.

A step is recorded when the optimizer's ``iterations`` moved: eagerly right
after ``apply`` (:meth:`Recorder.after_step`), in traced code by one
``tf.py_function`` per step (:meth:`Recorder.tap_step`), and for steps no
callback saw (XLA) after the outermost ``tf.function`` call
(:meth:`Recorder.after_function_call`).

A **light** recorder (seed studies) fingerprints only the final weights: steps are counted
from the optimizers' ``iterations`` at the end, ``fit`` is left as it is
(its history carries the losses), and a traced step outside ``fit`` passes
only its loss to Python, so a run costs what a plain training costs.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import ops

from reprokit.protocol import Event, ModelSummary
from reprokit.worker.budget import StepBudget
from reprokit.worker.buffers import MAX_INPUTS_PER_STEP, StepBuffers
from reprokit.worker.registry import ModelRegistry, OptimizerRecord, TrackedModel
from reprokit.worker.reporting import Emit, Emitter, final_results
from reprokit.worker.steplog import EVERY, Record, StepLog, decode, power_of_two
from reprokit.worker.tensors import flatten, in_xla, observe

PROBE_ROWS = 256
"""Rows of a model's first training batch kept to take its final predictions on."""

StepListener = Callable[[int], None]


class Recorder:
    """What the hooks report to: records models, steps, inputs and losses, and emits them as events.

    Args:
        emit: sends an event to the parent (called from any thread).
        max_steps: end the run after this many optimizer steps (None: no limit).
        light: observe only metrics, losses, final predictions and final
            fingerprints (a seed study): no per-step fingerprints, no ``init``
            or ``step`` events, no saved weights; ``max_steps`` is not honoured.
        alignment: also save the models' structure and hidden activations
            on the probe batch at the end (the seed pair's runs, a study's).
        flush_every: traced steps are read back at least this often (1:
            every step, for ``explain``'s replay; see :mod:`reprokit.worker.steplog`).
    """

    def __init__(
        self,
        emit: Emit,
        max_steps: int | None = None,
        light: bool = False,
        alignment: bool = False,
        flush_every: int = EVERY,
    ) -> None:
        self._light = light
        self._log = StepLog(flush_every, max_steps)
        self._states: list[OptimizerRecord] = []  # the optimizers stepped in the graph, by their number in records
        self._numbers: dict[int, int] = {}  # their numbers, by id
        self._alignment = alignment
        self._losses: dict[str, float] = {}  # light: the last loss of each model, by label
        self._last_loss: float | None = None
        self._events = Emitter(emit)
        self._models = ModelRegistry()
        self._buffers = StepBuffers()
        self._budget = StepBudget(max_steps)
        self._listeners: list[StepListener] = []
        self._graph_steps = 0
        self._xla = False
        self._finalizing = False
        self._local = threading.local()

    @property
    def xla_steps(self) -> bool:
        """Whether some steps were XLA-compiled: their inputs and losses were not observed."""
        return self._xla

    @property
    def budget(self) -> StepBudget:
        """The run's step count, and whether ``--max-steps`` or the parent's stop request ends it."""
        return self._budget

    def emit(self, event: Event) -> None:
        """Sends an event to the parent."""
        self._events.send(event)

    @property
    def finalizing(self) -> bool:
        """Whether the run is over and :meth:`finalize` runs (hooks then observe nothing)."""
        return self._finalizing

    @contextmanager
    def entered(self, name: str) -> Iterator[bool]:
        """Counts nesting of the block ``name`` per thread; yields whether this is the outermost."""
        depth = getattr(self._local, name, 0)
        setattr(self._local, name, depth + 1)
        try:
            yield depth == 0
        finally:
            setattr(self._local, name, depth)

    def on_step(self, listener: StepListener) -> None:
        """Calls ``listener(optimizer_steps)`` after every recorded optimizer step, before its budget check."""
        self._listeners.append(listener)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of all trained models together."""
        return sum(t.step for t in self._models.trained())

    # -- models, inputs and losses ----------------------------------------
    def register(self, model: Any) -> TrackedModel:
        """The record of a model the script called (made on first sight)."""
        return self._models.register(model)

    def observe_input(self, tracked: TrackedModel, inputs: Any) -> None:
        """Takes a training batch: now if eager, else with the step that follows in the same graph.

        A light recorder only keeps the model's first eager batch as its probe.
        """
        if self._light:
            flat = flatten(inputs) if tracked.probe is None and tf.executing_eagerly() else None
            if flat is not None and flat[1] is not None:
                tracked.set_probe(tf.nest.pack_sequence_as(flat[1], [np.asarray(t)[:PROBE_ROWS] for t in flat[0]]))
            return
        if tf.executing_eagerly():
            observe(inputs, functools.partial(self._seen_input, tracked))
            return
        flat = flatten(inputs)
        if flat is not None and not in_xla():
            self._buffers.add_traced_input(ops.get_default_graph(), tracked, *flat)

    def observe_loss(self, target: Any) -> None:
        """Takes the (scalar) loss a gradient is taken of: now if eager, else with the traced step."""
        if tf.executing_eagerly():
            loss = float(np.asarray(target))
            if self._light:
                self._last_loss = loss
            else:
                self._buffers.set_loss(loss)
        elif not in_xla():
            self._buffers.set_traced_loss(ops.get_default_graph(), target)

    def _seen_input(self, tracked: TrackedModel, arrays: list[np.ndarray], structure: Any) -> None:
        self._buffers.add_input(arrays)
        if tracked.probe is None and structure is not None:
            tracked.set_probe(tf.nest.pack_sequence_as(structure, [a[:PROBE_ROWS] for a in arrays]))

    # -- optimizer steps --------------------------------------------------
    def optimizer_state(self, optimizer: Any, variables: list[Any]) -> OptimizerRecord:
        """Returns (and on first sight records) what ``optimizer`` trains; reports new models' initial weights."""
        state = self._models.optimizer(optimizer, variables, _iterations_now)
        for tracked in state.tracked:
            if tracked.first_sight() and not self._light:
                with tf.init_scope():  # read the values before the first step runs
                    self._events.init(tracked)
        return state

    def after_step(self, state: OptimizerRecord) -> None:
        """After an eager ``apply``: records the steps ``state``'s optimizer made, reading its weights eagerly."""
        if self._light:
            self._count_light(state, int(state.optimizer.iterations.numpy()), self._last_loss)
            return
        self._record_steps(state, int(state.optimizer.iterations.numpy()), None)

    def tap_step(self, state: OptimizerRecord) -> None:
        """While tracing a step: records it in the graph (see :mod:`reprokit.worker.steplog`).

        Called right after the optimizer's update in the traced function. The
        step's record — the digest of every updated weight and of every batch
        and its rows, computed on the device, and the loss — is appended to
        the step log; a ``tf.py_function`` reads the log only when a flush is
        due (every 64 steps, at steps 1, 2, 4, 8, … with the weights' values
        for their snapshots and the batch for the probe, and at the end of
        a ``--max-steps`` budget). Skipped inside XLA, which cannot call
        Python: those steps are read after the call.
        """
        graph = ops.get_default_graph()
        traced = self._buffers.take_traced(graph)
        if in_xla():
            self._xla = True
            return
        if self._light:
            self._tap_loss(state, traced.loss)
            return
        number = self._numbers.setdefault(id(state), len(self._states))
        if number == len(self._states):
            self._states.append(state)
        inputs = traced.inputs[:MAX_INPUTS_PER_STEP]
        weights = [tf.convert_to_tensor(w) for t in state.tracked for w in t.weights()]
        iterations = tf.convert_to_tensor(state.optimizer.iterations)
        appended = self._log.append(number, iterations, weights, traced.loss, [ts for _, ts, _ in inputs])
        with tf.control_dependencies([appended]):
            due = self._log.due(iterations)
            tf.cond(due, lambda: self._flush_graph(state, iterations, weights, inputs), lambda: tf.constant(0))

    def _flush_graph(self, state: OptimizerRecord, iterations: Any, weights: list[Any], inputs: list[Any]) -> Any:
        """Graph code: reads the step log back (with the weights and batches at steps 1, 2, 4, …), then empties it."""
        buffer = tf.convert_to_tensor(self._log.buffer)
        batches = [t for _, ts, _ in inputs for t in ts]

        def with_values() -> Any:
            counts = [len(t.weights()) for t in state.tracked]
            flushed = functools.partial(self._flushed, state, counts, inputs)
            return tf.py_function(flushed, [buffer, *weights, *batches], Tout=tf.int32)

        def without() -> Any:
            return tf.py_function(functools.partial(self._flushed, state, None, inputs), [buffer], Tout=tf.int32)

        done = tf.cond(power_of_two(tf.cast(iterations, tf.int64)), with_values, without)
        with tf.control_dependencies([done]):
            cleared = self._log.clear()
        with tf.control_dependencies([cleared]):
            return tf.identity(done)

    def _flushed(self, state: OptimizerRecord, counts: list[int] | None, inputs: list[Any], *values: tf.Tensor) -> int:
        """The step log's values (and, with ``counts``, the last step's weights per model and batches) arrived."""
        records = decode(values[0].numpy())
        weights = None
        if counts is not None:
            arrays = [v.numpy() for v in values[1:]]
            weights, at = [], 0
            for n in counts:
                weights.append(arrays[at : at + n])
                at += n
            for tracked, tensors, packable in inputs:
                batch = arrays[at : at + len(tensors)]
                at += len(tensors)
                if tracked.probe is None and packable is not None:
                    tracked.set_probe(tf.nest.pack_sequence_as(packable, [a[:PROBE_ROWS] for a in batch]))
        self._replay(records, state, weights)
        return 0

    def _replay(
        self, records: list[Record], last: OptimizerRecord | None, weights: list[list[np.ndarray]] | None
    ) -> None:
        """Records the steps read from the step log, in order (``weights``: the values after the last one)."""
        for i, record in enumerate(records):
            state = self._states[record.state]
            for fingerprint_text, rows in record.inputs:
                self._buffers.add_digests(fingerprint_text, rows)
            if record.loss is not None:
                self._buffers.set_loss(record.loss)
            self._graph_steps += 1
            values = weights if i == len(records) - 1 and state is last else None
            self._record_steps(state, record.iterations, record.weights, values)

    def _tap_loss(self, state: OptimizerRecord, loss: Any) -> None:
        """Light: a traced step outside ``fit`` passes its loss to Python (``fit`` has its history)."""
        if loss is None or self._budget.fitting_now:
            return

        def loss_done(iterations: tf.Tensor, value: tf.Tensor) -> list[Any]:
            self._count_light(state, int(iterations.numpy()), float(value.numpy()))
            return []

        tf.py_function(loss_done, [tf.convert_to_tensor(state.optimizer.iterations), loss], Tout=[])

    def _count_light(self, state: OptimizerRecord, iterations: int, loss: float | None) -> None:
        delta = state.advance(iterations)
        for tracked in state.tracked:
            tracked.advance(max(delta, 0))
            if loss is not None:
                self._losses[tracked.label] = loss

    def step_counts(self) -> tuple[int, int]:
        """Steps recorded by traced callbacks, and optimizer steps: pass them to :meth:`after_function_call`."""
        return self._graph_steps, self._budget.steps

    def after_function_call(self, before: tuple[int, int]) -> None:
        """After an outermost ``tf.function`` call: steps no callback saw are read now (XLA).

        ``before`` is :meth:`step_counts` from before the call. A call that
        spent the step budget outside ``fit`` (a hand-written loop) unwinds
        the script with StepBudgetSpent: the run ends as if the script had
        returned.
        """
        if not self._models.has_optimizers() or self._finalizing or self._light:
            return
        graph_steps_before, steps_before = before
        if self._graph_steps == graph_steps_before:
            for state in self._models.optimizers():
                if id(state) not in self._numbers:  # a traced optimizer's steps wait in the step log
                    self.after_step(state)
        self._budget.after_call(steps_before)

    def _record_steps(
        self,
        state: OptimizerRecord,
        iterations: int,
        digests: Sequence[str] | None,
        values: list[list[np.ndarray]] | None = None,
    ) -> None:
        """Records the steps ``state``'s optimizer made up to ``iterations``.

        ``digests``: the traced step's weight digests, for all its models in
        order (None: an eager step, read now); ``values``: their values per
        model, when the log brought them (snapshot steps).
        """
        delta = state.advance(iterations)
        if delta <= 0:
            return
        seen = self._buffers.take()
        at = 0
        for i, tracked in enumerate(state.tracked):
            tracked.advance(delta)
            mine = None
            if digests is not None:
                count = len(tracked.weights())
                mine, at = digests[at : at + count], at + count
            self._events.step(tracked, mine, None if values is None else values[i], seen)
        steps = self._budget.count(delta)
        for listener in self._listeners:
            listener(steps)
        self._budget.end_step(eager=digests is None)  # in a graph callback, after_function_call raises

    # -- the end of the run -----------------------------------------------
    def finalize(self) -> tuple[tuple[ModelSummary, ...], dict[str, np.ndarray]]:
        """Ends observing; returns a summary per trained model and the arrays to save."""
        self._replay(self._log.read(), None, None)  # steps still in the step log
        self._finalizing = True
        if self._light:  # steps not seen one by one (fit, XLA) are counted now
            for state in self._models.optimizers():
                self._count_light(state, _iterations_now(state.optimizer), None)
        summaries, arrays = final_results(self._models.trained(), self._light, self._losses, self._alignment)
        return summaries, {**self._events.snapshots.arrays, **arrays}


def _iterations_now(optimizer: Any) -> int:
    with tf.init_scope():
        return int(optimizer.iterations.numpy())

"""What a run observes, kept by job and sent as protocol events (backend-free).

The hooks of :mod:`reprokit.worker.instrument` and of the run's backend
(:mod:`reprokit.worker.backends`) report to one :class:`Recorder`; the worker
creates it and reads its results. It hands each job to a part with a small
interface of its own:

* :class:`~reprokit.worker.registry.ModelRegistry`: which models and optimizers
  train, under which labels;
* :class:`~reprokit.worker.buffers.StepBuffers`: what the current optimizer step
  saw (input batches, their rows, the loss);
* :class:`~reprokit.worker.budget.StepBudget`: counts optimizer steps and ends the
  run at ``--max-steps`` or at the parent's stop request;
* :class:`~reprokit.worker.reporting.Emitter`: the ``init`` and ``step`` events (fingerprints of the
  weights) and every other event, sent to the parent, and the weights'
  :class:`~reprokit.core.snapshots.Snapshots` at steps 0, 1, 2, 4, 8, …;
* :func:`~reprokit.worker.reporting.final_results`: the summary of every trained model and the arrays
  to save (final weights, predictions on a probe batch, and for
  :mod:`reprokit.weights.matching` the model's structure and its hidden layers'
  activations on the probe) at the end.

A step is recorded when the optimizer's ``iterations`` moved: right after an
eager ``apply`` (:meth:`Recorder.after_step`), or when the backend's hook inside
compiled code hands over the step's values (:meth:`Recorder.record`: a
``tf.py_function`` on TensorFlow, a ``jax.debug.callback`` on JAX).

A **light** recorder (seed studies) fingerprints only the final weights: steps are counted
from the optimizers' ``iterations`` at the end, ``fit`` is left as it is
(its history carries the losses), and a compiled step outside ``fit`` passes
only its loss to Python, so a run costs what a plain training costs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

import numpy as np

from reprokit.protocol import Event, ModelSummary, PreemptedEvent
from reprokit.worker.budget import StepBudget
from reprokit.worker.buffers import StepBuffers
from reprokit.worker.registry import ModelRegistry, OptimizerRecord, TrackedModel
from reprokit.worker.reporting import Emit, Emitter, final_results

PROBE_ROWS = 256
"""Rows of a model's first training batch kept to take its final predictions on."""

StepListener = Callable[[int], None]


class Tensors(Protocol):
    """How the recorder reads one backend's values."""

    def concrete(self, structure: Any) -> bool:
        """Whether the values in ``structure`` can be read now (not symbolic, not being traced)."""

    def arrays(self, structure: Any) -> tuple[list[np.ndarray], Any] | None:
        """The arrays in a concrete ``structure``, and the structure if they can be packed back into it."""

    def pack(self, structure: Any, arrays: list[np.ndarray]) -> Any:
        """``arrays`` packed into ``structure``'s shape."""

    def flatten(self, structure: Any) -> list[Any]:
        """The leaves of ``structure``."""

    def numpy(self, value: Any) -> np.ndarray:
        """A concrete value as a NumPy array."""

    def iterations(self, optimizer: Any) -> int:
        """The optimizer's step count now."""

    def outside_trace(self) -> AbstractContextManager[Any]:
        """A block whose variable reads see their current values, even while a step is traced."""

    def observe_traced_input(self, recorder: Recorder, tracked: TrackedModel, inputs: Any) -> None:
        """Hands a traced training batch's values to ``recorder.seen_input`` when the step runs."""

    def observe_traced_loss(self, recorder: Recorder, loss: Any) -> None:
        """Hands a traced loss's value to ``recorder.seen_loss`` when the step runs."""


class Recorder:
    """What the hooks report to: records models, steps, inputs and losses, and emits them as events.

    Args:
        emit: sends an event to the parent (called from any thread).
        tensors: how the run's backend reads its values (:class:`~reprokit.worker.backends.Tensors`).
        max_steps: end the run after this many optimizer steps (None: no limit).
        light: observe only metrics, losses, final predictions and final
            fingerprints (a seed study): no per-step fingerprints, no ``init``
            or ``step`` events, no saved weights; ``max_steps`` is not honoured.
        alignment: also save the models' structure and hidden activations
            on the probe batch at the end (the seed pair's runs, a study's).
        whole_state: fingerprint the whole training state, not only the
            weights (a resume check, see :mod:`reprokit.worker.state`).
        sampled: fingerprint the weights only after the steps
            :func:`~reprokit.core.snapshots.sampled_step` names (and, in a
            traced TensorFlow step, whenever the step log is read); the
            batches and the loss after every step.
        preempt_after: die after this many optimizer steps, as a preempted
            machine would: ``preempted`` is called (it never returns) when
            the next step is recorded.
    """

    def __init__(
        self,
        emit: Emit,
        tensors: Tensors,
        max_steps: int | None = None,
        light: bool = False,
        alignment: bool = False,
        whole_state: bool = False,
        sampled: bool = False,
        preempt_after: int | None = None,
        preempted: Callable[[PreemptedEvent], None] | None = None,
    ) -> None:
        self.tensors = tensors
        self._light = light
        self._alignment = alignment
        self._losses: dict[str, float] = {}  # light: the last loss of each model, by label
        self._last_loss: float | None = None
        self._events = Emitter(emit, whole_state, sampled and not whole_state)
        self.whole_state = whole_state
        self.sampled = sampled and not whole_state
        self._preempted = preempted
        self._models = ModelRegistry()
        self.buffers = StepBuffers()
        self._budget = StepBudget(max_steps, preempt_after)
        self._listeners: list[StepListener] = []
        self._before_finalize: list[Callable[[], None]] = []
        self._unobserved = False
        self._finalizing = False
        self._local = threading.local()

    @property
    def light(self) -> bool:
        """Whether this is a light recorder (a seed study's run)."""
        return self._light

    @property
    def xla_steps(self) -> bool:
        """Whether some steps were compiled where Python cannot be called (XLA on TensorFlow): their inputs
        and losses were not observed."""
        return self._unobserved

    def note_unobserved_steps(self) -> None:
        """Some steps run where their inputs and losses cannot be observed (see :attr:`xla_steps`)."""
        self._unobserved = True

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

    def before_finalize(self, callback: Callable[[], None]) -> None:
        """Calls ``callback()`` when the run ends, before the results are taken (steps a backend still holds)."""
        self._before_finalize.append(callback)

    @property
    def total_steps(self) -> int:
        """Optimizer steps of all trained models together."""
        return sum(t.step for t in self._models.trained())

    def optimizers(self) -> list[OptimizerRecord]:
        """Every optimizer that applied gradients so far."""
        return self._models.optimizers()

    def observed(self, tracked: TrackedModel) -> tuple[list[str], list[Any]]:
        """The variables each step fingerprints for ``tracked``, with their names (the weights, or the whole state)."""
        return self._events.observed(tracked)

    # -- models, inputs and losses ----------------------------------------
    def register(self, model: Any) -> TrackedModel:
        """The record of a model the script called (made on first sight)."""
        return self._models.register(model)

    def observe_input(self, tracked: TrackedModel, inputs: Any) -> None:
        """Takes a training batch: now if its values are concrete, else through the backend with its step.

        A light recorder only keeps the model's first concrete batch as its probe.
        """
        concrete = self.tensors.concrete(inputs)
        if self._light:
            flat = self.tensors.arrays(inputs) if tracked.probe is None and concrete else None
            if flat is not None and flat[1] is not None:
                tracked.set_probe(self.tensors.pack(flat[1], [a[:PROBE_ROWS] for a in flat[0]]))
            return
        if concrete:
            flat = self.tensors.arrays(inputs)
            if flat is not None:
                self.seen_input(tracked, *flat)
            return
        self.tensors.observe_traced_input(self, tracked, inputs)

    def observe_loss(self, target: Any) -> None:
        """Takes the (scalar) loss a gradient is taken of: now if concrete, else through the backend."""
        if self.tensors.concrete(target):
            self.seen_loss(float(self.tensors.numpy(target)))
        else:
            self.tensors.observe_traced_loss(self, target)

    def seen_input(self, tracked: TrackedModel, arrays: list[np.ndarray], structure: Any) -> None:
        """A training batch's values arrived (``structure``: to pack them back into, or None)."""
        self.buffers.add_input(arrays)
        if tracked.probe is None and structure is not None:
            tracked.set_probe(self.tensors.pack(structure, [a[:PROBE_ROWS] for a in arrays]))

    def seen_loss(self, loss: float) -> None:
        """A step's loss value arrived."""
        if self._light:
            self._last_loss = loss
        else:
            self.buffers.set_loss(loss)

    # -- optimizer steps --------------------------------------------------
    def optimizer_state(self, optimizer: Any, variables: list[Any], iterations: int | None = None) -> OptimizerRecord:
        """Returns (and on first sight records) what ``optimizer`` trains; reports new models' initial weights.

        ``iterations``: its step count before the step (None: read it now).
        """
        count = self.tensors.iterations if iterations is None else (lambda _: iterations)
        state = self._models.optimizer(optimizer, variables, count)
        for tracked in state.tracked:
            if tracked.first_sight() and not self._light:
                with self.tensors.outside_trace():  # read the values before the first step runs
                    self._events.init(tracked)
        return state

    def after_step(self, state: OptimizerRecord) -> None:
        """After an eager ``apply``: records the steps ``state``'s optimizer made, reading its weights now."""
        iterations = self.tensors.iterations(state.optimizer)
        if self._light:
            self.count_light(state, iterations, self._last_loss)
            return
        self.record(state, iterations)

    def count_light(self, state: OptimizerRecord, iterations: int, loss: float | None) -> None:
        """Light: counts the steps ``state``'s optimizer made up to ``iterations``, and keeps the last loss."""
        delta = state.advance(iterations)
        for tracked in state.tracked:
            tracked.advance(max(delta, 0))
            if loss is not None:
                self._losses[tracked.label] = loss

    def record(
        self,
        state: OptimizerRecord,
        iterations: int,
        digests: Sequence[str] | None = None,
        values: list[list[np.ndarray]] | None = None,
        names: list[list[str]] | None = None,
    ) -> None:
        """Records the steps ``state``'s optimizer made up to ``iterations``.

        Args:
            state: the optimizer that stepped.
            iterations: its ``iterations`` after the step.
            digests: the weights' digests computed in compiled code, for all
                its models in order (None: fingerprint the values).
            values: the weights' values per model (None: read them now, an
                eager step; with ``digests``: only at snapshot steps).
            names: the variables ``values`` are of, per model (None: all of
                the model's weights, in order).
        """
        if self._preempted is not None and self._budget.preempts(iterations - state.iterations):
            trained = self._models.trained()
            self._preempted(PreemptedEvent(self._budget.steps, {t.label: t.step for t in trained}))
        delta = state.advance(iterations)
        if delta <= 0:
            return
        seen = self.buffers.take()
        at = 0
        for i, tracked in enumerate(state.tracked):
            tracked.advance(delta)
            mine = None
            if digests is not None:
                count = len(tracked.weights())
                mine, at = digests[at : at + count], at + count
            self._events.step(
                tracked, mine, None if values is None else values[i], seen, None if names is None else names[i]
            )
        steps = self._budget.count(delta)
        for listener in self._listeners:
            listener(steps)
        self._budget.end_step(eager=digests is None and values is None)  # compiled code cannot raise

    def _leaves(self, structure: Any) -> list[np.ndarray]:
        return [self.tensors.numpy(leaf) for leaf in self.tensors.flatten(structure)]

    # -- the end of the run -----------------------------------------------
    def finalize(self) -> tuple[tuple[ModelSummary, ...], dict[str, np.ndarray]]:
        """Ends observing; returns a summary per trained model and the arrays to save."""
        for callback in self._before_finalize:
            callback()
        self._finalizing = True
        if self._light:  # steps not seen one by one (fit, compiled code) are counted now
            for state in self._models.optimizers():
                self.count_light(state, self.tensors.iterations(state.optimizer), None)
        summaries, arrays = final_results(
            self._models.trained(), self._leaves, self._light, self._losses, self._alignment
        )
        return summaries, {**self._events.snapshots.arrays, **arrays}

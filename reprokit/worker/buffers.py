"""What the current optimizer step saw, until it is recorded (part of the :class:`~reprokit.worker.recorder.Recorder`).

A step's ``step`` event carries a fingerprint of each batch the model was
called on in training, the digests of the batch's rows, and the loss the
gradient was taken of. Eager code hands over values as it runs; code being
traced hands over symbolic tensors, which the step's one ``tf.py_function``
reads back (see :class:`~reprokit.worker.backends.tensorflow.GraphTap`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from reprokit.core.fingerprint import combine, row_digests, rows_text, step_fingerprint
from reprokit.worker.registry import TrackedModel

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

MAX_INPUTS_PER_STEP = 16
"""Input batches fingerprinted per optimizer step (more are calls that do not train)."""

Seen: TypeAlias = tuple[tuple[str, ...], tuple[str, ...], float | None]
"""What a step saw: its batches' fingerprints, their row digests, and its loss (if seen)."""


@dataclass
class TracedStep:
    """The step being traced in ``graph``: the batches models train on in it, and its loss tensor.

    Attributes:
        graph: the graph being traced.
        inputs: per batch, the model that trains on it, its tensors, and
            its structure if they can be packed back into it (else None).
        loss: the loss tensor, if a gradient of a scalar was taken.
    """

    graph: Any
    inputs: list[tuple[TrackedModel, list[tf.Tensor], Any]] = field(default_factory=list)
    loss: Any = None


class StepBuffers:
    """What the current optimizer step saw, until the step is recorded.

    Eager code adds values as it sees them. Traced code adds symbolic
    tensors to the step of the graph being traced; the step's callback
    reads their values back and adds them like eager ones.
    """

    def __init__(self) -> None:
        self._inputs: list[str] = []
        self._rows: list[str] = []
        self._loss: float | None = None
        self._traced: dict[int, TracedStep] = {}

    def add_input(self, arrays: list[np.ndarray]) -> None:
        """Fingerprints a training batch and the rows of its first array (up to 16 batches a step)."""
        if len(self._inputs) < MAX_INPUTS_PER_STEP:
            self._inputs.append(combine([step_fingerprint(a) for a in arrays]))
            self._rows.append(rows_text(row_digests(arrays[0])))

    def add_digests(self, fingerprint: str, rows: str) -> None:
        """A training batch's fingerprint and its rows' digests, computed in the graph (up to 16 batches a step)."""
        if len(self._inputs) < MAX_INPUTS_PER_STEP:
            self._inputs.append(fingerprint)
            self._rows.append(rows)

    def set_loss(self, loss: float) -> None:
        """The loss this step's gradient is taken of."""
        self._loss = loss

    def take(self) -> Seen:
        """What the step saw (its batches' fingerprints and row digests, its loss); the buffers start the next step."""
        seen = tuple(self._inputs), tuple(self._rows), self._loss
        self._inputs, self._rows, self._loss = [], [], None
        return seen

    def add_traced_input(self, graph: Any, tracked: TrackedModel, tensors: list[tf.Tensor], packable: Any) -> None:
        """While ``graph`` is traced: a batch ``tracked`` trains on (``packable``: its structure, or None)."""
        self._traced_step(graph).inputs.append((tracked, tensors, packable))

    def set_traced_loss(self, graph: Any, loss: tf.Tensor) -> None:
        """While ``graph`` is traced: the loss tensor of its step."""
        self._traced_step(graph).loss = loss

    def take_traced(self, graph: Any) -> TracedStep:
        """The tensors added while tracing ``graph``'s step, removed from the buffers."""
        traced = self._traced.pop(id(graph), None)
        return traced if traced is not None and traced.graph is graph else TracedStep(graph)

    def _traced_step(self, graph: Any) -> TracedStep:
        traced = self._traced.get(id(graph))
        if traced is None or traced.graph is not graph:  # a new graph (ids of old ones are reused)
            traced = self._traced[id(graph)] = TracedStep(graph)
        return traced

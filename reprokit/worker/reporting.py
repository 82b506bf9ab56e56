"""What a run reports: its models' ``init`` and ``step`` events, their weights' snapshots, and the final results.

Part of the :class:`~reprokit.worker.recorder.Recorder`, which decides when a model is first seen and when a step is
recorded; this module makes what it then sends and saves (backend-free).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from reprokit.core.fingerprint import combine, fingerprint, step_fingerprint
from reprokit.core.snapshots import Snapshots, sampled_step
from reprokit.protocol import Event, InitEvent, ModelSummary, StepEvent
from reprokit.worker import anatomy, state
from reprokit.worker.buffers import Seen
from reprokit.worker.registry import TrackedModel, variable_names

Emit = Callable[[Event], None]
"""Sends an event to the parent (called from any thread)."""

Leaves = Callable[[Any], list[np.ndarray]]
"""The arrays in a structure of the backend's tensors (the model's outputs, its probe batch)."""


class Emitter:
    """Sends events to the parent, and makes the ``init`` and ``step`` events of a model.

    Args:
        emit: sends an event.
        whole_state: the events fingerprint the whole training state
            (:mod:`reprokit.worker.state`), all of it on the host with one
            hash, so that any two points of two runs compare.
        sampled: a step the host fingerprints is fingerprinted only where
            :func:`~reprokit.core.snapshots.sampled_step` says so (its event's
            ``weights`` are empty elsewhere).
    """

    def __init__(self, emit: Emit, whole_state: bool = False, sampled: bool = False) -> None:
        self._emit = emit
        self._whole = whole_state
        self._sampled = sampled
        self._fingerprinted: dict[str, int] = {}  # sampled: the step each model's weights were last fingerprinted at
        self.snapshots = Snapshots()

    def send(self, event: Event) -> None:
        """Sends ``event`` as it is."""
        self._emit(event)

    def observed(self, tracked: TrackedModel) -> tuple[list[str], list[Any]]:
        """The variables a step event fingerprints, with their names: the weights, or the whole state."""
        weights = tracked.weights()
        names = tracked.names(weights)  # kept by the model: no copy on a step's path
        if not self._whole:
            return names, weights
        extra_names, extra = state.extra_variables(tracked)
        return [*names, *extra_names], [*weights, *extra]

    def init(self, tracked: TrackedModel) -> None:
        """Reports ``tracked``'s weights before its first step: now (read eagerly), or as kept before training."""
        names, variables = self.observed(tracked)
        count = len(tracked.weights())
        values = tracked.initial if tracked.initial is not None else [np.asarray(v) for v in variables[:count]]
        extra = state.readable(variables[count:]) if self._whole else []
        if extra is None:  # the state cannot be read now: as kept before, else the weights only
            kept = tracked.initial_state
            extra = kept if kept is not None and len(kept) == len(names) - count else []
            names = names if extra else names[:count]
        self.snapshots.offer(tracked.label, tracked.step, names[:count], values)
        values = [*values, *extra]
        if not self._whole:
            self._emit(InitEvent(tracked.label, tracked.step, {n: fingerprint(a) for n, a in zip(names, values)}))
            return
        fingerprints = {n: step_fingerprint(a) for n, a in zip(names, values)} | state.global_generators()
        self._emit(InitEvent(tracked.label, tracked.step, fingerprints, state.scalars(names, values)))

    def step(
        self,
        tracked: TrackedModel,
        digests: Sequence[str] | None,
        values: list[np.ndarray] | None,
        seen: Seen,
        names: list[str] | None = None,
    ) -> None:
        """Reports ``tracked`` after a step and what the step saw (``seen``: ``StepBuffers.take()``).

        A step traced on TensorFlow brings its weights' ``digests``, computed on the device
        (:mod:`reprokit.worker.graphprint`), and their ``values`` only at the steps
        snapshots are taken at; a step compiled on JAX brings the ``values``
        of the variables ``names`` (those its optimizer updates); an eager
        step brings neither: its weights are read now. Values are
        fingerprinted on the host.
        """
        variables: list[Any] = []
        if names is None:
            names, variables = self.observed(tracked)
        skipped = self._sampled and not sampled_step(self._fingerprinted.get(tracked.label, 0), tracked.step)
        if digests is None and skipped:
            fingerprints = {}  # not a sampled step: its batches and loss only
        elif digests is None:
            self._fingerprinted[tracked.label] = tracked.step
            values = [np.asarray(v) for v in variables] if values is None else values
            fingerprints = {n: step_fingerprint(a) for n, a in zip(names, values)}
        else:
            fingerprints = dict(zip(names, digests))
        if not self._whole:
            if values is not None:
                self.snapshots.offer(tracked.label, tracked.step, names, values)
            self._emit(StepEvent(tracked.label, tracked.step, fingerprints, *seen))
            return
        scalars = {}
        if values is not None:  # the snapshots keep the weights only
            kept = [(n, v) for n, v in zip(names, values) if state.is_weight(n)]
            self.snapshots.offer(tracked.label, tracked.step, [n for n, _ in kept], [v for _, v in kept])
            scalars = state.scalars(names, values)
        fingerprints |= state.global_generators()
        self._emit(StepEvent(tracked.label, tracked.step, fingerprints, *seen, scalars=scalars))


def final_results(
    trained: list[TrackedModel],
    leaves: Leaves,
    light: bool = False,
    losses: dict[str, float] | None = None,
    alignment: bool = False,
) -> tuple[tuple[ModelSummary, ...], dict[str, np.ndarray]]:
    """A summary of every trained model, and the arrays to save: final weights and predictions on the probe.

    A ``light`` run saves no weights (their fingerprints, one hash per
    variable, are still taken); ``losses`` are the last observed loss of each
    model (by label); with ``alignment`` the arrays also hold what
    :func:`reprokit.worker.anatomy.record` saves.
    """
    summaries, arrays = [], {}
    losses = losses or {}
    for tracked in trained:
        weights = tracked.weights()
        fingerprints = {n: fingerprint(np.asarray(v)) for n, v in zip(variable_names(weights), weights)}
        if not light:
            for name, variable in zip(variable_names(weights), weights):
                arrays[f"weights/{tracked.label}/{name}"] = np.asarray(variable)
        probe_fp = None
        if tracked.probe is not None and tracked.model is not None:
            try:
                outputs = leaves(tracked.model(tracked.probe, training=False))
                probe_fp = combine([fingerprint(a) for a in leaves(tracked.probe)])
                for i, out in enumerate(outputs):
                    arrays[f"predictions/{tracked.label}/{i}"] = out
            except Exception:  # noqa: BLE001 - a model we cannot call has no prediction check
                probe_fp = None
        if alignment and tracked.probe is not None and tracked.model is not None:
            with contextlib.suppress(Exception):  # a model reprokit cannot read has no alignment evidence
                arrays.update(anatomy.record(tracked.label, tracked.model, tracked.probe, verify=not light))
        summaries.append(ModelSummary(tracked.label, tracked.step, fingerprints, probe_fp, losses.get(tracked.label)))
    return tuple(summaries), arrays

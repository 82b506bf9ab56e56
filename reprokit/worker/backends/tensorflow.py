"""The run process on TensorFlow: op determinism, ``tf.function`` steps, tf.data findings (imports TensorFlow).

A step traced inside a ``tf.function`` (``Model.fit``, a custom
``train_step``, a ``@tf.function`` loop) calls Python hooks only while it is
traced. The optimizer hook then appends the step's record to a
:class:`~reprokit.worker.steplog.StepLog` in the graph, which one
``tf.py_function`` reads back when a flush is due (:class:`GraphTap`).
XLA-compiled code cannot call Python: its steps are observed when the
outermost ``tf.function`` call returns, by reading the optimizer's
``iterations``. Losses are taken where ``GradientTape.gradient`` is called.
"""

from __future__ import annotations

import contextlib
import functools
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import record
from tensorflow.python.eager.polymorphic_function.polymorphic_function import Function
from tensorflow.python.framework import config as tf_config
from tensorflow.python.framework import ops

from reprokit.core.backends import Backend
from reprokit.worker.buffers import MAX_INPUTS_PER_STEP
from reprokit.worker.recorder import PROBE_ROWS
from reprokit.worker.registry import OptimizerRecord
from reprokit.worker.steplog import EVERY, Record, StepLog, decode, power_of_two
from reprokit.worker.tensors import flatten, in_xla

if TYPE_CHECKING:
    from reprokit.core.controls import Controls
    from reprokit.protocol import WorkerConfig
    from reprokit.worker.recorder import Recorder
    from reprokit.worker.registry import TrackedModel


class TensorFlowTensors:
    """Reads TensorFlow's values: eagerly, or through ``tf.py_function`` in a traced step."""

    def __init__(self) -> None:
        self.tap: GraphTap | None = None

    def concrete(self, structure: Any) -> bool:
        return bool(tf.executing_eagerly())

    def arrays(self, structure: Any) -> tuple[list[np.ndarray], Any] | None:
        flat = flatten(structure)
        return None if flat is None else ([np.asarray(t) for t in flat[0]], flat[1])

    def pack(self, structure: Any, arrays: list[np.ndarray]) -> Any:
        return tf.nest.pack_sequence_as(structure, arrays)

    def flatten(self, structure: Any) -> list[Any]:
        return list(tf.nest.flatten(structure))

    def numpy(self, value: Any) -> np.ndarray:
        return np.asarray(value)

    def iterations(self, optimizer: Any) -> int:
        with tf.init_scope():
            return int(optimizer.iterations.numpy())

    def outside_trace(self) -> contextlib.AbstractContextManager[Any]:
        scope: contextlib.AbstractContextManager[Any] = tf.init_scope()
        return scope

    def observe_traced_input(self, recorder: Recorder, tracked: TrackedModel, inputs: Any) -> None:
        flat = flatten(inputs)
        if flat is not None and not in_xla():
            recorder.buffers.add_traced_input(ops.get_default_graph(), tracked, *flat)

    def observe_traced_loss(self, recorder: Recorder, loss: Any) -> None:
        if not in_xla():
            recorder.buffers.set_traced_loss(ops.get_default_graph(), loss)


class GraphTap:
    """Records the optimizer steps traced in a graph (see :mod:`reprokit.worker.steplog`).

    Args:
        recorder: where the steps go.
        flush_every: traced steps are read back at least this often (1:
            every step, for ``explain``'s replay).
    """

    def __init__(self, recorder: Recorder, flush_every: int = EVERY) -> None:
        self._recorder = recorder
        self._log = StepLog(flush_every, recorder.budget.max_steps)
        self._states: list[OptimizerRecord] = []  # the optimizers stepped in the graph, by their number in records
        self._numbers: dict[int, int] = {}  # their numbers, by id
        self._graph_steps = 0
        recorder.before_finalize(lambda: self._replay(self._log.read(), None, None))

    def step(self, state: OptimizerRecord) -> None:
        """While tracing a step: records it in the graph.

        Called right after the optimizer's update in the traced function. The
        step's record — the digest of every updated weight and of every batch
        and its rows, computed on the device, and the loss — is appended to
        the step log (with sampled fingerprints, the weights' digests only
        when the log is read after the step: steps 1, 2, 4, … and every
        64th); a ``tf.py_function`` reads the log only when a flush is
        due (every 64 steps, at steps 1, 2, 4, 8, … with the weights' values
        for their snapshots and the batch for the probe, and at the end of
        a ``--max-steps`` budget). Skipped inside XLA, which cannot call
        Python: those steps are read after the call.
        """
        recorder = self._recorder
        traced = recorder.buffers.take_traced(ops.get_default_graph())
        if in_xla():
            recorder.note_unobserved_steps()
            return
        if recorder.light:
            self._tap_loss(state, traced.loss)
            return
        number = self._numbers.setdefault(id(state), len(self._states))
        if number == len(self._states):
            self._states.append(state)
        inputs = traced.inputs[:MAX_INPUTS_PER_STEP]
        weights = [tf.convert_to_tensor(w) for t in state.tracked for w in self._observed(t)]
        iterations = tf.convert_to_tensor(state.optimizer.iterations)
        batches = [ts for _, ts, _ in inputs]
        due = self._log.due(iterations)

        def read() -> Any:  # the record (with the weights' digests), then the log read back
            with tf.control_dependencies([self._log.append(number, iterations, weights, traced.loss, batches)]):
                return self._flush_graph(state, iterations, weights, inputs)

        def record() -> Any:  # the record alone (sampled: without the weights' digests)
            kept = [] if self._recorder.sampled else weights
            return _done(self._log.append(number, iterations, kept, traced.loss, batches))

        tf.cond(due, read, record)  # one conditional a step

    def _flush_graph(self, state: OptimizerRecord, iterations: Any, weights: list[Any], inputs: list[Any]) -> Any:
        """Graph code: reads the step log back (with the weights and batches at steps 1, 2, 4, …), then empties it."""
        buffer = tf.convert_to_tensor(self._log.buffer)
        batches = [t for _, ts, _ in inputs for t in ts]

        def with_values() -> Any:
            counts = [len(self._observed(t)) for t in state.tracked]
            flushed = functools.partial(self._flushed, state, counts, inputs)
            return tf.py_function(flushed, [buffer, *weights, *batches], Tout=tf.int32)

        def without() -> Any:
            return tf.py_function(functools.partial(self._flushed, state, None, inputs), [buffer], Tout=tf.int32)

        if self._recorder.whole_state:  # every step's state is fingerprinted on the host
            done = with_values()
        else:
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
        buffers = self._recorder.buffers
        for i, entry in enumerate(records):
            state = self._states[entry.state]
            for fingerprint_text, rows in entry.inputs:
                buffers.add_digests(fingerprint_text, rows)
            if entry.loss is not None:
                buffers.set_loss(entry.loss)
            self._graph_steps += 1
            values = weights if i == len(records) - 1 and state is last else None
            whole = self._recorder.whole_state and values is not None  # one host hash for the whole state
            self._recorder.record(state, entry.iterations, None if whole else entry.weights, values)

    def _observed(self, tracked: TrackedModel) -> list[Any]:
        return self._recorder.observed(tracked)[1]

    def _tap_loss(self, state: OptimizerRecord, loss: Any) -> None:
        """Light: a traced step outside ``fit`` passes its loss to Python (``fit`` has its history)."""
        if loss is None or self._recorder.budget.fitting_now:
            return

        def loss_done(iterations: tf.Tensor, value: tf.Tensor) -> list[Any]:
            self._recorder.count_light(state, int(iterations.numpy()), float(value.numpy()))
            return []

        tf.py_function(loss_done, [tf.convert_to_tensor(state.optimizer.iterations), loss], Tout=[])

    def step_counts(self) -> tuple[int, int]:
        """Steps recorded by traced callbacks, and optimizer steps: pass them to :meth:`after_function_call`."""
        return self._graph_steps, self._recorder.budget.steps

    def after_function_call(self, before: tuple[int, int]) -> None:
        """After an outermost ``tf.function`` call: steps no callback saw are read now (XLA).

        ``before`` is :meth:`step_counts` from before the call. A call that
        spent the step budget outside ``fit`` (a hand-written loop) unwinds
        the script with StepBudgetSpent: the run ends as if the script had
        returned.
        """
        recorder = self._recorder
        if not recorder.optimizers() or recorder.finalizing or recorder.light:
            return
        graph_steps_before, steps_before = before
        if self._graph_steps == graph_steps_before:
            for state in recorder.optimizers():
                if id(state) not in self._numbers:  # a traced optimizer's steps wait in the step log
                    recorder.after_step(state)
        recorder.budget.after_call(steps_before)


class TensorFlow:
    """The run process's side of TensorFlow (see :class:`reprokit.worker.backends.Framework`)."""

    backend = Backend.TENSORFLOW

    def __init__(self) -> None:
        self.tensors = TensorFlowTensors()

    def apply(self, controls: Controls) -> None:
        keras.utils.set_random_seed(controls.seed)
        if controls.op_determinism:
            tf.config.experimental.enable_op_determinism()

    def install(self, recorder: Recorder, config: WorkerConfig) -> None:
        from reprokit.worker import diagnose

        every = 1 if config.explain_step or config.whole_state else EVERY  # each step read as it happens
        tap = GraphTap(recorder, every)
        self.tensors.tap = tap
        if config.explain_step:
            diagnose.install_replay(recorder, config.explain_step)
        _hook_tf_functions(recorder, tap)
        _hook_gradients(recorder)
        if not config.study:
            diagnose.install_pipeline_hooks(recorder, config.sequential_maps)

    def traced_step(self, recorder: Recorder, state: OptimizerRecord) -> None:
        """A step traced in a graph (the optimizer hook calls this when it runs inside a ``tf.function``)."""
        assert self.tensors.tap is not None
        self.tensors.tap.step(state)

    def recording(self) -> bool:
        """Whether a gradient may be taken of what runs now (a tape is watching)."""
        return bool(record.could_possibly_record())

    def environment(self) -> dict[str, Any]:
        gpus = tf.config.list_physical_devices("GPU")
        return {
            "tensorflow": tf.__version__,
            "gpus": [d.name for d in gpus],
            "gpu_models": [_gpu_model(d) for d in gpus],
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "op_determinism": tf_config.is_op_determinism_enabled(),
        }


def _hook_tf_functions(recorder: Recorder, tap: GraphTap) -> None:
    """Observes the steps made inside an outermost ``tf.function`` call."""
    function_call = Function.__call__

    @functools.wraps(function_call)
    def call_function(self: Any, *args: Any, **kwargs: Any) -> Any:
        with recorder.entered("function") as outermost:
            top_level = outermost and tf.executing_eagerly()
            before = tap.step_counts()
            result = function_call(self, *args, **kwargs)
        if top_level:
            tap.after_function_call(before)
        return result

    Function.__call__ = call_function


def _hook_gradients(recorder: Recorder) -> None:
    """Observes the loss a gradient is taken of."""
    gradient = tf.GradientTape.gradient

    @functools.wraps(gradient)
    def tape_gradient(self: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(getattr(target, "shape", None), "rank", None) == 0:
            recorder.observe_loss(target)
        return gradient(self, target, *args, **kwargs)

    tf.GradientTape.gradient = tape_gradient


def _done(op: Any) -> tf.Tensor:
    """Graph code: a tensor computed after ``op`` (a ``tf.cond`` branch returns tensors, not operations)."""
    with tf.control_dependencies([op]):
        return tf.constant(0)


def _gpu_model(device: Any) -> str:
    """The GPU's model and compute capability (two GPUs of one model compute the same bits)."""
    try:
        details = tf.config.experimental.get_device_details(device)
    except (ValueError, RuntimeError):
        return ""
    return f"{details.get('device_name', '')} {details.get('compute_capability', '')}".strip()


FRAMEWORK = TensorFlow()

"""Hooks that observe training inside a run process (imports TensorFlow).

Every way of training a Keras 3 model ends in an optimizer step, so the
optimizer's ``apply`` is the anchor:

* executed eagerly (hand-written loops, ``run_eagerly=True``), the hook
  fingerprints the weights right after the step;
* traced inside a ``tf.function`` (``Model.fit``, a custom ``train_step``, a
  ``@tf.function`` loop), a Python hook runs only while tracing. The hook then
  only learns which optimizer and variables train, and the step is observed
  when the outermost ``tf.function`` call returns to Python, by reading the
  optimizer's ``iterations``. That also works under XLA and counts the hidden
  steps of ``steps_per_execution > 1``.

Input batches and losses are observed where a forward pass runs under a
gradient tape: in eager code directly, in traced code through a
``tf.py_function`` (skipped inside XLA-compiled functions, which cannot call
Python). Nothing here changes what the training computes.
"""

from __future__ import annotations

import functools
import sys
import sysconfig
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.optimizers.base_optimizer import BaseOptimizer
from tensorflow.python.eager import record
from tensorflow.python.eager.polymorphic_function.polymorphic_function import Function
from tensorflow.python.framework import ops
from tensorflow.python.ops import control_flow_util

from reprokit.fingerprint import combine, fingerprint, row_digests, rows_text, step_fingerprint

PROBE_ROWS = 256
MAX_INPUTS_PER_STEP = 16

Emit = Callable[[dict[str, Any]], None]


class StepBudgetSpent(BaseException):
    """Raised into the script to end a run after ``--max-steps`` optimizer steps.

    A BaseException, so that the script's own ``except Exception`` lets it pass.
    """

    def __init__(self, steps: int) -> None:
        super().__init__(f"the step budget was spent after {steps} optimizer steps")
        self.steps = steps


@dataclass
class _Tracked:
    """A model (or a bare list of variables) whose weights are fingerprinted."""

    label: str
    model: Any | None
    variables: list[Any]
    step: int = 0
    has_init: bool = False
    probe: Any = None

    _names: list[str] = field(default_factory=list)

    def weights(self) -> list[Any]:
        return list(self.model.weights) if self.model is not None else self.variables

    def names(self, weights: list[Any]) -> list[str]:
        """``variable_names(weights)``, computed again only when the weights change."""
        if len(self._names) != len(weights):
            self._names = variable_names(weights)
        return self._names


@dataclass
class _OptimizerState:
    optimizer: Any
    variable_ids: frozenset[int]
    tracked: list[_Tracked]
    iterations: int


@dataclass
class Recorder:
    """Collects what the hooks observe and emits it as events."""

    emit: Emit
    models: dict[int, _Tracked] = field(default_factory=dict)
    optimizers: dict[int, _OptimizerState] = field(default_factory=dict)
    pending_inputs: list[str] = field(default_factory=list)
    pending_input_rows: list[str] = field(default_factory=list)
    pending_loss: float | None = None
    graph_pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    graph_steps: int = 0
    finalizing: bool = False
    max_steps: int | None = None
    stop_at: int | None = None
    optimizer_steps: int = 0
    step_listeners: list[Callable[[int], None]] = field(default_factory=list)
    fitting: list[Any] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)
    _labels: set[str] = field(default_factory=set)

    @property
    def total_steps(self) -> int:
        return sum(t.step for t in self._all_tracked())

    def _all_tracked(self) -> list[_Tracked]:
        seen: dict[int, _Tracked] = {}
        for state in self.optimizers.values():
            for tracked in state.tracked:
                seen[id(tracked)] = tracked
        return list(seen.values())

    @contextmanager
    def entered(self, name: str) -> Iterator[bool]:
        """Counts nesting per thread; yields whether this is the outermost."""
        depth = getattr(self._local, name, 0)
        setattr(self._local, name, depth + 1)
        try:
            yield depth == 0
        finally:
            setattr(self._local, name, depth)

    def _unique_label(self, name: str) -> str:
        label, n = name, 1
        while label in self._labels:
            n += 1
            label = f"{name}#{n}"
        self._labels.add(label)
        return label

    def register(self, model: Any) -> _Tracked:
        tracked = self.models.get(id(model))
        if tracked is None:
            tracked = _Tracked(self._unique_label(model.name), model, [])
            self.models[id(model)] = tracked
        return tracked

    # -- observing inputs and losses ------------------------------------
    def observe_input(self, tracked: _Tracked, inputs: Any) -> None:
        """Takes a training batch: now if eager, else with the step that follows in the same graph."""
        if tf.executing_eagerly():
            observe(inputs, functools.partial(self._seen_input, tracked))
            return
        flat = _flatten(inputs)
        if flat is not None and not _in_xla():
            self._pending_graph()["inputs"].append((tracked, *flat))

    def _seen_input(self, tracked: _Tracked, arrays: list[np.ndarray], structure: Any) -> None:
        if len(self.pending_inputs) < MAX_INPUTS_PER_STEP:
            self.pending_inputs.append(combine([step_fingerprint(a) for a in arrays]))
            self.pending_input_rows.append(rows_text(row_digests(arrays[0])))
        if tracked.probe is None and structure is not None:
            tracked.probe = tf.nest.pack_sequence_as(structure, [a[:PROBE_ROWS] for a in arrays])

    def observe_loss(self, target: Any) -> None:
        if tf.executing_eagerly():
            self.pending_loss = float(np.asarray(target))
        elif not _in_xla():
            self._pending_graph()["loss"] = target

    def _pending_graph(self) -> dict[str, Any]:
        graph = ops.get_default_graph()
        pending = self.graph_pending.get(id(graph))
        if pending is None or pending["graph"] is not graph:  # a new graph (ids of old ones are reused)
            pending = self.graph_pending[id(graph)] = {"graph": graph, "inputs": [], "loss": None}
        return pending

    # -- optimizer steps ------------------------------------------------
    def optimizer_state(self, optimizer: Any, variables: list[Any]) -> _OptimizerState:
        """Returns (and on first sight records) what ``optimizer`` trains."""
        ids = frozenset(id(v) for v in variables)
        state = self.optimizers.get(id(optimizer))
        if state is None or state.variable_ids != ids:
            with tf.init_scope():
                iterations = int(optimizer.iterations.numpy())
            state = _OptimizerState(optimizer, ids, self._owners(optimizer, variables, ids), iterations)
            self.optimizers[id(optimizer)] = state
        for tracked in state.tracked:
            if not tracked.has_init:
                tracked.has_init = True
                with tf.init_scope():  # read the values before the first step runs
                    self._emit_init(tracked)
        return state

    def _owners(self, optimizer: Any, variables: list[Any], ids: frozenset[int]) -> list[_Tracked]:
        """The outermost registered models holding the trained variables."""
        weight_ids = {key: {id(w) for w in t.weights()} for key, t in self.models.items() if t.model is not None}
        candidates = [key for key, wids in weight_ids.items() if wids & ids]
        outermost = [
            key
            for key in candidates
            if not any(other != key and weight_ids[other] > weight_ids[key] for other in candidates)
        ]
        if outermost:
            return [self.models[key] for key in outermost]
        label = self._unique_label(f"variables:{getattr(optimizer, 'name', 'optimizer')}")
        bare = _Tracked(label, None, list(variables))
        self.models[id(bare)] = bare
        return [bare]

    def after_step(self, state: _OptimizerState) -> None:
        """Records the steps ``state``'s optimizer made, reading its weights eagerly."""
        self._record_steps(state, int(state.optimizer.iterations.numpy()), None)

    def tap_step(self, state: _OptimizerState) -> None:
        """While tracing a step: adds one callback that receives the step's results.

        Called right after the optimizer's update in the traced function. The
        callback (a ``tf.py_function``) gets the step count, the updated
        weights and the batch and loss of this graph as tensors, so each step
        costs one Python call and no extra eager reads (each of those took
        ~0.2 ms here, more than the digits MLP's whole step). Skipped inside
        XLA, which cannot call Python: those steps are read after the call.
        """
        graph = ops.get_default_graph()
        pending = self.graph_pending.pop(id(graph), None)
        if pending is None or pending["graph"] is not graph:
            pending = {"inputs": [], "loss": None}
        if _in_xla():
            return
        inputs = pending["inputs"][:MAX_INPUTS_PER_STEP]
        weights = [t.weights() for t in state.tracked]
        flat = [state.optimizer.iterations, *(w for ws in weights for w in ws)]
        flat += [t for _, tensors, _ in inputs for t in tensors]
        has_loss = pending["loss"] is not None
        if has_loss:
            flat.append(pending["loss"])
        layout = ([len(ws) for ws in weights], [(tracked, len(ts), packable) for tracked, ts, packable in inputs])

        def step_done(*values: tf.Tensor) -> list[Any]:
            arrays = [v.numpy() for v in values]
            at = 1
            per_model = []
            for n in layout[0]:
                per_model.append(arrays[at : at + n])
                at += n
            for tracked, n, packable in layout[1]:
                self._seen_input(tracked, arrays[at : at + n], packable)
                at += n
            if has_loss:
                self.pending_loss = float(arrays[at])
            self.graph_steps += 1
            self._record_steps(state, int(arrays[0]), per_model)
            return []

        tf.py_function(step_done, [tf.convert_to_tensor(x) for x in flat], Tout=[])

    def _record_steps(self, state: _OptimizerState, iterations: int, weights: list[list[np.ndarray]] | None) -> None:
        delta = iterations - state.iterations
        if delta <= 0:
            return
        state.iterations = iterations
        for i, tracked in enumerate(state.tracked):
            tracked.step += delta
            self._emit_step(tracked, None if weights is None else weights[i])
        self.pending_inputs = []
        self.pending_input_rows = []
        self.pending_loss = None
        self.optimizer_steps += delta
        for listener in self.step_listeners:
            listener(self.optimizer_steps)
        if self.budget_spent and self.fitting:
            self.fitting[-1].stop_training = True  # fit ends after this step; the script goes on
        elif self.budget_spent and weights is None:
            raise StepBudgetSpent(self.optimizer_steps)  # eager: unwind the script now
        # in a graph callback, after_function_call raises it once the call returns

    @property
    def budget_spent(self) -> bool:
        """Whether ``--max-steps`` or the parent's early exit ends the run now."""
        return self.stopped_at_max_steps or self.stopped_early

    @property
    def stopped_at_max_steps(self) -> bool:
        return self.max_steps is not None and self.optimizer_steps >= self.max_steps

    @property
    def stopped_early(self) -> bool:
        """Whether the parent asked this run to stop (its pairs have proven their divergence)."""
        return self.stop_at is not None and self.optimizer_steps >= self.stop_at and not self.stopped_at_max_steps

    def after_function_call(self, graph_steps_before: int, steps_before: int) -> None:
        """After an outermost ``tf.function`` call: steps no callback saw are read now (XLA).

        A call that spent the step budget outside ``fit`` (a hand-written
        loop) unwinds the script with StepBudgetSpent: the run ends as if the
        script had returned.
        """
        if self.graph_steps == graph_steps_before:
            for state in list(self.optimizers.values()):
                self.after_step(state)
        if self.budget_spent and not self.fitting and self.optimizer_steps > steps_before:
            raise StepBudgetSpent(self.optimizer_steps)

    def _emit_init(self, tracked: _Tracked) -> None:
        weights = tracked.weights()
        names = tracked.names(weights)
        self.emit(
            {
                "type": "init",
                "model": tracked.label,
                "step": tracked.step,
                "weights": {n: fingerprint(_value(v)) for n, v in zip(names, weights)},
            }
        )

    def _emit_step(self, tracked: _Tracked, arrays: list[np.ndarray] | None) -> None:
        weights = tracked.weights()
        values = arrays if arrays is not None else [_value(v) for v in weights]
        self.emit(
            {
                "type": "step",
                "model": tracked.label,
                "step": tracked.step,
                "weights": {n: step_fingerprint(a) for n, a in zip(tracked.names(weights), values)},
                "inputs": list(self.pending_inputs),
                "input_rows": list(self.pending_input_rows),
                "loss": self.pending_loss,
            }
        )

    # -- the end of a run -----------------------------------------------
    def finalize(self) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
        """Returns a summary per trained model and the arrays to save."""
        self.finalizing = True
        summaries, arrays = [], {}
        for tracked in self._all_tracked():
            weights = tracked.weights()
            for name, variable in zip(variable_names(weights), weights):
                arrays[f"weights/{tracked.label}/{name}"] = np.asarray(variable)
            probe_fp = None
            if tracked.probe is not None and tracked.model is not None:
                try:
                    outputs = tf.nest.flatten(tracked.model(tracked.probe, training=False))
                    probe_fp = combine([fingerprint(a) for a in tf.nest.flatten(tracked.probe)])
                    for i, out in enumerate(outputs):
                        arrays[f"predictions/{tracked.label}/{i}"] = np.asarray(out)
                except Exception:  # noqa: BLE001 - a model we cannot call has no prediction check
                    probe_fp = None
            summaries.append(
                {
                    "model": tracked.label,
                    "steps": tracked.step,
                    "weights": variable_fingerprints(weights),
                    "probe": probe_fp,
                }
            )
        return summaries, arrays


def variable_names(variables: list[Any]) -> list[str]:
    """Stable, unique names for a list of variables (Keras paths)."""
    names: list[str] = []
    for v in variables:
        name = str(getattr(v, "path", None) or getattr(v, "name", "variable"))
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}#{n}"
        names.append(unique)
    return names


def variable_fingerprints(variables: list[Any]) -> dict[str, str]:
    return {name: fingerprint(_value(v)) for name, v in zip(variable_names(variables), variables)}


def _value(variable: Any) -> Any:
    return variable.numpy() if hasattr(variable, "numpy") else variable


def _in_xla() -> bool:
    return bool(control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph()))


def _flatten(structure: Any) -> tuple[list[tf.Tensor], Any] | None:
    """The tensors in ``structure``, and the structure itself if they can be packed back into it."""
    try:
        flat = tf.nest.flatten(structure, expand_composites=True)
        plain = not any(isinstance(x, tf.__internal__.CompositeTensor) for x in tf.nest.flatten(structure))
        tensors = [tf.convert_to_tensor(x) for x in flat if x is not None]
    except (TypeError, ValueError):
        return None
    if not tensors:
        return None
    return tensors, structure if plain and len(tensors) == len(flat) else None


def observe(structure: Any, callback: Callable[[list[np.ndarray], Any], None]) -> None:
    """Hands the values in ``structure`` to ``callback``, eagerly or in-graph."""
    flat = _flatten(structure)
    if flat is None:
        return
    tensors, packable = flat
    if tf.executing_eagerly():
        callback([np.asarray(t) for t in tensors], packable)
        return
    if _in_xla():
        return  # XLA-compiled code cannot call back into Python

    def in_graph(*values: tf.Tensor) -> list[Any]:
        callback([v.numpy() for v in values], packable)
        return []

    tf.py_function(in_graph, tensors, Tout=[])


def _user_frame(depth: int) -> tuple[str, int] | None:
    """The caller ``depth`` frames up, if it is the user's code (not a library's)."""
    frame = sys._getframe(depth + 1)
    filename = frame.f_code.co_filename
    library = (
        "site-packages" in filename
        or "dist-packages" in filename
        or filename.startswith("<")
        or filename.startswith(sysconfig.get_paths()["stdlib"])
        or Path(filename).resolve().is_relative_to(Path(__file__).parent)
    )
    return None if library else (filename, frame.f_lineno)


# The calls by which a script pins its own seeds or op determinism.
_PINS = (
    ("keras.utils", "set_random_seed"),
    ("keras._tf_keras.keras.utils", "set_random_seed"),
    ("tensorflow.random", "set_seed"),
    ("tensorflow.compat.v1", "set_random_seed"),
    ("tensorflow.compat.v1.random", "set_random_seed"),
    ("numpy.random", "seed"),
    ("random", "seed"),
    ("tensorflow.config.experimental", "enable_op_determinism"),
)


def _wrap_pin(recorder: Recorder, module_name: str, attr: str) -> None:
    try:
        module: Any = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        original = getattr(module, attr)
    except (ImportError, AttributeError):
        return

    @functools.wraps(original)
    def pinned(*args: Any, **kwargs: Any) -> Any:
        where = _user_frame(1)
        if where is not None and not recorder.finalizing:
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            recorder.emit(
                {
                    "type": "pin",
                    "call": f"{module_name.replace('tensorflow', 'tf')}.{attr}({shown})",
                    "kind": "determinism" if attr == "enable_op_determinism" else "seed",
                    "file": where[0],
                    "line": where[1],
                }
            )
        return original(*args, **kwargs)

    setattr(module, attr, pinned)


def install(recorder: Recorder) -> None:
    """Installs every hook; call once, before the user's script runs."""
    _hook_model_calls(recorder)
    _hook_fit(recorder)
    _hook_optimizer_steps(recorder)
    _hook_tf_functions(recorder)
    _hook_gradients(recorder)
    for module_name, attr in _PINS:
        _wrap_pin(recorder, module_name, attr)


def _hook_model_calls(recorder: Recorder) -> None:
    """Registers every model called, and observes the inputs of training calls."""
    layer_call = keras.Model.__call__

    def model_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        tracked = recorder.register(self)
        with recorder.entered("model") as outermost:
            if outermost and not recorder.finalizing and record.could_possibly_record():
                recorder.observe_input(tracked, args[0] if args else kwargs.get("inputs"))
            return layer_call(self, *args, **kwargs)

    keras.Model.__call__ = model_call


def _hook_fit(recorder: Recorder) -> None:
    """Takes the probe batch and the per-epoch history of ``fit``; honours max_steps."""
    fit = keras.Model.fit

    @functools.wraps(fit)
    def model_fit(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        tracked = recorder.register(self)
        if recorder.budget_spent:
            raise StepBudgetSpent(recorder.optimizer_steps)
        if tracked.probe is None and _is_array_like(x):
            tracked.probe = tf.nest.map_structure(lambda a: np.asarray(a[:PROBE_ROWS]), x)
        recorder.fitting.append(self)
        try:
            history = fit(self, x, *args, **kwargs)
        finally:
            recorder.fitting.pop()
        logs = getattr(history, "history", None) or {}
        recorder.emit(
            {
                "type": "history",
                "model": tracked.label,
                "history": {k: [float(v) for v in vals] for k, vals in logs.items()},
            }
        )
        return history

    keras.Model.fit = model_fit


def _hook_optimizer_steps(recorder: Recorder) -> None:
    """Learns what each optimizer trains; fingerprints after eager steps."""

    def wrap_apply(apply: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(apply)
        def hooked(self: Any, grads: Any, trainable_variables: Any = None) -> Any:
            with recorder.entered("apply") as outermost:
                if not outermost:
                    return apply(self, grads, trainable_variables)
                if trainable_variables is not None:
                    trainable_variables = list(trainable_variables)
                variables = trainable_variables
                if variables is None:
                    variables = list(getattr(self, "_trainable_variables", []) or [])
                state = recorder.optimizer_state(self, variables) if variables else None
                result = apply(self, grads, trainable_variables)
            if state is not None and tf.executing_eagerly():
                recorder.after_step(state)
            elif state is not None:
                recorder.tap_step(state)
            return result

        return hooked

    for cls in [BaseOptimizer, *_subclasses(BaseOptimizer)]:
        if "apply" in vars(cls):
            cls.apply = wrap_apply(vars(cls)["apply"])


def _hook_tf_functions(recorder: Recorder) -> None:
    """Observes the steps made inside an outermost ``tf.function`` call."""
    function_call = Function.__call__

    @functools.wraps(function_call)
    def call_function(self: Any, *args: Any, **kwargs: Any) -> Any:
        with recorder.entered("function") as outermost:
            top_level = outermost and tf.executing_eagerly()
            graph_steps, steps = recorder.graph_steps, recorder.optimizer_steps
            result = function_call(self, *args, **kwargs)
        if top_level and recorder.optimizers and not recorder.finalizing:
            recorder.after_function_call(graph_steps, steps)
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


def _subclasses(cls: type) -> list[type]:
    found: list[type] = []
    subclasses: list[type] = cls.__subclasses__()
    for sub in subclasses:
        found.append(sub)
        found.extend(_subclasses(sub))
    return found


def _is_array_like(x: Any) -> bool:
    leaves = tf.nest.flatten(x) if x is not None else []
    return bool(leaves) and all(isinstance(a, np.ndarray) or tf.is_tensor(a) for a in leaves)

"""Finer instruments for a run process (imports TensorFlow).

* Pipeline calls: every tf.data transformation the script asks to give up
  order (``deterministic=False``, ``Options.deterministic = False``) is
  reported with the user's line, in every run; it names the transformation
  behind an input-pipeline divergence.
* Replay probes (``reprokit explain``): in every step up to
  ``explain_step``, the input and output fingerprints of every Keras layer
  call and the gradient fingerprint of every trained variable, so the parent
  can name the first layer whose inputs match but whose outputs do not.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras.src.optimizers.base_optimizer import BaseOptimizer

from reprokit.core.fingerprint import combine, fingerprint
from reprokit.protocol import GradientProbe, LayerProbe, PipelineCall, ReplayEvent
from reprokit.worker.instrument import subclasses, user_frame
from reprokit.worker.recorder import Recorder
from reprokit.worker.registry import variable_names
from reprokit.worker.tensors import observe


def install_pipeline_hooks(recorder: Recorder, sequential_maps: bool = False) -> None:
    """Reports tf.data calls that give up element order or draw random numbers in parallel, with the script line.

    With ``sequential_maps``, every ``Dataset.map`` runs without parallel
    calls (an explain replay testing whether a parallel map is the cause).
    """
    dataset = tf.data.Dataset
    for method in ("interleave", "map", "batch", "padded_batch", "parallel_interleave"):
        original = getattr(dataset, method, None)
        if original is not None:
            setattr(dataset, method, _wrap_transformation(recorder, method, original, sequential_maps))
    with_options = dataset.with_options

    @functools.wraps(with_options)
    def hooked_with_options(self: Any, options: Any, *args: Any, **kwargs: Any) -> Any:
        for attribute in ("deterministic", "experimental_deterministic"):
            if getattr(options, attribute, None) is False:
                _report(recorder, f"Dataset.with_options(options with {attribute}=False)")
        return with_options(self, options, *args, **kwargs)

    dataset.with_options = hooked_with_options


def _wrap_transformation(recorder: Recorder, method: str, original: Any, sequential_maps: bool) -> Any:
    @functools.wraps(original)
    def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
        if method == "map" and sequential_maps:
            args, kwargs = (
                args[:1],
                {k: v for k, v in kwargs.items() if k not in ("num_parallel_calls", "deterministic")},
            )
        parallel = kwargs.get("num_parallel_calls", args[1] if len(args) > 1 else None)
        shown = "AUTOTUNE" if parallel == tf.data.AUTOTUNE else parallel
        if kwargs.get("deterministic") is False:
            _report(
                recorder,
                f"Dataset.{method}(...{f', num_parallel_calls={shown}' if parallel else ''}, deterministic=False)",
            )
        result = original(self, *args, **kwargs)
        drawn = _random_ops(result) if method == "map" else []
        if drawn:
            function = getattr(args[0] if args else kwargs.get("map_func"), "__name__", "...")
            _report(
                recorder,
                f"Dataset.map({function}, num_parallel_calls={shown}) draws random numbers from shared state "
                f"in parallel ({', '.join(drawn)}): which element gets which draw changes from run to run",
                random=True,
            )
        return result

    return hooked


# Random ops whose draws come from shared state: in a parallel map, the order of the
# calls decides which element gets which draw (determinism-facts: order kept, draws moved).
STATEFUL_RANDOM = frozenset(
    {"RandomUniform", "RandomUniformInt", "RandomStandardNormal", "TruncatedNormal", "ParameterizedTruncatedNormal"}
    | {"Multinomial", "RandomShuffle", "RandomGamma", "RandomPoisson", "RandomPoissonV2", "RngReadAndSkip"}
    | {"RngSkip", "StatefulUniform", "StatefulUniformInt", "StatefulUniformFullInt", "StatefulStandardNormalV2"}
    | {"StatefulTruncatedNormal", "StatefulRandomBinomial"}
)
# Keras' random layers draw stateless numbers from a seed held in a variable they update.
VARIABLE_WRITES = frozenset({"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"})


def _random_ops(dataset: Any) -> list[str]:
    """The random ops that draw from shared state in a parallel map's function (empty if none, or not parallel)."""
    if "ParallelMap" not in type(dataset).__name__:
        return []
    try:
        graph = dataset._map_func.function.graph.as_graph_def()
    except AttributeError:  # another TensorFlow's internals: say nothing rather than guess
        return []
    ops = {n.op for n in graph.node} | {n.op for f in graph.library.function for n in f.node_def}
    found = sorted(ops & STATEFUL_RANDOM)
    if not found and ops & VARIABLE_WRITES:
        found = sorted(o for o in ops if o.startswith("StatelessRandom") and o != "StatelessRandomGetKeyCounter")
        found = [f"{op} seeded from a variable it updates" for op in found[:1]]
    return found


def _report(recorder: Recorder, call: str, random: bool = False) -> None:
    where = user_frame(2)
    recorder.emit(
        PipelineCall(call, random=random) if where is None else PipelineCall(call, where[0], where[1], random)
    )


class Replay:
    """Collects layer and gradient fingerprints of every step up to ``last_step``, emitted step by step."""

    def __init__(self, recorder: Recorder, last_step: int) -> None:
        self.recorder = recorder
        self.last_step = last_step
        self.layers: list[LayerProbe] = []
        self.gradients: dict[str, GradientProbe] = {}
        self.calls: Counter[str] = Counter()
        recorder.on_step(self._step_done)

    def active(self) -> bool:
        return self.recorder.budget.steps < self.last_step and not self.recorder.finalizing

    def layer_called(self, layer: Any, inputs: Any, outputs: Any) -> None:
        name = str(getattr(layer, "path", None) or layer.name)
        kind = type(layer).__name__

        def seen(arrays: list[np.ndarray], _structure: Any, count: int = len(tf.nest.flatten(inputs))) -> None:
            if not self.active():
                return
            self.calls[name] += 1
            self.layers.append(
                LayerProbe(
                    layer=name,
                    layer_class=kind,
                    call=self.calls[name],
                    inputs=combine([fingerprint(a) for a in arrays[:count]]),
                    outputs=combine([fingerprint(a) for a in arrays[count:]]),
                )
            )

        observe([inputs, outputs], seen)

    def gradients_applied(self, grads: Any, variables: list[Any]) -> None:
        names = variable_names(variables)
        for name, grad in zip(names, grads):
            if grad is None:
                continue
            sparse = isinstance(grad, tf.IndexedSlices)

            def seen(arrays: list[np.ndarray], _structure: Any, name: str = name, sparse: bool = sparse) -> None:
                if self.active():
                    self.gradients[name] = GradientProbe(combine([fingerprint(a) for a in arrays]), sparse)

            observe(grad, seen)

    def _step_done(self, steps: int) -> None:
        if self.layers or self.gradients:
            self.recorder.emit(ReplayEvent(steps, tuple(self.layers), self.gradients))
        self.layers, self.gradients, self.calls = [], {}, Counter()


def install_replay(recorder: Recorder, last_step: int) -> Replay:
    """Probes every layer call and gradient up to ``last_step``; install before the other hooks."""
    replay = Replay(recorder, last_step)
    layer_call = keras.layers.Layer.__call__

    @functools.wraps(layer_call)
    def probed_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        outputs = layer_call(self, *args, **kwargs)
        if not replay.recorder.finalizing:
            replay.layer_called(self, args[0] if args else kwargs.get("inputs"), outputs)
        return outputs

    keras.layers.Layer.__call__ = probed_call

    def wrap(apply: Any) -> Any:
        @functools.wraps(apply)
        def probed_apply(self: Any, grads: Any, trainable_variables: Any = None) -> Any:
            with recorder.entered("replay-apply") as outermost:
                if outermost:
                    if trainable_variables is not None:
                        trainable_variables = list(trainable_variables)
                    variables = trainable_variables or list(getattr(self, "_trainable_variables", []) or [])
                    grads = list(grads)
                    replay.gradients_applied(grads, variables)
                return apply(self, grads, trainable_variables)

        return probed_apply

    for cls in [BaseOptimizer, *subclasses(BaseOptimizer)]:
        if "apply" in vars(cls):
            cls.apply = wrap(vars(cls)["apply"])
    return replay

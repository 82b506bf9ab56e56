"""The run process on JAX: seeds, XLA's determinism flag, and steps seen inside ``jax.jit`` (imports JAX).

Keras trains on JAX through stateless functions compiled with ``jax.jit``:
``fit``'s train step and a hand-written loop alike call the model's
``stateless_call`` under ``jax.grad`` and the optimizer's ``stateless_apply``.
Those two are the anchors. Inside compiled code a Python hook runs only
while the step is traced, so it adds a ``jax.debug.callback`` that hands the
step's values to the recorder each time the step runs: the batch the model
trains on, and the optimizer's ``iterations`` and updated trainable variables.

Compiled calls run asynchronously. When ``--max-steps`` or the parent's stop
request may end the run, every outermost ``jax.jit`` call waits for its
callbacks, so that the run ends after exactly the step that spent the
budget. Losses inside the differentiated function are not observed (the
step's weights and batches are).
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import jax
import keras
import numpy as np
from keras.src.optimizers.base_optimizer import BaseOptimizer

from reprokit.core.backends import XLA_DETERMINISM_FLAG, Backend
from reprokit.worker.backends.common import KerasTree
from reprokit.worker.instrument import subclasses
from reprokit.worker.registry import OptimizerRecord, TrackedModel, variable_names

if TYPE_CHECKING:
    from reprokit.core.controls import Controls
    from reprokit.protocol import WorkerConfig
    from reprokit.worker.recorder import Recorder


def _traced(leaf: Any) -> bool:
    return isinstance(leaf, jax.core.Tracer)


class JaxTensors(KerasTree):
    """Reads JAX's values: concrete arrays now, traced ones through ``jax.debug.callback``."""

    def concrete(self, structure: Any) -> bool:
        return not any(_traced(leaf) for leaf in keras.tree.flatten(structure))

    def observe_traced_input(self, recorder: Recorder, tracked: TrackedModel, inputs: Any) -> None:
        leaves = [leaf for leaf in keras.tree.flatten(inputs) if leaf is not None]
        if not leaves:
            return
        structure = inputs if len(leaves) == len(keras.tree.flatten(inputs)) else None

        def seen(*values: Any) -> None:
            if not recorder.finalizing:
                recorder.seen_input(tracked, [np.asarray(v) for v in values], structure)

        jax.debug.callback(seen, *leaves)

    def observe_traced_loss(self, recorder: Recorder, loss: Any) -> None:
        return  # not observed inside a differentiated function (see the module's docstring)


class Jax:
    """The run process's side of JAX (see :class:`reprokit.worker.backends.Framework`)."""

    backend = Backend.JAX

    def __init__(self) -> None:
        self.tensors = JaxTensors()

    def apply(self, controls: Controls) -> None:
        keras.utils.set_random_seed(controls.seed)  # XLA_FLAGS was set before JAX started

    def install(self, recorder: Recorder, config: WorkerConfig) -> None:
        _hook_stateless_apply(recorder)
        _hook_stateless_call(recorder)
        _hook_fit(recorder)
        _hook_jit(recorder)
        recorder.before_finalize(jax.effects_barrier)  # the callbacks of the last steps

    def traced_step(self, recorder: Recorder, state: OptimizerRecord) -> None:
        return  # a compiled step is recorded by stateless_apply's callback

    def recording(self) -> bool:
        return False  # training batches are seen by stateless_call, under jax.grad

    def environment(self) -> dict[str, Any]:
        from importlib import metadata

        gpus = [d for d in jax.devices() if d.platform != "cpu"]
        return {
            "jax": jax.__version__,
            "jaxlib": metadata.version("jaxlib"),
            "gpus": [str(d) for d in gpus],
            "gpu_models": [d.device_kind for d in gpus],
            "op_determinism": XLA_DETERMINISM_FLAG in os.environ.get("XLA_FLAGS", "").split(),
            "prng_impl": str(getattr(jax.config, "jax_default_prng_impl", "")),
            "x64": bool(getattr(jax.config, "jax_enable_x64", False)),
        }


def _hook_stateless_apply(recorder: Recorder) -> None:
    """Records every optimizer step made through ``stateless_apply``, in compiled code or not."""

    def wrap(stateless_apply: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(stateless_apply)
        def hooked(self: Any, optimizer_variables: Any, grads: Any, trainable_variables: Any) -> Any:
            with recorder.entered("apply") as outermost:
                result = stateless_apply(self, optimizer_variables, grads, trainable_variables)
            if outermost and not recorder.finalizing:
                _record_when_run(recorder, self, optimizer_variables, result)
            return result

        return hooked

    for cls in [BaseOptimizer, *subclasses(BaseOptimizer)]:
        if "stateless_apply" in vars(cls):
            cls.stateless_apply = wrap(vars(cls)["stateless_apply"])


def _record_when_run(recorder: Recorder, optimizer: Any, optimizer_variables: Any, result: Any) -> None:
    """Hands the step's ``iterations`` (before and after) and updated weights to the recorder when the step runs.

    Everything is read in the callback: while ``fit`` runs, Keras keeps the
    values outside the variables (they hold none), so the optimizer's record
    starts from the ``iterations`` the first step brings.
    """
    new_trainable, new_optimizer = result
    index = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.iterations)
    arguments = [optimizer_variables[index], new_optimizer[index]]
    if not recorder.light:
        arguments += list(new_trainable)
    deliver = functools.partial(_delivered, recorder, optimizer, list(optimizer._trainable_variables), {})
    if recorder.tensors.concrete(arguments):
        deliver(*arguments)
    else:
        jax.debug.callback(deliver, *arguments)


def _delivered(
    recorder: Recorder,
    optimizer: Any,
    variables: list[Any],
    layouts: dict[int, list[tuple[list[int], list[str]]]],
    before: Any,
    after: Any,
    *updated: Any,
) -> None:
    """A step ran: its optimizer's ``iterations`` before and after it, and (unless light) the updated weights."""
    if recorder.finalizing:
        return
    state = recorder.optimizer_state(optimizer, variables, int(np.asarray(before)))
    if recorder.light:
        recorder.count_light(state, int(np.asarray(after)), None)
        return
    layout = layouts.setdefault(id(state), _layout(state, variables))
    values = [[np.asarray(updated[i]) for i in mine] for mine, _ in layout]
    recorder.record(state, int(np.asarray(after)), values=values, names=[names for _, names in layout])


def _layout(state: OptimizerRecord, variables: list[Any]) -> list[tuple[list[int], list[str]]]:
    """For each model the optimizer trains: which of its updated variables are the model's, and their names."""
    layout = []
    for tracked in state.tracked:
        weights = tracked.weights()
        name_of = dict(zip((id(w) for w in weights), variable_names(weights)))
        mine = [i for i, v in enumerate(variables) if id(v) in name_of]
        layout.append((mine, [name_of[id(variables[i])] for i in mine]))
    return layout


def _hook_fit(recorder: Recorder) -> None:
    """Keeps a model's initial weights as ``fit`` starts: while it runs, Keras on JAX empties the variables."""
    fit = keras.Model.fit

    @functools.wraps(fit)
    def model_fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        tracked = recorder.register(self)
        if not recorder.light and tracked.step == 0 and tracked.initial is None and self.built:
            with contextlib.suppress(Exception):  # a model reprokit cannot read has no init event
                tracked.initial = [np.asarray(v) for v in tracked.weights()]
        return fit(self, *args, **kwargs)

    keras.Model.fit = model_fit


def _hook_stateless_call(recorder: Recorder) -> None:
    """Observes the batches a model trains on: its ``stateless_call`` under ``jax.grad``."""
    stateless_call = keras.layers.Layer.stateless_call

    @functools.wraps(stateless_call)
    def hooked(self: Any, trainable_variables: Any, non_trainable_variables: Any, *args: Any, **kwargs: Any) -> Any:
        if not isinstance(self, keras.Model) or recorder.finalizing:
            return stateless_call(self, trainable_variables, non_trainable_variables, *args, **kwargs)
        tracked = recorder.register(self)
        with recorder.entered("model") as outermost:
            inputs = args[0] if args else kwargs.get("inputs")
            if outermost and (kwargs.get("training") is True or _differentiated(trainable_variables)):
                recorder.observe_input(tracked, inputs)
            return stateless_call(self, trainable_variables, non_trainable_variables, *args, **kwargs)

    keras.layers.Layer.stateless_call = hooked


def _differentiated(values: Any) -> bool:
    """Whether ``values`` are being differentiated (``jax.grad`` traces them)."""
    return any(type(leaf).__module__.endswith("interpreters.ad") for leaf in keras.tree.flatten(values))


def _hook_jit(recorder: Recorder) -> None:
    """Makes outermost ``jax.jit`` calls wait for their steps' callbacks while the run may end early."""
    jit = jax.jit

    @functools.wraps(jit)
    def observed_jit(fun: Any = None, *args: Any, **kwargs: Any) -> Any:
        if fun is None:
            return lambda f: observed_jit(f, *args, **kwargs)
        return _Observed(jit(fun, *args, **kwargs), recorder)

    jax.jit = observed_jit


class _Observed:
    """A ``jax.jit`` function whose outermost calls end the run when they spent the step budget."""

    def __init__(self, compiled: Any, recorder: Recorder) -> None:
        self._compiled = compiled
        self._recorder = recorder
        functools.update_wrapper(self, compiled)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        recorder = self._recorder
        with recorder.entered("jit") as outermost:
            before = recorder.budget.steps
            result = self._compiled(*args, **kwargs)
        if outermost and recorder.budget.limited and not recorder.finalizing:
            jax.block_until_ready(result)  # type: ignore[no-untyped-call]
            jax.effects_barrier()  # type: ignore[no-untyped-call]
            recorder.budget.after_call(before)  # outside fit: the run ends here
        return result

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        return self if instance is None else functools.partial(self, instance)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._compiled, name)


FRAMEWORK = Jax()

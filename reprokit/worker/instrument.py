"""Hooks that observe training inside a run process, the same on every backend.

Every way of training a Keras 3 model ends in an optimizer step, so the
optimizer's ``apply`` is the anchor: executed eagerly (hand-written loops,
``run_eagerly=True``, every step on PyTorch), the hook fingerprints the
weights right after the step; in code being compiled (a ``tf.function``, a
``jax.jit``), the run's backend records the step when it runs
(:meth:`~reprokit.worker.backends.Framework.traced_step`). Input batches are
observed where a model is called while a gradient may be taken
(:meth:`~reprokit.worker.backends.Framework.recording`), and the script's
own seeds where it pins them. Nothing here changes what the training
computes. What the hooks observe goes to a
:class:`~reprokit.worker.recorder.Recorder`, which sends it to the parent as
:mod:`reprokit.protocol.events` events.
"""

from __future__ import annotations

import functools
import inspect
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras.src.optimizers.base_optimizer import BaseOptimizer

from reprokit.protocol import EvaluateEvent, HistoryEvent, Pin
from reprokit.worker import state
from reprokit.worker.backends import Framework
from reprokit.worker.recorder import PROBE_ROWS, Recorder

__all__ = ["Recorder", "install", "subclasses", "user_frame"]


def user_frame(depth: int) -> tuple[str, int] | None:
    """The file and line of the caller ``depth`` frames up, if it is the user's code (not a library's or reprokit's)."""
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
    ("torch", "manual_seed"),
    ("torch", "use_deterministic_algorithms"),
)


def _wrap_pin(recorder: Recorder, module_name: str, attr: str) -> None:
    framework = "tensorflow" if module_name.startswith("keras._tf_keras") else module_name.partition(".")[0]
    if framework in _FRAMEWORKS and framework not in sys.modules:
        return  # another backend's framework: not imported by this run, nor by the script yet
    try:
        module: Any = sys.modules.get(module_name) or __import__(module_name, fromlist=["_"])
        original = getattr(module, attr)
    except (ImportError, AttributeError):
        return

    @functools.wraps(original)
    def pinned(*args: Any, **kwargs: Any) -> Any:
        where = user_frame(1)
        if where is not None and not recorder.finalizing:
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            recorder.emit(
                Pin(
                    call=f"{module_name.replace('tensorflow', 'tf')}.{attr}({shown})",
                    kind="determinism" if attr in ("enable_op_determinism", "use_deterministic_algorithms") else "seed",
                    file=where[0],
                    line=where[1],
                )
            )
        return original(*args, **kwargs)

    setattr(module, attr, pinned)


_FRAMEWORKS = ("tensorflow", "torch", "jax")


def install(recorder: Recorder, framework: Framework) -> None:
    """Installs every backend-free hook; call once, after the backend's and before the user's script runs."""
    _hook_model_calls(recorder, framework)
    _hook_fit(recorder)
    _hook_evaluate(recorder)
    _hook_optimizer_steps(recorder, framework)
    for module_name, attr in _PINS:
        _wrap_pin(recorder, module_name, attr)


def _hook_model_calls(recorder: Recorder, framework: Framework) -> None:
    """Registers every model called, and observes the inputs of training calls."""
    layer_call = keras.Model.__call__

    def model_call(self: Any, *args: Any, **kwargs: Any) -> Any:
        tracked = recorder.register(self)
        with recorder.entered("model") as outermost:
            if outermost and not recorder.finalizing and framework.recording():
                recorder.observe_input(tracked, args[0] if args else kwargs.get("inputs"))
            return layer_call(self, *args, **kwargs)

    keras.Model.__call__ = model_call


def _hook_fit(recorder: Recorder) -> None:
    """Takes the probe batch and the per-epoch history of ``fit``; honours max_steps."""
    fit = keras.Model.fit

    signature = inspect.signature(fit)

    @functools.wraps(fit)
    def model_fit(self: Any, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        tracked = recorder.register(self)
        recorder.budget.raise_if_spent()
        if tracked.probe is None and _is_array_like(x):
            tracked.set_probe(keras.tree.map_structure(lambda a: np.asarray(a[:PROBE_ROWS]), x))
        if recorder.whole_state:  # a resume check: the callbacks' state as each epoch begins
            bound = signature.bind(self, x, *args, **kwargs)
            callbacks = list(bound.arguments.get("callbacks") or [])
            bound.arguments["callbacks"] = [*callbacks, state.CallbackWatch(recorder.emit, tracked, callbacks)]
            _, x, *rest = bound.args
            args, kwargs = tuple(rest), bound.kwargs
        with recorder.budget.fitting(self):
            history = fit(self, x, *args, **kwargs)
        logs = getattr(history, "history", None) or {}
        recorder.emit(HistoryEvent(tracked.label, {k: tuple(float(v) for v in vals) for k, vals in logs.items()}))
        return history

    keras.Model.fit = model_fit


def _hook_evaluate(recorder: Recorder) -> None:
    """Reports the results of every ``Model.evaluate`` the script calls (``fit``'s validation excluded)."""
    evaluate = keras.Model.evaluate

    @functools.wraps(evaluate)
    def model_evaluate(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = evaluate(self, *args, **kwargs)
        if not recorder.budget.fitting_now and not recorder.finalizing:
            results = _evaluation_results(self, result)
            if results:
                recorder.emit(EvaluateEvent(recorder.register(self).label, results))
        return result

    keras.Model.evaluate = model_evaluate


def _evaluation_results(model: Any, result: Any) -> dict[str, float]:
    """``evaluate``'s results by metric name, whatever form the script asked them in."""
    if isinstance(result, dict):
        named = result
    else:
        try:  # the metrics as evaluate left them: {"loss": ..., "accuracy": ...}
            named = dict(model.get_metrics_result())
        except Exception:  # noqa: BLE001 - a model without Keras' metrics API
            values = result if isinstance(result, (list, tuple)) else [result]
            named = dict(zip(getattr(model, "metrics_names", None) or ["loss"], values))
    found = {}
    for name, value in named.items():
        try:
            found[str(name)] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue  # a metric that is no single number (a confusion matrix)
    return found


def _hook_optimizer_steps(recorder: Recorder, framework: Framework) -> None:
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
            if state is not None and recorder.tensors.concrete(grads):
                recorder.after_step(state)
            elif state is not None:
                framework.traced_step(recorder, state)
            return result

        return hooked

    for cls in [BaseOptimizer, *subclasses(BaseOptimizer)]:
        if "apply" in vars(cls):
            cls.apply = wrap_apply(vars(cls)["apply"])


def subclasses(cls: type) -> list[type]:
    """Every subclass of ``cls``, direct or not (to hook methods they override)."""
    found: list[type] = []
    direct: list[type] = cls.__subclasses__()
    for sub in direct:
        found.append(sub)
        found.extend(subclasses(sub))
    return found


def _is_array_like(x: Any) -> bool:
    leaves = keras.tree.flatten(x) if x is not None else []
    return bool(leaves) and all(isinstance(a, np.ndarray) or keras.ops.is_tensor(a) for a in leaves)

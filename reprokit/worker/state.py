"""The whole training state of a model, as a resume check observes it (``WorkerConfig.whole_state``).

A run that is stopped and started again resumes exactly only if it restores
more than the weights. Besides a model's weights, its state here is:

* the variables of the optimizer that trains it (its iterations, learning
  rate and slots), named ``optimizer:<path>``;
* the state of every random generator of its layers (Keras
  ``SeedGenerator``: dropout, augmentation, noise) and of Keras' global
  one, named ``random:<path>`` and ``random:keras-global``;
* the global generators of Python (``random:python``) and NumPy
  (``random:numpy``), fingerprinted on the host.

The prefixes end in a colon, which no Keras path holds, so a report can tell
the kinds apart (:mod:`reprokit.checking.resume`). Also here: the state of the
script's ``fit`` callbacks as each epoch begins (:class:`CallbackWatch`).
Backend-free: it reads values through the Keras API.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np

from reprokit.core.fingerprint import step_fingerprint
from reprokit.protocol import CallbackStateEvent, Event
from reprokit.worker.registry import TrackedModel, variable_names

OPTIMIZER = "optimizer:"
RANDOM = "random:"
PYTHON_RANDOM = "random:python"
NUMPY_RANDOM = "random:numpy"
KERAS_RANDOM = "random:keras-global"
SCALARS = ("/iteration", "/iterations", "/learning_rate")
"""The optimizer's variables whose values (not only fingerprints) a report shows."""


def is_weight(name: str) -> bool:
    """Whether ``name`` is one of the model's weights (not the optimizer's or a generator's state)."""
    return not name.startswith((OPTIMIZER, RANDOM))


def extra_variables(tracked: TrackedModel) -> tuple[list[str], list[Any]]:
    """The state variables besides the weights: the optimizer's, the layers' generators' and Keras' global one."""
    names: list[str] = []
    variables: list[Any] = []
    optimizer = tracked.optimizer
    if optimizer is not None:
        found = list(getattr(optimizer, "variables", []))
        names += [OPTIMIZER + n for n in variable_names(found)]
        variables += found
    model = tracked.model
    if model is not None:
        weights = {id(w) for w in model.weights}
        generators = [v for v in getattr(model, "variables", []) if id(v) not in weights]
        names += [RANDOM + n for n in variable_names(generators)]
        variables += generators
    generator = _keras_global_generator()
    if generator is not None:
        names.append(KERAS_RANDOM)
        variables.append(generator.state)
    return names, variables


def _keras_global_generator() -> Any:
    """Keras' global ``SeedGenerator``, if the script made it draw (it is made on first use)."""
    from keras.src.backend.common import global_state

    return global_state.get_global_attribute("global_seed_generator")


def global_generators() -> dict[str, str]:
    """Fingerprints of the states of Python's and NumPy's global generators now."""
    _, internal, gauss = random.getstate()
    legacy: Any = np.random.get_state()
    return {
        PYTHON_RANDOM: step_fingerprint(np.asarray([*internal, -1 if gauss is None else hash(gauss)], dtype=np.int64)),
        NUMPY_RANDOM: step_fingerprint(np.concatenate([np.asarray(legacy[1], np.int64), [legacy[2], legacy[3]]])),
    }


def scalars(names: Sequence[str], values: Sequence[np.ndarray]) -> dict[str, float]:
    """The optimizer's one-number variables (iterations, learning rate) by name, for a report to show."""
    found = {}
    for name, value in zip(names, values):
        if name.startswith(OPTIMIZER) and name.endswith(SCALARS) and np.size(value) == 1:
            with contextlib.suppress(TypeError, ValueError):
                found[name] = float(np.asarray(value).reshape(-1)[0])
    return found


def readable(variables: Sequence[Any]) -> list[np.ndarray] | None:
    """The variables' values now, or None if one cannot be read (JAX empties them while ``fit`` runs)."""
    try:
        return [np.asarray(v) for v in variables]
    except Exception:  # noqa: BLE001 - an unreadable variable: the state is not observed here
        return None


PLAIN = (bool, int, float, str, np.generic)


class CallbackWatch(keras.callbacks.Callback):  # type: ignore[misc]
    """Reports the state of the script's ``fit`` callbacks as each epoch begins (last in the list).

    Args:
        emit: sends an event to the parent.
        tracked: the model.
        watched: the script's own callbacks.
    """

    def __init__(self, emit: Callable[[Event], None], tracked: TrackedModel, watched: Sequence[Any]) -> None:
        super().__init__()
        self._emit = emit
        self._tracked = tracked
        self._watched = [
            c for c in watched if not isinstance(c, keras.callbacks.History | keras.callbacks.ProgbarLogger)
        ]

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        tracked = self._tracked
        if tracked.optimizer is None:
            tracked.optimizer = getattr(self.model, "optimizer", None)  # fit's, before its first step
        if tracked.initial is not None and tracked.step == 0:  # weights kept as fit began (JAX empties them):
            kept = readable(tracked.weights())  # take them again, after on_train_begin restored a backup
            tracked.initial = kept if kept is not None else tracked.initial
            tracked.initial_state = readable(extra_variables(tracked)[1])
        state: dict[str, str] = {}
        classes = [type(c).__name__ for c in self._watched]
        for i, callback in enumerate(self._watched):
            name = classes[i] if classes.count(classes[i]) == 1 else f"{classes[i]}#{classes[:i].count(classes[i]) + 1}"
            for attr, value in sorted(vars(callback).items()):
                if not attr.startswith("_") and (value is None or isinstance(value, PLAIN)):
                    state[f"{name}.{attr}"] = repr(value.item() if isinstance(value, np.generic) else value)
        self._emit(CallbackStateEvent(self._tracked.label, epoch, self._tracked.step, state))

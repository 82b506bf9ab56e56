"""Seeds and op determinism in the user's own process: ``with reprokit.controlled(seed=42):``.

The library's counterpart of a run process's controls, for code that cannot
be run in a fresh process (a notebook, a test). It works on the Keras backend
the process already uses, and says what it could not do there.

May import: ``reprokit.core``.
"""

from __future__ import annotations

import os
import random
import warnings
from typing import Any

from reprokit.core.controls import DEFAULT_SEED, Controls


class ReprokitWarning(UserWarning):
    """Something reprokit could not do in this process (e.g. undo op determinism)."""


_KERAS_SEED_STATE = ("global_random_seed", "global_seed_generator")


class controlled:  # used like a function: ``with reprokit.controlled(seed=42):``
    """Runs a block with every seed fixed and op determinism on, on the process's Keras backend.

    Example:
        ```python
        with reprokit.controlled(seed=42) as settings:
            model = build_model()
            model.fit(x, y)
        print(settings.not_restored)
        ```

    It seeds Python's ``random``, NumPy's global generator, Keras' seed
    generator and the backend's (``keras.utils.set_random_seed``), and turns
    op determinism on: ``tf.config.experimental.enable_op_determinism()`` on
    TensorFlow, ``torch.use_deterministic_algorithms(True)`` on PyTorch. On
    exit it restores those seeds (and PyTorch's determinism setting). It
    cannot undo TensorFlow's op determinism (TensorFlow has no reliable way
    to switch it off), set JAX's (``XLA_FLAGS``, read when JAX starts), nor
    give ``PYTHONHASHSEED`` effect (it only works when set before Python
    starts); ``not_restored`` lists what stayed changed or did not apply, and a
    :class:`ReprokitWarning` says so on exit unless ``warn=False``.

    Args:
        seed: the seed for ``random``, NumPy, Keras and its backend.
        op_determinism: whether to turn op determinism on.
        warn: whether to warn on exit about what could not be restored.
    """

    def __init__(self, seed: int = DEFAULT_SEED, op_determinism: bool = True, warn: bool = True) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"expected a non-negative integer seed, received {seed!r}")
        self.controls = Controls(seed, op_determinism)
        self.warn = warn
        self.not_restored: list[str] = []
        self._saved: dict[str, Any] = {}
        self._backend = ""

    def __enter__(self) -> controlled:
        import keras
        import numpy as np
        from keras.src.backend.common import global_state

        self._backend = keras.backend.backend()
        self._saved = {
            "random": random.getstate(),
            "numpy": np.random.get_state(),
            "keras": {name: global_state.get_global_attribute(name) for name in _KERAS_SEED_STATE},
            **_save_backend(self._backend),
        }
        self.not_restored = []
        keras.utils.set_random_seed(self.controls.seed)
        if self.controls.op_determinism:
            self.not_restored += _determinism_on(self._backend)
        if os.environ.get("PYTHONHASHSEED") != str(self.controls.seed):
            self.not_restored.append("PYTHONHASHSEED was not applied (it only works when set before Python starts)")
        return self

    def __exit__(self, *exc_info: object) -> None:
        import numpy as np
        from keras.src.backend.common import global_state

        random.setstate(self._saved["random"])
        np.random.set_state(self._saved["numpy"])
        for name, value in self._saved["keras"].items():
            global_state.set_global_attribute(name, value)
        _restore_backend(self._backend, self._saved)
        if self.warn and self.not_restored:
            warnings.warn("reprokit.controlled: " + "; ".join(self.not_restored), ReprokitWarning, stacklevel=2)


def _save_backend(backend: str) -> dict[str, Any]:
    if backend == "tensorflow":
        from tensorflow.python.eager import context
        from tensorflow.python.framework import config as tf_config

        return {"tf_seed": context.global_seed(), "tf_determinism": tf_config.is_op_determinism_enabled()}
    if backend == "torch":
        import torch

        return {"torch_rng": torch.get_rng_state(), "torch_determinism": torch.are_deterministic_algorithms_enabled()}
    return {}


def _determinism_on(backend: str) -> list[str]:
    """Turns op determinism on; returns what cannot be undone or did not apply."""
    if backend == "tensorflow":
        import tensorflow as tf
        from tensorflow.python.framework import config as tf_config

        was_on = tf_config.is_op_determinism_enabled()
        tf.config.experimental.enable_op_determinism()
        return [] if was_on else ["op determinism stays enabled (TensorFlow cannot switch it off reliably)"]
    if backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True)
        return []
    if backend == "jax" and "--xla_gpu_deterministic_ops=true" not in os.environ.get("XLA_FLAGS", ""):
        import jax

        if any(d.platform != "cpu" for d in jax.devices()):
            return [
                "op determinism was not applied (on JAX it is XLA_FLAGS=--xla_gpu_deterministic_ops=true, "
                "read when JAX starts)"
            ]
    return []


def _restore_backend(backend: str, saved: dict[str, Any]) -> None:
    if backend == "tensorflow":
        import tensorflow as tf

        tf.random.set_seed(saved["tf_seed"])
    elif backend == "torch":
        import torch

        torch.set_rng_state(saved["torch_rng"])
        torch.use_deterministic_algorithms(saved["torch_determinism"])

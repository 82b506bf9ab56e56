"""Reading values out of eager or traced TensorFlow code (imports TensorFlow).

What the hooks observe may be concrete (eager code) or symbolic (while a
``tf.function`` is traced): :func:`observe` hands the values to a callback
either way, through a ``tf.py_function`` in a graph. XLA-compiled code
cannot call Python, so nothing there is observed this way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.python.framework import ops
from tensorflow.python.ops import control_flow_util

Observer = Callable[[list[np.ndarray], Any], None]
"""Receives the arrays of a structure, and the structure itself if they can be packed back into it (else None)."""


def observe(structure: Any, callback: Observer) -> None:
    """Hands the values in ``structure`` to ``callback``, eagerly or in-graph (not inside XLA)."""
    flat = flatten(structure)
    if flat is None:
        return
    tensors, packable = flat
    if tf.executing_eagerly():
        callback([np.asarray(t) for t in tensors], packable)
        return
    if in_xla():
        return  # XLA-compiled code cannot call back into Python

    def in_graph(*values: tf.Tensor) -> list[Any]:
        callback([v.numpy() for v in values], packable)
        return []

    tf.py_function(in_graph, tensors, Tout=[])


def flatten(structure: Any) -> tuple[list[tf.Tensor], Any] | None:
    """The tensors in ``structure``, and the structure itself if they can be packed back into it.

    None if ``structure`` holds no tensors, or things that are not tensors.
    """
    try:
        flat = tf.nest.flatten(structure, expand_composites=True)
        plain = not any(isinstance(x, tf.__internal__.CompositeTensor) for x in tf.nest.flatten(structure))
        tensors = [tf.convert_to_tensor(x) for x in flat if x is not None]
    except (TypeError, ValueError):
        return None
    if not tensors:
        return None
    return tensors, structure if plain and len(tensors) == len(flat) else None


def in_xla() -> bool:
    """Whether the code being traced now is compiled by XLA (and cannot call Python)."""
    return bool(control_flow_util.GraphOrParentsInXlaContext(ops.get_default_graph()))

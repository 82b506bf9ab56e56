"""What JAX and PyTorch read the same way: nested values through ``keras.tree`` (backend-free)."""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import numpy as np


class KerasTree:
    """Reads nested values with ``keras.tree``; a backend says how one value becomes a NumPy array."""

    def numpy(self, value: Any) -> np.ndarray:
        """A concrete value as a NumPy array."""
        return np.asarray(value)

    def arrays(self, structure: Any) -> tuple[list[np.ndarray], Any] | None:
        """The arrays in a concrete ``structure``, and the structure if they can be packed back into it."""
        try:
            leaves = keras.tree.flatten(structure)
            arrays = [self.numpy(leaf) for leaf in leaves if leaf is not None]
        except (TypeError, ValueError, RuntimeError):
            return None
        if not arrays:
            return None
        return arrays, structure if len(arrays) == len(leaves) else None

    def pack(self, structure: Any, arrays: list[np.ndarray]) -> Any:
        """``arrays`` packed into ``structure``'s shape."""
        return keras.tree.pack_sequence_as(structure, arrays)

    def flatten(self, structure: Any) -> list[Any]:
        """The leaves of ``structure``."""
        return list(keras.tree.flatten(structure))

    def iterations(self, optimizer: Any) -> int:
        """The optimizer's step count now."""
        return int(self.numpy(optimizer.iterations.value))

    def outside_trace(self) -> contextlib.AbstractContextManager[Any]:
        """Nothing to leave: variables read their current values."""
        return contextlib.nullcontext()

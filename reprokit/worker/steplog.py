"""What traced optimizer steps saw, kept on the device and read in batches (part of the recorder).

Each traced step appends one **record** to a ``uint32`` variable, all in the
graph: which optimizer stepped, its ``iterations``, the digest of every
weight after the update and of every batch it trained on, the digests of
the batch's rows, and the loss (:mod:`reprokit.worker.graphprint`). A
``tf.py_function`` reads the buffer only when a flush is due: every
:data:`EVERY` steps, at steps 1, 2, 4, 8, … (when the recorder also takes
the weights' snapshots and the model's probe batch), and at every step from
half the ``--max-steps`` budget on (so the budget ends the run at its exact
step). A few bytes per variable leave the device, and Python runs once per
:data:`EVERY` steps instead of once per step. A run with sampled
fingerprints (``Target.sampled``) digests its weights only at the steps the
buffer is read after (their record's weights are empty at the others), so
a step costs no pass over the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from reprokit.core.fingerprint import combine, rows_text
from reprokit.worker.graphprint import as_uint64, digests, hex_digest, row_digests

EVERY = 64
"""Steps between two reads of the buffer (at most)."""


@dataclass(frozen=True)
class Record:
    """One traced optimizer step, as read back.

    Attributes:
        state: the recorder's number for the optimizer that stepped.
        iterations: the optimizer's ``iterations`` after the step.
        weights: the digest of each weight it trains (hex), in order.
        loss: the loss its gradient was taken of (None: not seen).
        inputs: per batch it trained on, its fingerprint and its rows' digests (see ``fingerprint.rows_text``).
    """

    state: int
    iterations: int
    weights: tuple[str, ...]
    loss: float | None
    inputs: tuple[tuple[str, str], ...]


class StepLog:
    """The buffer of records, and the graph code that fills and flushes it.

    Args:
        every: flush at least every this many steps (1: every step, as for ``explain``'s replay).
        max_steps: the run's ``--max-steps`` (flush every step from half of it on).
    """

    def __init__(self, every: int = EVERY, max_steps: int | None = None) -> None:
        self._every = every
        self._max_steps = max_steps
        self._buffer: Any = None

    @property
    def buffer(self) -> Any:
        """The ``uint32`` variable holding the records not read yet (made outside any graph on first use)."""
        if self._buffer is None:
            with tf.init_scope():
                self._buffer = tf.Variable(
                    tf.zeros([0], tf.uint32), shape=tf.TensorShape([None]), trainable=False, name="reprokit_steps"
                )
        return self._buffer

    def append(
        self,
        state: int,
        iterations: tf.Tensor,
        weights: Sequence[tf.Tensor],
        loss: tf.Tensor | None,
        batches: Sequence[Sequence[tf.Tensor]],
    ) -> Any:
        """Graph code: appends this step's record; returns the op that does it."""
        parts = [tf.constant([state], tf.uint32), _bits64(tf.cast(iterations, tf.int64))]
        if loss is None:
            parts.append(tf.zeros([3], tf.uint32))
        else:
            parts += [tf.ones([1], tf.uint32), _bits64(tf.cast(tf.reshape(loss, []), tf.float64))]
        parts += [tf.constant([len(weights)], tf.uint32), tf.reshape(digests(weights), [-1])]
        parts.append(tf.constant([len(batches)], tf.uint32))
        for tensors in batches:
            rows = row_digests(tensors[0])
            parts += [tf.constant([len(tensors)], tf.uint32), tf.reshape(digests(tensors), [-1])]
            parts += [tf.reshape(tf.cast(tf.shape(rows)[0], tf.uint32), [1]), tf.reshape(rows, [-1])]
        buffer = self.buffer
        return buffer.assign(tf.concat([buffer, *parts], 0), read_value=False)

    def due(self, iterations: tf.Tensor) -> tf.Tensor:
        """Graph code: whether the buffer is read after the step that made ``iterations``."""
        it = tf.cast(iterations, tf.int64)
        due = tf.logical_or(tf.equal(it % self._every, 0), power_of_two(it))
        if self._max_steps is not None:
            due = tf.logical_or(due, it >= self._max_steps // 2)
        return due

    def clear(self) -> Any:
        """Graph or eager code: empties the buffer."""
        return self.buffer.assign(tf.zeros([0], tf.uint32), read_value=False)

    def read(self) -> list[Record]:
        """Eagerly: the records not read yet, and the buffer emptied."""
        if self._buffer is None:
            return []
        values = self._buffer.numpy()
        self.clear()
        return decode(values)


def power_of_two(iterations: tf.Tensor) -> tf.Tensor:
    """Graph code: whether ``iterations`` (int64, ≥ 1) is 1, 2, 4, 8, …"""
    return tf.logical_and(iterations > 0, tf.equal(tf.bitwise.bitwise_and(iterations, iterations - 1), 0))


def _bits64(x: tf.Tensor) -> tf.Tensor:
    return tf.reshape(tf.bitcast(x, tf.uint32), [2])


def decode(values: np.ndarray) -> list[Record]:
    """The records in a buffer's values, in the order they were appended."""
    read = _Reader(np.asarray(values, dtype=np.uint32))
    records = []
    while not read.done:
        state = read.word()
        iterations = int(read.words(2).view(np.int64)[0])
        has_loss, loss_bits = read.word(), read.words(2)
        weights = read.lanes(read.word())
        batches = []
        for _ in range(read.word()):
            parts = read.lanes(read.word())
            rows = read.lanes(read.word())
            batches.append((combine([hex_digest(p) for p in parts]), rows_text(as_uint64(rows))))
        loss = float(loss_bits.view(np.float64)[0]) if has_loss else None
        records.append(Record(state, iterations, tuple(hex_digest(w) for w in weights), loss, tuple(batches)))
    return records


class _Reader:
    """Reads a buffer's words in order."""

    def __init__(self, values: np.ndarray) -> None:
        self._values = values
        self._at = 0

    @property
    def done(self) -> bool:
        return self._at >= self._values.size

    def words(self, n: int) -> np.ndarray:
        found = self._values[self._at : self._at + n]
        self._at += n
        return found

    def word(self) -> int:
        return int(self.words(1)[0])

    def lanes(self, n: int) -> np.ndarray:
        return self.words(2 * n).reshape(n, 2)

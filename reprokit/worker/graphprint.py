"""Fingerprints computed where the tensors live: in the graph, on the device, from their raw bits.

A run observes every optimizer step. Sending every weight to Python after
every step and hashing it there costs a device-to-host copy and a pass in
Python per step, growing with the model; here each variable is reduced
where it lives to a **64-bit digest**, and only those 8 bytes per variable
leave the device (see :mod:`reprokit.worker.steplog`, which buffers them in the
graph and reads them in batches of steps). On a CPU that is TensorFlow's
FarmHash64 kernel (:func:`digests`); on a GPU, where that kernel does not
run, two lanes of integer sums computed in parallel on the device
(:func:`lane_digests`). Runs compared with each other run on the same kind
of device, so they always use the same digest.

The lane digest of a tensor's 32-bit words ``w_i`` (its raw bits: float32 words
as they are, 64-bit values as two words, 8- and 16-bit values widened) is::

    lane j = Σ_i (w_i XOR k_ij) · m_ij      mod 2**32     (j = 1, 2)

with ``k_ij`` and odd ``m_ij`` fixed functions of the position ``i`` (affine
in ``i``, different for the two lanes; precomputed for small tensors, so a
step adds a handful of graph ops whatever the number of variables). What
it detects, exactly:

* **any change confined to one 32-bit word** — one flipped bit anywhere, one
  changed float32, half of a changed float64 — changes both lanes, always:
  each term is a bijection of ``w_i`` (XOR and multiplication by an odd
  number are invertible mod 2**32), so it moves and the sum moves;
* two words exchanged (a permuted row, swapped units), unless they are equal:
  the multipliers depend on the position;
* several changed words (a sparse update of one embedding row, a
  nondeterministic scatter): the lanes move unless the changes cancel in
  both sums at once, which for unrelated changes happens with odds of about
  2**-64. Whether two runs are identical also rests on the final weights'
  full BLAKE2b fingerprint (:func:`reprokit.core.fingerprint.fingerprint`): a
  collision could only move where a divergence is seen.

Sums of integers mod 2**32 do not depend on the order of the additions, so
the digest is the same bits on every device and with any number of threads
or any reduction order (GPU atomics included): it can never report a
difference that is not there.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

SMALL = 1 << 18
"""Tensors of at most this many words are digested together, with precomputed per-position constants (fewest ops)."""

_A = np.array([0x9E3779B1, 0x85EBCA77], dtype=np.uint32)
_B = np.array([0x7F4A7C15, 0xC2B2AE3D], dtype=np.uint32)
_C = np.array([0x27D4EB2F, 0x165667B1], dtype=np.uint32)
_D = np.array([0x61C88647, 0xD3A2646C], dtype=np.uint32)


def words(x: tf.Tensor) -> tf.Tensor:
    """The raw bits of ``x`` as a flat vector of 32-bit words (``uint32``)."""
    x = tf.reshape(x, [-1])
    if x.dtype == tf.string:
        x = tf.strings.to_hash_bucket_fast(x, 2**31 - 1)
    if x.dtype == tf.bool:
        return tf.cast(x, tf.uint32)
    size = x.dtype.size
    if size == 4:
        return x if x.dtype == tf.uint32 else tf.bitcast(x, tf.uint32)
    if size == 8:
        return tf.reshape(tf.bitcast(x, tf.uint32), [-1])
    if size == 2:
        return tf.cast(tf.bitcast(x, tf.uint16), tf.uint32)
    if size == 1:
        return tf.cast(tf.bitcast(x, tf.uint8), tf.uint32)
    return tf.reshape(tf.bitcast(x, tf.uint32), [-1])  # complex128: four words a value


def table(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The constants ``k`` and odd ``m`` of positions ``0 … n-1``, each ``uint32[n, 2]`` (one column per lane)."""
    return _table(n)


@functools.lru_cache(maxsize=32)
def _table(n: int) -> tuple[np.ndarray, np.ndarray]:
    i = np.arange(n, dtype=np.uint32)[:, None]
    with np.errstate(over="ignore"):
        return i * _A + _B, (i * _C + _D) | np.uint32(1)


def _lanes(w: tf.Tensor, n: int | None) -> tf.Tensor:
    """The terms ``(w XOR k) · m`` of each word of the 1-D ``w``, as ``uint32[len(w), 2]``."""
    if n is not None and n <= SMALL:
        k, m = (tf.constant(t) for t in table(n))
    else:
        i = tf.cast(tf.range(tf.size(w, out_type=tf.int64)), tf.uint32)[:, None]
        k = i * tf.constant(_A) + tf.constant(_B)
        m = (i * tf.constant(_C) + tf.constant(_D)) | 1
    return (w[:, None] ^ k) * m


def digests(tensors: Sequence[Any]) -> tf.Tensor:
    """One digest per tensor (or variable), as ``uint32[len(tensors), 2]``: where each lives.

    On a GPU, and for small tensors anywhere, the sums of
    :func:`lane_digests` (in parallel on the device; all small ones in one
    pass). Large tensors elsewhere: TensorFlow's ``Fingerprint`` kernel (FarmHash64 of the raw
    bytes), which on a CPU is the fastest there is: 0.7 ms for 1.1 M float32,
    4 ms for 10 M, 70 ms for 100 M on this 2-core machine, against 2.3, 8.8
    and 98 ms for the lane sums (XLA-fused) and 1.9, 17 and 183 ms for CRC-32
    in Python after a copy. FarmHash64 is sequential (no reduction order to
    vary); a change in the bytes leaves it unchanged with odds of 2**-64.
    """
    if not tensors:
        return tf.zeros([0, 2], tf.uint32)
    summed = [j for j, t in enumerate(tensors) if _on_gpu(t) or _words_known(t) <= SMALL]
    found: dict[int, tf.Tensor] = {}
    if summed:  # small tensors too: one pass and one segment sum for all of them, fewer ops than a hash each
        lanes = lane_digests([tensors[j] for j in summed])
        found.update({j: lanes[row] for row, j in enumerate(summed)})
    for j, t in enumerate(tensors):
        if j not in found:
            found[j] = _farm(tf.reshape(words(tf.convert_to_tensor(t)), [1, -1]))[0]
    return tf.stack([found[j] for j in range(len(tensors))])


def _on_gpu(t: Any) -> bool:
    return "GPU" in (getattr(t, "device", "") or "").upper()


def _words_known(t: Any) -> float:
    """How many 32-bit words ``t`` holds, if its shape says (else infinity)."""
    shape, dtype = getattr(t, "shape", None), getattr(t, "dtype", None)
    n = None if shape is None else tf.TensorShape(shape).num_elements()
    if n is None or dtype is None:
        return float("inf")
    return n * max(1, tf.as_dtype(dtype).size // 4) if tf.as_dtype(dtype) != tf.string else float("inf")


def _farm(rows: tf.Tensor) -> tf.Tensor:
    """FarmHash64 of each row of a 2-D tensor, as ``uint32[rows, 2]``."""
    hashed = tf.fingerprint(rows)  # uint8[rows, 8]
    return tf.bitcast(tf.reshape(hashed, [-1, 2, 4]), tf.uint32)


def lane_digests(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """One digest per tensor, as ``uint32[len(tensors), 2]``: the lane sums of the module docstring.

    Small tensors of known size are digested together (positions counted
    along their concatenation, a fixed layout for a given list: one pass and
    one segment sum for all of them); large or dynamically shaped ones one by one.
    """
    if not tensors:
        return tf.zeros([0, 2], tf.uint32)
    flat = [words(tf.convert_to_tensor(t)) for t in tensors]
    sizes = [w.shape.num_elements() for w in flat]
    small = [j for j, n in enumerate(sizes) if n is not None and n <= SMALL]
    found: dict[int, tf.Tensor] = {}
    total = sum(sizes[j] or 0 for j in small)
    if small and total <= SMALL:
        joined = tf.concat([flat[j] for j in small], 0) if len(small) > 1 else flat[small[0]]
        segments = np.repeat(np.arange(len(small), dtype=np.int32), [sizes[j] for j in small])
        lanes = tf.math.unsorted_segment_sum(_lanes(joined, total), tf.constant(segments), len(small))
        found.update({j: lanes[row] for row, j in enumerate(small)})
    for j, w in enumerate(flat):
        if j not in found:
            n = sizes[j]
            found[j] = tf.reduce_sum(_lanes(w, n), axis=0) if n is not None and n <= SMALL else _large(w)
    return tf.stack([found[j] for j in range(len(flat))])


@tf.function(jit_compile=True, autograph=False, reduce_retracing=True)  # type: ignore[untyped-decorator]
def _large(w: tf.Tensor) -> tf.Tensor:
    """The digest of a large tensor's words, fused by XLA into one pass over them (no table of constants).

    Unfused, the positions, constants and terms of a 100 M-word tensor are ten
    passes over memory (0.39 s a step on 2 CPU cores); fused, one (0.10 s).
    Integer sums: XLA's reduction order cannot change the bits.
    """
    return tf.reduce_sum(_lanes(w, None), axis=0)


def row_digests(batch: tf.Tensor) -> tf.Tensor:
    """One digest per row (first axis) of ``batch``, as ``uint32[rows, 2]`` (FarmHash64 of the row's bytes)."""
    batch = tf.convert_to_tensor(batch)
    if batch.shape.rank == 0:
        batch = tf.reshape(batch, [1])
    return _farm(tf.reshape(words(batch), [tf.shape(batch)[0], -1]))


def hex_digest(lanes: np.ndarray) -> str:
    """A digest (two ``uint32`` lanes) as 16 hex characters."""
    return f"{int(lanes[0]):08x}{int(lanes[1]):08x}"


def as_uint64(lanes: np.ndarray) -> np.ndarray:
    """Digests ``uint32[n, 2]`` as ``uint64[n]`` (the first lane high)."""
    pairs = np.asarray(lanes, dtype=np.uint64).reshape(-1, 2)
    return np.asarray((pairs[:, 0] << np.uint64(32)) | pairs[:, 1], dtype=np.uint64)


def reference(array: np.ndarray, offset: int = 0) -> tuple[int, int]:
    """The digest of ``array`` computed in NumPy (for tests): the same two lanes as :func:`digests`.

    ``offset``: the position of its first word among the words digested with it.
    """
    w = np.asarray(words(tf.constant(array))).astype(np.uint32)
    k, m = table(offset + w.size)
    with np.errstate(over="ignore"):
        lanes = (w[:, None] ^ k[offset:]) * m[offset:]
    return int(lanes[:, 0].sum(dtype=np.uint32)), int(lanes[:, 1].sum(dtype=np.uint32))

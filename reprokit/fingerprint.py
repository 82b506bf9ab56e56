"""Cheap, bitwise fingerprints of arrays.

A fingerprint is a short hex digest of an array's dtype, shape and raw bytes.
Two arrays have the same fingerprint exactly when they are bitwise identical
(up to hash collisions), so NaN equals NaN at the same position and ``-0.0``
differs from ``0.0``: reproducibility is about bits, not values.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

DIGEST_SIZE = 8  # 64-bit digests: collisions are irrelevant at our scale.


def fingerprint(array: Any) -> str:
    """Returns the hex digest of ``array``'s dtype, shape and bytes.

    Args:
        array: anything ``numpy.asarray`` accepts (a NumPy array, an eager
            tensor, a Python scalar).

    Returns:
        A 16-character hexadecimal string.
    """
    arr = np.ascontiguousarray(np.asarray(array))
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    digest.update(f"{arr.dtype.str}{arr.shape}".encode())
    # A byte view instead of ``tobytes()`` avoids a second copy of the data.
    digest.update(arr.reshape(-1).view(np.uint8).data)
    return digest.hexdigest()


def combine(fingerprints: list[str]) -> str:
    """Returns one fingerprint standing for an ordered list of fingerprints."""
    digest = hashlib.blake2b(digest_size=DIGEST_SIZE)
    for item in fingerprints:
        digest.update(item.encode())
    return digest.hexdigest()


def rows_fingerprint(array: Any) -> str:
    """An order-free fingerprint of the rows (first axis) of ``array``.

    The sum (mod 2**64) of the rows' digests: the same rows in any order give
    the same value, so two batches, or two runs' sums over many batches, that
    agree here hold the same examples, perhaps in another order.
    """
    arr = np.ascontiguousarray(np.asarray(array))
    if arr.ndim == 0:
        return fingerprint(arr)
    rows = arr.reshape(arr.shape[0], -1).view(np.uint8) if arr.size else arr.reshape(arr.shape[0], 0)
    total = 0
    for row in rows:
        total += int.from_bytes(hashlib.blake2b(row.data, digest_size=DIGEST_SIZE).digest(), "little")
    return f"{total % 2**64:016x}"


def add_fingerprints(a: str, b: str) -> str:
    """The sum of two order-free fingerprints (see :func:`rows_fingerprint`)."""
    return f"{(int(a, 16) + int(b, 16)) % 2**64:016x}"

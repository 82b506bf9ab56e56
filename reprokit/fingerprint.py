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

"""Long series thinned evenly: a report keeps at most so many points of one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def evenly(items: Sequence[T], limit: int) -> tuple[T, ...]:
    """At most ``limit`` of ``items``, evenly spaced, the first and the last kept."""
    if len(items) <= limit:
        return tuple(items)
    step = (len(items) - 1) / (limit - 1)
    return tuple(items[i] for i in sorted({round(i * step) for i in range(limit)}))

"""Copies of the weights at a few moments of training, so the size of a difference is known over time.

Fingerprints say *when* two runs first differ, bit for bit; they cannot say
*how far apart* the weights are. A run therefore keeps a copy of each
variable at step 0 (the initial weights) and at the first step past each
power of two (1, 2, 4, 8, … 512, …): about log2(steps) copies, spaced as a
chaotic divergence grows, whatever loop trains the model. The final weights
are saved in full anyway (``weights/…``).

A variable of more than :data:`SAMPLE` values is kept as a fixed sample of
that many of its values: the same positions in every run (they depend only
on the variable's size), so the relative L2 distance of two runs' samples
estimates that of the whole variable while a snapshot of a 100 M-parameter
model stays a few megabytes.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

SAMPLE = 4096
"""Values of one variable a snapshot keeps at most."""

PREFIX = "snapshots"


def due(last: int | None, step: int) -> bool:
    """Whether ``step`` is the first step recorded at or past the next power of two after ``last``.

    ``last`` is the step of the previous snapshot (None: none yet). Steps
    can jump by more than one (``steps_per_execution``, XLA), so the test is
    "a power of two was crossed", not "``step`` is a power of two".
    """
    if last is None:
        return True
    if step <= last:
        return False
    return step.bit_length() > last.bit_length() if last > 0 else True


@functools.lru_cache(maxsize=64)
def positions(size: int) -> np.ndarray | None:
    """The positions kept of a variable of ``size`` values (None: all of them)."""
    if size <= SAMPLE:
        return None
    return np.sort(np.random.default_rng(size).choice(size, SAMPLE, replace=False))


def kept(array: np.ndarray) -> np.ndarray:
    """What a snapshot keeps of ``array``: a copy of it, or of its values at :func:`positions`."""
    flat = np.asarray(array).reshape(-1)
    where = positions(flat.size)
    return np.array(flat if where is None else flat[where])


class Snapshots:
    """The snapshots of every model of one run, as arrays to save with its final ones."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def offer(self, model: str, step: int, names: Sequence[str], values: Sequence[np.ndarray]) -> None:
        """Keeps ``values`` (of the variables ``names``) if ``step`` is due for ``model``."""
        if not due(self._last.get(model), step):
            return
        self._last[model] = step
        for name, value in zip(names, values):
            self.arrays[key(model, step, name)] = kept(value)


def key(model: str, step: int, variable: str) -> str:
    """``snapshots/<model>/<step>/<variable>``, the key of one snapshot in a run's arrays."""
    return f"{PREFIX}/{model}/{step}/{variable}"


def sampled(size: int) -> bool:
    """Whether a variable of ``size`` values is snapshotted as a sample."""
    return size > SAMPLE


SAMPLE_EVERY = 64
"""A run with sampled fingerprints fingerprints its weights at least every this many steps."""


def sampled_step(last: int, step: int) -> bool:
    """Whether a run with sampled fingerprints (``Target.sampled``) fingerprints its weights after ``step``.

    It does at steps 1, 2, 4, 8, … (where the snapshots are taken: a
    divergence early in training is located exactly) and every
    :data:`SAMPLE_EVERY`-th step, or at the first step recorded past one of
    them when steps jump (``steps_per_execution``); ``last`` is the step it
    last fingerprinted them at (0: the initial weights, always fingerprinted,
    as are the final ones).
    """
    if step <= last:
        return False
    power = 1 << last.bit_length()  # the next power of two after last (1 after 0)
    return power <= step or (last // SAMPLE_EVERY + 1) * SAMPLE_EVERY <= step

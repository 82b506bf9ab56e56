"""Each variable of two runs over training: when it first differs, and how far apart it is over time.

The step a variable first differs at comes from the fingerprints of every
observed step (exact); the distance over time from the runs' weight
snapshots (:mod:`reprokit.core.snapshots`: steps 0, 1, 2, 4, 8, …) and their
final weights. Pure logic on recorded data, for the divergence map of the
HTML report and the ``tracks`` of a comparison's JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from reprokit.checking.comparison import Track, abs_diff
from reprokit.core.snapshots import PREFIX
from reprokit.run.trace import Point, RunTrace

Arrays = Mapping[str, np.ndarray]


def first_steps(a: Sequence[Point], b: Sequence[Point]) -> dict[tuple[str, str], int]:
    """The first step at which each variable's fingerprints differ, by (model, variable); absent: never.

    Where the runs fingerprinted their weights at sampled steps only, that is the first sampled step.
    """
    index_b = {(p.model, p.step): p for p in b}
    found: dict[tuple[str, str], int] = {}
    for point in sorted(a, key=lambda p: (p.model, p.step)):
        other = index_b.get((point.model, point.step))
        if other is None or not (point.weights and other.weights) or other.weights == point.weights:
            continue  # absent, not fingerprinted at this step (sampled), or equal
        for name in set(point.weights) | set(other.weights):
            if point.weights.get(name) != other.weights.get(name):
                found.setdefault((point.model, name), point.step)
    return found


def tracks(a: RunTrace, b: RunTrace, arrays_a: Arrays, arrays_b: Arrays) -> tuple[Track, ...]:
    """Every variable of every model both runs saved, in the order of their saved final weights."""
    first = first_steps(a.points, b.points)
    final_steps = {m.name: m.steps for m in a.models} if a.steps == b.steps else {}
    for m in a.models:  # differing only in the final weights (steps no fingerprint saw, e.g. XLA)
        for name, value in m.weights.items():
            other = next((x.weights.get(name) for x in b.models if x.name == m.name), None)
            if other != value and m.name in final_steps:
                first.setdefault((m.name, name), final_steps[m.name])
    snapshots_a, snapshots_b = _snapshots(arrays_a), _snapshots(arrays_b)
    found = []
    for key in [k for k in arrays_a if k.startswith("weights/")]:  # in the order they were saved: the layers
        if key not in arrays_b:
            continue
        _, model, variable = key.split("/", 2)
        final_a, final_b = np.asarray(arrays_a[key]), np.asarray(arrays_b[key])
        steps, distances, sampled = [], [], False
        end = final_steps.get(model)
        common = set(snapshots_a.get((model, variable), {})) & set(snapshots_b.get((model, variable), {}))
        for step in sorted(s for s in common if end is None or s < end):  # the end: the full final weights
            x, y = snapshots_a[(model, variable)][step], snapshots_b[(model, variable)][step]
            if x.shape != y.shape:
                continue
            sampled = sampled or x.size < final_a.size
            steps.append(step)
            distances.append(relative_l2(x, y))
        if end is not None and final_a.shape == final_b.shape:
            steps.append(end)
            distances.append(relative_l2(final_a, final_b))
        found.append(Track(model, variable, first.get((model, variable)), tuple(steps), tuple(distances), sampled))
    return tuple(found)


def _snapshots(arrays: Arrays) -> dict[tuple[str, str], dict[int, np.ndarray]]:
    found: dict[tuple[str, str], dict[int, np.ndarray]] = {}
    for key in arrays:
        if not key.startswith(PREFIX + "/"):
            continue
        _, model, step, variable = key.split("/", 3)
        found.setdefault((model, variable), {})[int(step)] = np.asarray(arrays[key])
    return found


def relative_l2(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a − b‖ / ‖a‖`` in float64; 0 for bitwise-equal arrays, inf where a NaN meets a number (see ``abs_diff``)."""
    distance = float(np.linalg.norm(abs_diff(a.reshape(-1), b.reshape(-1))))
    if distance == 0:
        return 0.0
    norm = float(np.linalg.norm(np.nan_to_num(a.astype(np.float64).reshape(-1))))
    return distance / norm if norm > 0 else math.inf

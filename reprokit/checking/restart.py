"""Where a resumed run started, and its steps numbered as the uninterrupted run's (pure logic).

Part of the resume check (:mod:`reprokit.checking.resume`). :func:`same_names`
gives the resumed run's variables the uninterrupted run's names where only
the names differ (a model rebuilt by ``keras.models.load_model``);
:func:`starting_points` finds, per model, the uninterrupted run's step whose
weights the resumed run started from; :func:`comparable` renumbers the
resumed run's steps from there so that
:func:`~reprokit.checking.comparison.compare_runs` compares each with the
uninterrupted run's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from reprokit.checking.lost import is_counter
from reprokit.run.trace import Point, RunTrace

__all__ = ["comparable", "renamed_arrays", "renumbered", "same_names", "starting_points", "weights_of"]


def weights_of(point: Point) -> dict[str, str]:
    return {n: f for n, f in point.weights.items() if not n.startswith(("optimizer:", "random:"))}


def _same_weights(a: Point, b: Point) -> bool:
    wa, wb = weights_of(a), weights_of(b)
    shared = wa.keys() & wb.keys()
    return bool(shared) and all(wa[n] == wb[n] for n in shared)


def _iterations(point: Point) -> float | None:
    return next((v for n, v in point.scalars.items() if is_counter(n)), None)


def same_names(uninterrupted: RunTrace, resumed: RunTrace) -> RunTrace:
    """The resumed run with its variables named as the uninterrupted run's, where only their names differ.

    A model rebuilt by ``keras.models.load_model`` names its variables
    without the model's prefix (``dense/kernel`` for
    ``sequential/dense/kernel``), and its optimizer's slots likewise: the
    variables of each kind (weights, optimizer, generators) are matched in
    order where both runs have as many.
    """
    names = {m: _renames(_last(uninterrupted, m), _last(resumed, m)) for m in {p.model for p in resumed.points}}

    def renamed(model: str, values: Mapping[str, Any]) -> dict[str, Any]:
        mapping = names.get(model, {})
        return {mapping.get(n, n): v for n, v in values.items()}

    points = tuple(
        replace(p, weights=renamed(p.model, p.weights), scalars=renamed(p.model, p.scalars)) for p in resumed.points
    )
    models = tuple(replace(m, weights=renamed(m.name, m.weights)) for m in resumed.models)
    return replace(resumed, points=points, models=models)


def renamed_arrays(arrays: Mapping[str, Any], uninterrupted: RunTrace, resumed: RunTrace) -> Mapping[str, Any]:
    """The resumed run's saved weights keyed as the uninterrupted run's (see :func:`same_names`), read lazily."""
    keys: dict[str, str] = {}
    for model in {p.model for p in resumed.points}:
        for old, new in _renames(_last(uninterrupted, model), _last(resumed, model)).items():
            keys[f"weights/{model}/{old}"] = f"weights/{model}/{new}"
    return _Renamed(arrays, keys)


class _Renamed(Mapping[str, Any]):
    def __init__(self, arrays: Mapping[str, Any], keys: Mapping[str, str]) -> None:
        self._arrays = arrays
        self._new = {keys.get(k, k): k for k in arrays}

    def __getitem__(self, key: str) -> Any:
        return self._arrays[self._new[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._new)

    def __len__(self) -> int:
        return len(self._new)


def _last(trace: RunTrace, model: str) -> Point | None:
    return next((p for p in reversed(trace.points) if p.model == model), None)


def _renames(theirs: Point | None, mine: Point | None) -> dict[str, str]:
    """Each of ``mine``'s names that ``theirs`` lacks, mapped to ``theirs``'s name of that kind in that place."""
    if theirs is None or mine is None or theirs.weights.keys() == mine.weights.keys():
        return {}
    mapping = {}
    for kind in ("weights", "optimizer:", "random:"):
        a, b = _of_kind(theirs, kind), _of_kind(mine, kind)
        if len(a) == len(b):
            mapping.update({n: o for n, o in zip(b, a) if n != o})
    return mapping


def _of_kind(point: Point, kind: str) -> list[str]:
    if kind == "weights":
        return [n for n in point.weights if not n.startswith(("optimizer:", "random:"))]
    return [n for n in point.weights if n.startswith(kind) and n not in GLOBAL]


GLOBAL = ("random:python", "random:numpy", "random:keras-global")


def starting_points(uninterrupted: RunTrace, resumed: RunTrace, stopped_after: int) -> dict[str, int | None]:
    """Per model the resumed run trained: the uninterrupted run's step (0 to K) whose weights it started from.

    Where several steps hold those weights, the one its optimizer's
    iterations name wins, else the latest. None: no step up to K holds them.
    """
    found: dict[str, int | None] = {}
    for start in (p for p in resumed.points if p.step == 0):
        candidates = [
            p
            for p in uninterrupted.points
            if p.model == start.model and p.step <= stopped_after and _same_weights(start, p)
        ]
        counted = [
            p.step for p in candidates if _iterations(start) is not None and _iterations(p) == _iterations(start)
        ]
        found[start.model] = counted[-1] if counted else (max(p.step for p in candidates) if candidates else None)
    return found


def comparable(
    uninterrupted: RunTrace, resumed: RunTrace, starts: Mapping[str, int | None]
) -> tuple[RunTrace, RunTrace]:
    """The two runs after the restart, the resumed run's steps numbered as the uninterrupted run's.

    A model the resumed run started at step j keeps the uninterrupted run's
    steps after j, and the resumed run's step i becomes j + i. The
    restart's own state is not compared: between two steps callbacks and
    data pipelines move some of it, so a step's state is compared after it.
    """

    def offset(model: str) -> int:
        return starts.get(model) or 0

    after = tuple(p for p in uninterrupted.points if p.step > offset(p.model))
    again = tuple(replace(p, step=p.step + offset(p.model)) for p in resumed.points if p.step > 0)
    models = tuple(replace(m, steps=m.steps + offset(m.name)) for m in resumed.models)
    return replace(uninterrupted, points=after), replace(resumed, points=again, models=models)


def renumbered(resumed: RunTrace, starts: Mapping[str, int | None]) -> RunTrace:
    """The resumed run with its points numbered as the uninterrupted run's steps (for its loss curve)."""
    points = tuple(replace(p, step=p.step + (starts.get(p.model) or 0)) for p in resumed.points)
    return replace(resumed, points=points)

"""Early exit: stops the runs of a pair once their divergence is proven (pure logic).

The parent sees every run's points as they stream in. A pair is *settled*
when its first divergence is found and the report's evidence about it is
complete: the step, the variables, the stage and, for an input-pipeline
divergence, whether the examples were reordered or changed (decided within
``compare.ORDER_HORIZON`` steps, so a stopped pair decides exactly as a full
one).

Runs stop together or not at all, so that every figure of a pair (max |Δw|,
prediction agreement, final loss) compares both runs at the same step: the
runs linked by pairs (the controlled and seed pairs share ``controlled-1``)
stop once every pair among them is settled, all after one step,
:data:`STOP_MARGIN` steps past the furthest of them. If one of them has
already ended, none stops: they all train to the end. (Which step that is
depends on timing; but runs stop early only where they differ, so their
figures are those of runs that are not reproducible in the first place.)

The seed pair only settles early when the controlled pair differs too: its
effect size (max |Δw| and prediction agreement after full training) is what
the report answers the seed question with.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from reprokit.checking.comparison import PENDING, Divergence, first_divergence
from reprokit.core.vocabulary import Pair
from reprokit.run.trace import Point

STOP_MARGIN = 16
"""Steps past the furthest run of a group at which all of them stop: time for the request to reach each run."""

Stop = Callable[[str, int], None]


@dataclass
class _Pair:
    name: str
    a: str
    b: str
    divergence: Divergence | None = None
    settled: bool = False


@dataclass
class EarlyExit:
    """Watches the pairs of a check and says which runs may stop, and when.

    Args:
        pairs: ``(name, run_a, run_b)`` for every pair of the check.
        stop: called once per run with the optimizer step to stop after.
    """

    pairs: Sequence[tuple[str, str, str]]
    stop: Stop
    _pairs: list[_Pair] = field(init=False)
    _points: dict[str, list[Point]] = field(init=False, default_factory=dict)
    _index: dict[str, dict[tuple[str, int], Point]] = field(init=False, default_factory=dict)
    _stopped: dict[str, int] = field(init=False, default_factory=dict)
    _decided: set[str] = field(init=False, default_factory=set)
    _finished: set[str] = field(init=False, default_factory=set)
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._pairs = [_Pair(*p) for p in self.pairs]

    @property
    def stops(self) -> dict[str, int]:
        """The step each stopped run was asked to stop after."""
        return dict(self._stopped)

    def add(self, run: str, point: Point) -> None:
        """Takes a new point of ``run`` (thread-safe); may ask runs to stop."""
        with self._lock:
            self._points.setdefault(run, []).append(point)
            self._index.setdefault(run, {})[(point.model, point.step)] = point
            for pair in self._pairs:
                if run in (pair.a, pair.b) and not pair.settled:
                    self._update(pair, run, point)
            self._stop_settled_runs()

    def finish(self, run: str) -> None:
        """Notes that ``run`` ended: its partners no longer wait for it to reach their stop step."""
        with self._lock:
            self._finished.add(run)

    def _update(self, pair: _Pair, run: str, point: Point) -> None:
        partner = pair.b if run == pair.a else pair.a
        if pair.divergence is None:
            other = self._index.get(partner, {}).get((point.model, point.step))
            if other is None or not (point.weights and other.weights) or other.weights == point.weights:
                return  # nothing new: its weights are equal, or not fingerprinted at this step (sampled)
        a, b = self._common(pair.a, pair.b)
        pair.divergence = first_divergence(a, b, final=False)
        pair.settled = pair.divergence is not None and pair.divergence.input_change != PENDING

    def _common(self, a: str, b: str) -> tuple[list[Point], list[Point]]:
        """Both runs' points, each up to the other's progress (what can be compared so far)."""
        points_a, points_b = self._points.get(a, []), self._points.get(b, [])
        index_a, index_b = self._index.get(a, {}), self._index.get(b, {})
        last_a, last_b = _last(points_a), _last(points_b)
        keep_a = [p for p in points_a if (p.model, p.step) in index_b or p.step <= last_b.get(p.model, -1)]
        keep_b = [p for p in points_b if (p.model, p.step) in index_a or p.step <= last_a.get(p.model, -1)]
        return keep_a, keep_b

    def _stop_settled_runs(self) -> None:
        settled = {p.name for p in self._pairs if p.settled}
        controlled_differs = Pair.CONTROLLED in settled
        done = {p.name for p in self._pairs if p.settled and (p.name != Pair.SEED or controlled_differs)}
        for runs, pairs in self._groups():
            if runs & self._decided or not all(p.name in done for p in pairs):
                continue
            self._decided |= runs
            if runs & self._finished:
                continue  # one of them ended already: all train to the end, to the same final step
            step = max(self._progress(r) for r in runs) + STOP_MARGIN
            for run in sorted(runs):
                self._stopped[run] = step
                self.stop(run, step)

    def _groups(self) -> list[tuple[set[str], list[_Pair]]]:
        """The runs linked by pairs, each group with its pairs (they stop together or not at all)."""
        groups: list[tuple[set[str], list[_Pair]]] = []
        for pair in self._pairs:
            runs, pairs = {pair.a, pair.b}, [pair]
            for group in [g for g in groups if g[0] & runs]:
                groups.remove(group)
                runs |= group[0]
                pairs += group[1]
            groups.append((runs, pairs))
        return groups

    def _progress(self, run: str) -> int:
        """Optimizer steps ``run`` has made (at most: a model trained by two optimizers counts twice)."""
        return sum(_last(self._points.get(run, [])).values())


def _last(points: Sequence[Point]) -> dict[str, int]:
    last: dict[str, int] = {}
    for p in points:
        last[p.model] = max(last.get(p.model, -1), p.step)
    return last

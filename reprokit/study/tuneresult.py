"""The result of ``reprokit tune``: every configuration of a grid across the same seeds, ranked.

A frozen object built by :func:`reprokit.study.tuning.run_tune`. It renders
with rich (:mod:`reprokit.report.tunerich`) and serializes to the documented
JSON (``"kind": "tune"``); Markdown, JUnit and HTML are pure functions of it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprokit.core import views
from reprokit.core.version import __version__
from reprokit.core.vocabulary import Word
from reprokit.study.grid import Axis, Configuration, Passing
from reprokit.study.metrics import Mode
from reprokit.study.ranking import RELIABLE, TOP, Ranking
from reprokit.study.result import SCHEMA_VERSION, VariantResult, sequential_dict
from reprokit.study.rounds import Sequential


class Concern(Word):
    """What ``tune --fail-if`` can fail on."""

    TIED = "tied"  # another configuration is statistically tied with the best: the winner is not settled
    UNSTABLE = "unstable"  # tuning with one fixed seed would have picked another configuration


@dataclass(frozen=True)
class TuneReport(views.Shown):
    """Which configuration of a grid wins, and whether the choice survives a new seed: ``reprokit tune``.

    Attributes:
        script: the script tuned.
        args: its own arguments (before the configuration's).
        axes: the grid.
        passing: how each configuration reached the script.
        configurations: every point of the grid, in order.
        variants: each configuration's runs and statistics (same order).
        ranking: the configurations ranked across the seeds (None: fewer
            than two seeds where every configuration has a value).
        metric: the metric ranked by.
        mode: which way is better.
        first_seed: the first seed S.
        seeds: seeds per configuration.
        folder: the study folder.
        wall_seconds: how long the study took.
        sequential: how ``--seeds auto`` ended (None: a fixed number of seeds).
    """

    script: str
    args: tuple[str, ...]
    axes: tuple[Axis, ...]
    passing: Passing
    configurations: tuple[Configuration, ...]
    variants: tuple[VariantResult, ...]
    ranking: Ranking | None
    metric: str
    mode: Mode
    first_seed: int
    seeds: int
    folder: Path
    wall_seconds: float
    sequential: Sequential | None = None

    def concerns(self) -> frozenset[Concern]:
        """What a careful user should worry about (``--fail-if``)."""
        r = self.ranking
        if r is None:
            return frozenset({Concern.TIED, Concern.UNSTABLE})
        found = set()
        if sum(c.tied for c in r.configs) > 1:
            found.add(Concern.TIED)
        if r.one_seed_pick != r.best:
            found.add(Concern.UNSTABLE)
        return frozenset(found)

    def label(self, index: int) -> str:
        return self.configurations[index].label

    def to_dict(self) -> dict[str, Any]:
        r = self.ranking
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "tune",
            "reprokit_version": __version__,
            "script": self.script,
            "script_args": list(self.args),
            "grid": [{"name": a.name, "values": list(a.values)} for a in self.axes],
            "passing": self.passing.value,
            "metric": self.metric,
            "mode": self.mode,
            "first_seed": self.first_seed,
            "seeds": self.seeds,
            "sequential": None if self.sequential is None else sequential_dict(self.sequential),
            "configurations": [self._configuration(i) for i in range(len(self.configurations))],
            "ranking": None if r is None else self._ranking(r),
            "concerns": sorted(c.value for c in self.concerns()),
            "variants": [v.to_dict() for v in self.variants],
            "study_folder": str(self.folder),
            "wall_seconds": self.wall_seconds,
        }

    def _configuration(self, i: int) -> dict[str, Any]:
        c = self.ranking.configs[i] if self.ranking is not None else None
        stats = self.variants[i].metric(self.metric)
        return {
            "label": self.label(i),
            "values": dict(self.configurations[i].values),
            "n": c.n if c else 0,
            "mean": c.mean if c else None,
            "std": stats.summary.std if stats is not None and stats.summary is not None else None,
            "ci_low": c.ci_low if c else None,
            "ci_high": c.ci_high if c else None,
            "p_best": c.p_best if c else None,
            "tied_with_best": c.tied if c else None,
            "seed_wins": c.seed_wins if c else None,
            "failed_runs": len(self.variants[i].failed),
        }

    def _ranking(self, r: Ranking) -> dict[str, Any]:
        return {
            "order": [self.label(i) for i in r.order],
            "best": self.label(r.best),
            "one_seed_pick": self.label(r.one_seed_pick),
            "one_seed": r.seeds[0] if r.seeds else None,
            "winner_share": r.winner_share,
            "seed_winners": [{"seed": s, "best": self.label(w)} for s, w in zip(r.seeds, r.seed_winners)],
            "kendall_w": _finite(r.kendall_w),
            "friedman_p": _finite(r.friedman_p),
            "tie_test_possible": r.tie_test_possible,
            "seeds_for_top": r.seeds_for_top,
            "top": min(TOP, len(r.configs)),
            "reliable": RELIABLE,
            "top_share": r.top_share,
            "seeds_used": list(r.seeds),
            "seeds_dropped": list(r.dropped),
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None

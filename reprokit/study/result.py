"""The results of seed studies: :class:`SeedsReport` and :class:`CompareReport`.

Frozen objects built from a study's runs (:mod:`reprokit.study.running`) by
:func:`~reprokit.study.analysis.seeds_report` and :func:`~reprokit.study.analysis.compare_report`.
They render with rich (:mod:`reprokit.report.studyrich`) and serialize to one documented JSON document
(``schema_version`` 1, ``"kind": "seeds"`` or ``"compare"``; see the README);
Markdown and JUnit are pure functions of the same objects.

A NaN metric or a failed run is never averaged in: the statistics rest on the
finite values, say how many, and list what was left out and why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from reprokit.core import views
from reprokit.core.version import __version__
from reprokit.core.vocabulary import Outcome
from reprokit.study.metrics import Mode
from reprokit.study.replay import Replay
from reprokit.study.rounds import Sequential
from reprokit.study.searches import SearchSpread
from reprokit.study.sequential import Verdict
from reprokit.study.stats import Effect, Summary
from reprokit.study.store import RunResult
from reprokit.weights.similarity import Similarity

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class MetricStats:
    """One metric of one variant across its seeds.

    Attributes:
        name: the metric (see :mod:`reprokit.study.metrics`).
        mode: ``"min"`` or ``"max"``: which way is better (None: unknown).
        values: ``(seed, value)`` of every successful run, NaN included.
        summary: the statistics of the finite values (None: there are none).
        left_out: ``(seed, why)`` of every run the statistics leave out.
    """

    name: str
    mode: Mode | None
    values: tuple[tuple[int, float], ...]
    summary: Summary | None
    left_out: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class RepeatCheck:
    """Seed S run twice: whether the seed pins the script.

    ``identical`` is None when one of the two runs failed; ``differences``
    says what differed (final weights, metrics, predictions).
    """

    seed: int
    identical: bool | None
    differences: tuple[str, ...] = ()


@dataclass(frozen=True)
class Agreement:
    """How often the final models of two seeds predict the same class on the probe batch, over every pair."""

    mean: float
    min: float
    pairs: int


@dataclass(frozen=True)
class VariantResult:
    """Every run of one variant, and what they show.

    Attributes:
        label: how reports name it (the script, or its command line).
        script: the script run.
        args: its arguments.
        commit: the git commit of a variant at a ref (``--against``).
        seeds: the seeds it ran.
        runs: every run, in seed order (the repeat last).
        metrics: every metric's statistics (the headline first).
        agreement: pairwise prediction agreement between seeds (None: no
            common probe batch, or outputs that are no classes).
        repeat: the repeated seed, if one was run.
        same_model: every seed gave bit-identical final weights (the script
            fixes its own seeds, or draws no random numbers).
        nodes: where the runs ran (Ray nodes, or this machine), with how many runs each.
        by_node: metrics whose values differ between nodes beyond chance
            (Kruskal–Wallis p < 0.05), with that p-value.
        similarity: mean pairwise linear CKA of the seeds' hidden layers on
            the probe batch, against untrained copies (None: not measured).
    """

    label: str
    script: str
    args: tuple[str, ...]
    commit: str | None
    seeds: tuple[int, ...]
    runs: tuple[RunResult, ...]
    metrics: tuple[MetricStats, ...]
    agreement: Agreement | None
    repeat: RepeatCheck | None
    same_model: bool
    nodes: tuple[tuple[str, int], ...] = ()
    by_node: tuple[tuple[str, float], ...] = ()
    similarity: Similarity | None = None
    searches: tuple[SearchSpread, ...] = ()
    """What the script's own hyperparameter searches chose across the seeds (empty: it ran none)."""

    @property
    def failed(self) -> tuple[RunResult, ...]:
        return tuple(r for r in self.runs if not r.ok)

    def metric(self, name: str) -> MetricStats | None:
        return next((m for m in self.metrics if m.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "script": self.script,
            "args": list(self.args),
            "commit": self.commit,
            "seeds": list(self.seeds),
            "metrics": [_metric_dict(m) for m in self.metrics],
            "agreement": None if self.agreement is None else asdict(self.agreement),
            "hidden_cka": None if self.similarity is None else asdict(self.similarity),
            "repeat": None if self.repeat is None else _repeat_dict(self.repeat),
            "same_model_for_every_seed": self.same_model,
            "failed_runs": len(self.failed),
            "nodes": [{"node": name, "runs": count} for name, count in self.nodes],
            "differs_by_node": [{"metric": name, "p_value": p} for name, p in self.by_node],
            "searches": [_spread_dict(s) for s in self.searches],
            "runs": [_run_dict(r) for r in self.runs],
        }


@dataclass(frozen=True)
class SeedsReport(views.Shown):
    """How much the seed matters for one script: ``reprokit seeds``."""

    variant: VariantResult
    metric: str
    first_seed: int
    folder: Path
    wall_seconds: float
    seeds: int
    automatic: bool = False  # --seeds auto: the first look of a comparison's sequential design
    replay: Replay | None = None
    """What the study ran with, for :meth:`replay_command` (None: only the study folder is known)."""

    @property
    def pinned(self) -> bool | None:
        """Whether the seed pins the script (its repeat was bit-identical); None if not shown."""
        return None if self.variant.repeat is None else self.variant.repeat.identical

    def replay_command(self, seed: int) -> str:
        """The shell command that trains seed ``seed`` again, exactly (see :mod:`reprokit.study.replay`)."""
        replay = self.replay or Replay(self.folder)
        return replay.command(self.variant.script, self.variant.args, seed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "seeds",
            "reprokit_version": __version__,
            "script": self.variant.script,
            "script_args": list(self.variant.args),
            "first_seed": self.first_seed,
            "metric": self.metric,
            "mode": _mode_of(self.variant, self.metric),
            "pinned": self.pinned,
            "seeds_requested": "auto" if self.automatic else self.seeds,
            **self.variant.to_dict(),
            "replay_command": self.replay_command(self.first_seed),
            "study_folder": str(self.folder),
            **_run_counts(self.variant.runs),
            "wall_seconds": self.wall_seconds,
            "environment": _environment(self.variant.runs),
        }


@dataclass(frozen=True)
class Contrast:
    """One variant against the first, on the headline metric.

    Attributes:
        variant: its index among the report's variants (1, 2, …).
        effect: the statistics (None: fewer than 2 usable runs in a variant).
        p_adjusted: the permutation test's p, Holm-adjusted over the contrasts.
        outcome: better, worse, within seed noise, equivalent, or too few seeds.
        left_out: ``(seed, why)`` of runs left out (failed, NaN, or unpaired).
        verdict: with ``--seeds auto``, the sequential verdict (why and at
            which look it was settled); None with a fixed number of seeds.
    """

    variant: int
    effect: Effect | None
    p_adjusted: float | None
    outcome: Outcome
    left_out: tuple[tuple[int, str], ...] = ()
    verdict: Verdict | None = None


@dataclass(frozen=True)
class CompareReport(views.Shown):
    """Did a change move the metric beyond seed noise: ``reprokit compare``."""

    variants: tuple[VariantResult, ...]
    contrasts: tuple[Contrast, ...]
    metric: str
    mode: Mode
    paired: bool
    min_effect: float | None
    first_seed: int
    seeds: int
    folder: Path
    wall_seconds: float
    sequential: Sequential | None = None

    def outcomes(self) -> frozenset[Outcome]:
        return frozenset(c.outcome for c in self.contrasts)

    def to_dict(self) -> dict[str, Any]:
        first = self.variants[0]
        return {
            "schema_version": SCHEMA_VERSION,
            "kind": "compare",
            "reprokit_version": __version__,
            "metric": self.metric,
            "mode": self.mode,
            "paired": self.paired,
            "min_effect": self.min_effect,
            "first_seed": self.first_seed,
            "seeds": self.seeds,
            "sequential": None if self.sequential is None else sequential_dict(self.sequential),
            "variants": [v.to_dict() for v in self.variants],
            "comparisons": [_contrast_dict(c, self.variants[c.variant], first) for c in self.contrasts],
            "study_folder": str(self.folder),
            **_run_counts([r for v in self.variants for r in v.runs]),
            "wall_seconds": self.wall_seconds,
            "environment": _environment([r for v in self.variants for r in v.runs]),
        }


# -- JSON ----------------------------------------------------------------------


def _mode_of(variant: VariantResult, metric: str) -> Mode | None:
    stats = variant.metric(metric)
    return None if stats is None else stats.mode


def _metric_dict(m: MetricStats) -> dict[str, Any]:
    summary = asdict(m.summary) if m.summary is not None else dict.fromkeys(_SUMMARY_KEYS)
    return {
        "name": m.name,
        "mode": m.mode,
        "values": [{"seed": s, "value": v} for s, v in m.values],
        **summary,
        "left_out": [{"seed": s, "reason": why} for s, why in m.left_out],
    }


_SUMMARY_KEYS = ("n", "mean", "std", "median", "min", "max", "ci_low", "ci_high", "ci_method")


def _spread_dict(s: SearchSpread) -> dict[str, Any]:
    return {
        "library": s.library,
        "name": s.name,
        "seeds": s.seeds,
        "stable": s.stable,
        "choices": [{"best": c.best, "seeds": list(c.seeds)} for c in s.choices],
        "summary": s.sentence(),
    }


def _repeat_dict(r: RepeatCheck) -> dict[str, Any]:
    return {"seed": r.seed, "identical": r.identical, "differences": list(r.differences)}


def _run_dict(r: RunResult) -> dict[str, Any]:
    return {
        "seed": r.seed,
        "repeat": r.repeat,
        "ok": r.ok,
        "error": r.error,
        "steps": r.steps,
        "wall_seconds": r.wall_seconds,
        "cached": r.cached,
        "metrics": dict(r.metrics),
        "node": node_of(r) or None,
        "retries": list(r.retries),
        "curves": {name: list(values) for name, values in r.curves.items()},
    }


def _contrast_dict(c: Contrast, variant: VariantResult, first: VariantResult) -> dict[str, Any]:
    effect = asdict(c.effect) if c.effect is not None else {}
    effect.pop("higher_is_better", None)
    return {
        "variant": variant.label,
        "baseline": first.label,
        "outcome": c.outcome.value,
        "settled": None if c.verdict is None else {"reason": c.verdict.reason.value, "seeds": c.verdict.seeds},
        "p_adjusted": c.p_adjusted,
        **effect,
        "left_out": [{"seed": s, "reason": why} for s, why in c.left_out],
    }


def sequential_dict(s: Sequential) -> dict[str, Any]:
    """How ``--seeds auto`` ended, as JSON: the design's looks, the looks made, why it stopped."""
    d = s.design
    return {
        "max_seeds": d.max_seeds,
        "contrasts": d.contrasts,
        "alpha": d.alpha,
        "looks": list(s.looks),
        "seeds": s.seeds,
        "why": s.why(),
        "design": [{"seeds": k.seeds, "level": k.level, "spent": k.spent} for k in d.looks],
    }


def _run_counts(runs: Sequence[RunResult]) -> dict[str, int]:
    """How many of a study's runs were trained, and how many were reused from the study folder."""
    reused = sum(r.cached for r in runs)
    return {"runs_trained": len(runs) - reused, "runs_reused": reused}


def _environment(runs: Sequence[RunResult]) -> dict[str, Any]:
    seen = [dict(r.environment) for r in runs if r.ok and r.environment]
    return seen[0] if seen else {}


def node_of(run: RunResult) -> str:
    """Where a run ran: its Ray node, else its machine ("" where it did not say)."""
    return str(run.environment.get("ray_node") or run.environment.get("node") or "")

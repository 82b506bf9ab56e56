"""The result of a check, and its stable JSON form.

:class:`Report` is the one object every output is rendered from: the rich
terminal report (``Report.__rich_console__``) and the JSON document
(:meth:`Report.to_dict`), whose keys are a documented contract
(``schema_version`` 1, see the README).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reprokit.checking.baseline import BaselineResult
from reprokit.checking.classify import Finding
from reprokit.checking.comparison import Comparison
from reprokit.checking.explain import Explanation
from reprokit.checking.resume import ResumeResult
from reprokit.checking.search import SearchComparison, SearchPair, SearchResult
from reprokit.core import views
from reprokit.core.errors import EXIT_FAILED_CHECK, ReprokitError
from reprokit.core.files import finite, json_text
from reprokit.core.refusals import Refusal
from reprokit.core.vocabulary import FailOn, Source, Status, Verdict
from reprokit.lint.engine import LintFinding
from reprokit.run.trace import Pin, PipelineCall, SearchTrial

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class RunSummary:
    """One training run as the report shows it."""

    name: str
    role: str
    seed: int
    op_determinism: bool
    steps: int
    wall_seconds: float
    models: tuple[str, ...]
    final_loss: float | None
    mode: str
    op_determinism_observed: bool | None = None
    history: Mapping[str, Mapping[str, tuple[float, ...]]] = field(default_factory=dict)
    step_losses: Mapping[str, tuple[tuple[int, float], ...]] = field(default_factory=dict)
    stopped_at_max_steps: bool = False
    stopped_early: bool = False
    files_written: tuple[str, ...] = ()
    preempted: bool = False


@dataclass(frozen=True)
class Report(views.Shown):
    """Everything a check found, ready to render.

    Attributes:
        script: the script as given on the command line.
        script_args: the script's own arguments.
        seed: the seed S of the controlled runs.
        verdict: reproducible exactly when the controlled pair was shown identical.
        findings: one per source (seed, nondeterministic ops, uncontrolled).
        comparisons: the pairs that were compared.
        runs: the runs, in the order they were planned.
        environment: versions, platform and thread settings of the runs.
        pins: calls by which the script fixes seeds or determinism itself.
        reprokit_version: the version that produced the report.
        quick: whether only the controlled pair ran.
        wall_seconds: how long the whole check took.
        search: the script's own hyperparameter searches (keras-tuner, Optuna)
            compared between the runs; None when it ran none.
    """

    script: str
    script_args: tuple[str, ...]
    seed: int
    verdict: Verdict
    findings: tuple[Finding, ...]
    comparisons: tuple[Comparison, ...]
    runs: tuple[RunSummary, ...]
    environment: Mapping[str, Any]
    pins: tuple[Pin, ...] = ()
    reprokit_version: str = ""
    quick: bool = False
    wall_seconds: float = 0.0
    notes: tuple[str, ...] = field(default=())
    max_steps: int | None = None
    baseline: BaselineResult | None = None
    lint: tuple[LintFinding, ...] = ()
    refusal: Refusal | None = None
    explanation: Explanation | None = None
    pipeline: tuple[PipelineCall, ...] = ()
    resume: ResumeResult | None = None
    search: SearchResult | None = None

    @property
    def reproducible(self) -> bool:
        return self.verdict is Verdict.REPRODUCIBLE

    @property
    def shown_findings(self) -> tuple[Finding, ...]:
        """The findings the reports list: every source, the resume source only where a resume check was asked for.

        (The JSON lists every source, the resume source as not checked.)
        """
        return tuple(f for f in self.findings if f.source is not Source.RESUME or self.resume_asked)

    @property
    def resume_asked(self) -> bool:
        """Whether the check was asked to stop and resume a run (``--resume-at``, ``--resume``)."""
        return self.resume is not None or self.finding(Source.RESUME).status is not Status.NOT_CHECKED

    def finding(self, source: Source | str) -> Finding:
        """The finding for ``source`` (a :class:`~reprokit.core.vocabulary.Source` or its name, e.g. ``"seed"``)."""
        for f in self.findings:
            if f.source == source:
                return f
        raise KeyError(f"expected one of {', '.join(s.value for s in Source)}; received {source!r}")

    def failures(self, fail_on: FailOn) -> tuple[Failure, ...]:
        """What fails this check under ``fail_on``: the one place that decides it.

        A baseline that does not match always fails; otherwise each source in
        ``fail_on`` that was detected fails. Empty when the check passes.
        """
        if self.baseline is not None:
            return () if self.baseline.passed else (Failure(None, f"{self.script} {self.baseline.message}"),)
        return tuple(
            Failure(f.source, f"{f.title}: {f.evidence}")
            for f in self.findings
            if f.status is Status.DETECTED and f.source in fail_on
        )

    def comparison(self, name: str) -> Comparison | None:
        return next((c for c in self.comparisons if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (schema_version 1); non-finite numbers become null."""
        document: dict[str, Any] = finite(
            {
                "schema_version": SCHEMA_VERSION,
                "reprokit_version": self.reprokit_version,
                "script": self.script,
                "script_args": list(self.script_args),
                "seed": self.seed,
                "verdict": self.verdict.value,
                "sources": {
                    f.source.value: {
                        "detected": f.detected,
                        "status": f.status.value,
                        "evidence": f.evidence,
                        "fix": f.fix,
                        "runs": f.runs,
                    }
                    for f in self.findings
                },
                "comparisons": [_comparison_dict(c) for c in self.comparisons],
                "runs": [_run_dict(r) for r in self.runs],
                "environment": dict(self.environment),
                "script_pins": [{"call": p.call, "kind": p.kind, "file": p.file, "line": p.line} for p in self.pins],
                "notes": list(self.notes),
                "max_steps": self.max_steps,
                "baseline": _baseline_dict(self.baseline) if self.baseline is not None else None,
                "lint": [dataclasses.asdict(f) for f in self.lint],
                "determinism_refusal": dataclasses.asdict(self.refusal) if self.refusal is not None else None,
                "explanation": dataclasses.asdict(self.explanation) if self.explanation is not None else None,
                "pipeline": [dataclasses.asdict(c) for c in self.pipeline],
                "resume": _resume_dict(self.resume) if self.resume is not None else None,
                "search": _search_dict(self.search) if self.search is not None else None,
                "wall_seconds": round(self.wall_seconds, 3),
            }
        )
        return document

    def to_json(self) -> str:
        return json_text(self.to_dict())


@dataclass(frozen=True)
class Failure:
    """Why a check fails: a detected source named in ``--fail-on``, or a baseline mismatch.

    Attributes:
        source: the source, or None for a baseline that does not match.
        message: one sentence, with the evidence.
    """

    source: Source | None
    message: str


class NotReproducibleError(ReprokitError):
    """A check found what it was told to fail on (or a baseline no longer matches).

    Attributes:
        report: the full report of the check.
    """

    exit_code = EXIT_FAILED_CHECK

    def __init__(self, message: str, report: Report) -> None:
        super().__init__(message)
        self.report = report


def _comparison_dict(c: Comparison) -> dict[str, Any]:
    d = c.divergence
    return {
        "name": c.name,
        "runs": list(c.runs),
        "identical": c.identical,
        "first_divergent_step": c.first_divergent_step,
        "first_divergent_model": d.model if d else None,
        "first_divergent_variables": list(c.first_divergent_variables),
        "inputs_differ_at_divergence": d.inputs_differ if d else None,
        "first_divergence_stage": d.stage if d else None,
        "input_change": d.input_change if d else None,
        "first_divergence_after": d.after if d else None,
        "first_divergence_located": d.located if d else False,
        "max_abs_diff": c.max_abs_diff,
        "relative_l2": c.relative_l2,
        "prediction_agreement": c.prediction_agreement,
        "max_abs_diff_unmeasured": c.max_abs_diff_unmeasured or None,
        "prediction_agreement_unmeasured": c.prediction_agreement_unmeasured or None,
        "final_losses": list(c.final_losses),
        "steps": list(c.steps),
        "alignment": [{"model": m.model, **m.alignment.to_dict()} for m in c.alignments],
        "tracks": [dataclasses.asdict(t) for t in c.tracks],
        "variables": [
            {
                "model": v.model,
                "variable": v.variable,
                "max_abs_diff": v.max_abs_diff,
                "relative_l2": v.relative_l2,
            }
            for v in c.variables
        ],
    }


def _run_dict(r: RunSummary) -> dict[str, Any]:
    return {
        "name": r.name,
        "role": r.role,
        "seed": r.seed,
        "op_determinism": r.op_determinism,
        "steps": r.steps,
        "wall_seconds": round(r.wall_seconds, 3),
        "models": list(r.models),
        "final_loss": r.final_loss,
        "mode": r.mode,
        "op_determinism_observed": r.op_determinism_observed,
        "history": {model: {k: list(v) for k, v in logs.items()} for model, logs in r.history.items()},
        "step_losses": {model: [list(p) for p in losses] for model, losses in r.step_losses.items()},
        "stopped_at_max_steps": r.stopped_at_max_steps,
        "stopped_early": r.stopped_early,
        "files_written": list(r.files_written),
        "preempted": r.preempted,
    }


def _resume_dict(r: ResumeResult) -> dict[str, Any]:
    return {
        "verdict": r.verdict.value,
        "stopped_after": r.stopped_after,
        "steps": r.steps,
        "model": r.model,
        "resumed_from": r.resumed_from,
        "replayed": list(r.replayed) if r.replayed else None,
        "resumed_steps": r.resumed_steps,
        "first_difference": r.first_difference,
        "first_weights_difference": r.first_weights_difference,
        "differing": list(r.differing),
        "final_identical": r.final_identical,
        "not_restored": [{"state": x.state.value, "evidence": x.evidence, "fix": x.fix} for x in r.lost],
        "stopped_run_wrote": list(r.written),
        "evidence": r.evidence,
    }


def _search_dict(r: SearchResult) -> dict[str, Any]:
    return {"reproducible": r.reproducible, "pairs": [_search_pair_dict(p) for p in r.pairs]}


def _search_pair_dict(p: SearchPair) -> dict[str, Any]:
    return {
        "name": p.pair.value,
        "runs": list(p.runs),
        "seeds": list(p.seeds),
        "identical": p.identical,
        "same_best": p.same_best,
        "summary": p.summary,
        "searches": [_search_comparison_dict(s) for s in p.searches],
    }


def _search_comparison_dict(s: SearchComparison) -> dict[str, Any]:
    return {
        "library": s.library,
        "name": s.name,
        "trials": list(s.trials),
        "identical": s.identical,
        "first_differing_trial": s.first_difference,
        "differing": [_trial_dict(t) for t in s.differing] if s.first_difference is not None else None,
        "best": [_trial_dict(t) for t in s.best],
        "same_best": s.same_best,
        "complete": s.complete,
    }


def _trial_dict(t: SearchTrial | None) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"trial": t.trial, "params": dict(t.params), "score": t.score, "status": t.status, "values": list(t.values)}


def _baseline_dict(b: BaselineResult) -> dict[str, Any]:
    return {
        "path": b.path,
        "passed": b.passed,
        "bitwise": b.bitwise,
        "message": b.message,
        "first_differing_step": b.first_step,
        "first_differing_model": b.model,
        "differing_variables": list(b.variables),
        "environment_differences": [
            {"field": d.field, "baseline": d.baseline, "current": d.current} for d in b.environment_differences
        ],
        "metric_differences": [
            {
                "model": m.model,
                "metric": m.metric,
                m.unit: m.index,
                "baseline": m.baseline,
                "current": m.current,
            }
            for m in b.metric_differences
        ],
        "rtol": b.rtol,
        "atol": b.atol,
        "script_changed": b.script_changed,
        "update_command": b.update_command or None,
    }

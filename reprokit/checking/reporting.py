"""A check's :class:`~reprokit.checking.result.Report` from its runs: the part every kind of check shares."""

from __future__ import annotations

import time
from collections.abc import Sequence

from reprokit.checking import baseline
from reprokit.checking.classify import Finding
from reprokit.checking.comparison import Comparison
from reprokit.checking.notes import report_notes
from reprokit.checking.result import Report, RunSummary
from reprokit.checking.runs import PAIRS, CheckOptions
from reprokit.checking.search import search_result
from reprokit.core.series import evenly
from reprokit.core.version import __version__
from reprokit.core.vocabulary import Verdict
from reprokit.run.trace import Pin, RunSpec, RunTrace

__all__ = ["MAX_STEP_LOSSES", "build_report", "pins", "run_summary", "step_losses"]


def build_report(
    options: CheckOptions,
    specs: Sequence[RunSpec],
    traces: dict[str, RunTrace],
    verdict_: Verdict,
    findings: tuple[Finding, ...],
    comparisons: tuple[Comparison, ...],
    started: float,
    baseline_result: baseline.BaselineResult | None = None,
    seed: int | None = None,
) -> Report:
    target = options.target
    environment = traces[specs[0].name].environment if specs else {}
    return Report(
        script=target.label,
        script_args=target.args,
        seed=options.seed if seed is None else seed,
        verdict=verdict_,
        findings=findings,
        comparisons=comparisons,
        runs=tuple(run_summary(traces[s.name]) for s in specs),
        environment=environment,
        pins=pins(traces),
        reprokit_version=__version__,
        quick=options.quick,
        wall_seconds=time.monotonic() - started,
        notes=tuple(report_notes([t for t in traces.values() if not t.preempted], target, options.settings.model_file)),
        max_steps=target.max_steps,
        baseline=baseline_result,
        search=search_result(traces, PAIRS),
    )


def pins(traces: dict[str, RunTrace]) -> tuple[Pin, ...]:
    """The script's own seed and determinism calls, once each, over all runs."""
    return tuple(dict.fromkeys(p for t in traces.values() for p in t.pins))


def run_summary(trace: RunTrace) -> RunSummary:
    return RunSummary(
        name=trace.spec.name,
        role=trace.spec.role,
        seed=trace.spec.controls.seed,
        op_determinism=trace.spec.controls.op_determinism,
        steps=trace.steps,
        wall_seconds=trace.wall_seconds,
        models=tuple(m.name for m in trace.models),
        final_loss=trace.final_loss(),
        mode=trace.mode,
        op_determinism_observed=trace.environment.get("op_determinism"),
        history={m.name: m.history for m in trace.models if m.history},
        step_losses=step_losses(trace),
        stopped_at_max_steps=trace.stopped_at_max_steps,
        stopped_early=trace.stopped_early,
        files_written=trace.files_written,
        preempted=trace.preempted,
    )


MAX_STEP_LOSSES = 2000
"""Steps whose loss a report keeps per model at most (evenly spaced, the first and last kept)."""


def step_losses(trace: RunTrace) -> dict[str, tuple[tuple[int, float], ...]]:
    """The loss each model was trained on at the observed steps, as (step, loss), by model."""
    found: dict[str, list[tuple[int, float]]] = {}
    for point in trace.points:
        if point.loss is not None and point.step > 0:
            found.setdefault(point.model, []).append((point.step, point.loss))
    return {model: evenly(losses, MAX_STEP_LOSSES) for model, losses in found.items()}

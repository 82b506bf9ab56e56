"""The experiment behind ``reprokit check``.

``run_check`` plans the runs, runs them, compares the pairs and classifies
the differences, with ``--resume-at`` also stopping and resuming a run
(:mod:`reprokit.checking.resuming`); with a baseline it compares one
controlled run with it instead (:mod:`reprokit.checking.baselining`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from reprokit.checking.baselining import check_against_baseline, make_baseline
from reprokit.checking.classify import Finding, add_likely_causes, classify, fixes_for, verdict
from reprokit.checking.comparison import Comparison, Divergence, first_divergence
from reprokit.checking.confirm import confirm_ops, likely_causes, second_training, written_files
from reprokit.checking.explain import (
    Explanation,
    explain_replay,
    explain_without_replay,
    not_reproduced,
    nothing_to_explain,
)
from reprokit.checking.locate import locate
from reprokit.checking.reporting import build_report, pins
from reprokit.checking.result import Report
from reprokit.checking.resuming import resume_check, resume_runs, with_resume_finding
from reprokit.checking.runs import PAIRS, CheckOptions, compare_pair, plan, run_batch
from reprokit.core.backends import profile
from reprokit.core.controls import Controls
from reprokit.core.errors import EnvironmentMismatchError, UsageError
from reprokit.core.vocabulary import Pair, Source, Status
from reprokit.lint.engine import LintFinding, lint_source
from reprokit.run.dispatch import executing
from reprokit.run.environment import environment_differences
from reprokit.run.runner import OnEvent, Target
from reprokit.run.script import reads_clock, validate_script
from reprokit.run.trace import PipelineCall, RunSpec, RunTrace

__all__ = ["CheckOptions", "make_baseline", "plan", "run_check"]

REPLAY_MARGIN = 16  # steps replayed past the first divergent one
REPLAY_ATTEMPTS = 2


def run_check(options: CheckOptions, on_event: OnEvent | None = None) -> Report:
    """Runs the experiment on ``options.target`` and returns its report.

    Raises:
        UsageError: the script does not exist or cannot be read, or the
            baseline is missing, corrupt or for another configuration.
        NoTrainingError: the script trained no Keras model.
        ScriptFailedError: the script failed or timed out in a run.
    """
    validate_script(options.target.script)  # before anything reads it
    with executing(options.settings.execution, one_node=True):  # a pair never compares across machines
        if options.baseline is not None:
            return check_against_baseline(options, options.baseline, on_event)
        return _check(options, on_event)


def _check(options: CheckOptions, on_event: OnEvent | None) -> Report:
    started = time.monotonic()
    options = replace(options, target=replace(options.target, sampled=True))  # see reprokit.checking.locate
    resume = options.resume
    pairs = plan(options.seed, options.quick, clock=reads_clock(options.target.script))
    options, specs = resume_runs(options, resume, pairs)
    lint = _lint(options.target)
    resumed = None
    with run_batch(options, specs, on_event, early=not options.full) as runs:
        traces = runs.traces
        unjudged = _unjudged(traces)
        comparisons = [
            compare_pair(name, traces[a], traces[b])
            for name, a, b in PAIRS
            if a in traces and b in traces and name not in unjudged
        ]
        gpu = any(t.environment.get("gpus") for t in traces.values())
        pipeline = tuple(dict.fromkeys(c for t in traces.values() for c in t.pipeline))
        causes = {source: likely_causes(source, lint, pipeline, gpu) for source in Source}
        suspects = causes[Source.NONDETERMINISTIC_OPS]
        comparisons, more = confirm_ops(options, comparisons, traces, suspects, on_event)
        written = None if options.quick or runs.refusal else written_files(traces)
        if written:
            comparisons, second = second_training(options, comparisons, traces, on_event)
            more += second
        comparisons = locate(options, comparisons, traces | {t.spec.name: t for t in more}, on_event)
        if resume is not None and runs.refusal is None:
            controlled = next((c for c in comparisons if c.name == Pair.CONTROLLED), None)
            resumed = resume_check(options, resume, runs, controlled, on_event)
        if resumed is not None:
            comparisons += [resumed[1]] if resumed[1] is not None else []
            more += resumed[2]  # the resumed run numbered as the uninterrupted run's steps
    planned = {s.name for s in specs}
    traces.update({t.spec.name: t for t in more})
    specs += [t.spec for t in more if t.spec.name not in planned]
    ops_runs = 2 + sum(t.spec.role == Pair.OPS for t in more)
    findings = classify(comparisons, options.seed, pins(traces), runs.refusal, suspects, ops_runs, written)
    findings = fixes_for(findings, options.settings.backend)
    findings = add_likely_causes(findings, causes)
    findings = tuple(_not_judged(f, unjudged) for f in findings)
    findings = with_resume_finding(findings, resume, resumed)
    ran = [s for s in specs if s.name in traces]
    explanation = _explain(options, comparisons, traces, on_event) if options.explain else None
    report = build_report(options, ran, traces, verdict(findings), findings, tuple(comparisons), started)
    pipeline = tuple(dict.fromkeys(c for t in traces.values() for c in t.pipeline))
    return replace(
        report,
        lint=lint,
        refusal=runs.refusal,
        explanation=explanation,
        pipeline=pipeline,
        resume=resumed[0] if resumed is not None else None,
    )


def _unjudged(traces: dict[str, RunTrace]) -> dict[Pair, str]:
    """The pairs whose runs ran in different environments, with why: their bits are never compared.

    Raises:
        EnvironmentMismatchError: the controlled pair is one of them (nothing can be judged).
    """
    found = {}
    for name, a, b in PAIRS:
        if a in traces and b in traces:
            fields = environment_differences(traces[a].environment, traces[b].environment)
            if fields:
                shown = "; ".join(
                    f"{f}: {_field(traces[a].environment, f)} vs {_field(traces[b].environment, f)}" for f in fields
                )
                found[Pair(name)] = (
                    f"Not judged: runs {a} and {b} ran in different environments ({shown}), "
                    "and bits are never compared across environments."
                )
    if Pair.CONTROLLED in found:
        raise EnvironmentMismatchError(
            f"the controlled runs cannot be compared: {found[Pair.CONTROLLED].removeprefix('Not judged: ')} "
            "Run the check again (with --executor ray, every run of a check goes to one node)."
        )
    return found


def _not_judged(finding: Finding, unjudged: Mapping[Pair, str]) -> Finding:
    """A source whose pair ran in different environments is not checked, and the finding says why."""
    reason = unjudged.get(finding.source.pair)
    return finding if reason is None else replace(finding, status=Status.NOT_CHECKED, evidence=reason, runs=0)


def _field(environment: Mapping[str, Any], name: str) -> str:
    if name.startswith("env "):
        return str((environment.get("env") or {}).get(name[4:], "unset"))
    return str(environment.get(name))


def _explain(
    options: CheckOptions, comparisons: Sequence[Comparison], traces: dict[str, RunTrace], on_event: OnEvent | None
) -> Explanation | None:
    """Where the first differing pair (controlled before ops) first went apart."""
    pair = next((c for c in comparisons if c.name in (Pair.CONTROLLED, Pair.OPS) and not c.identical), None)
    if pair is None or pair.divergence is None:
        return nothing_to_explain(comparisons)
    d = pair.divergence
    pipeline = tuple(dict.fromkeys(c for name in pair.runs for c in traces[name].pipeline))
    found = explain_without_replay(pair.name, d, pipeline)
    if found is not None:
        return found
    backend = options.settings.backend
    if not profile(backend).op_explain:
        where_ = f" in {', '.join(d.variables[:3])} of {d.model}" if d.variables else ""
        return Explanation(
            pair.name,
            d.step,
            d.stage,
            "not available",
            f"the runs first differ at step {d.step}{where_}; replaying that step layer by layer and op by op "
            f"is available on TensorFlow only, not on {backend.value}",
        )
    controls = traces[pair.runs[0]].spec.controls
    window = d.step + REPLAY_MARGIN  # a race may strike at another step in the replay
    random_maps = tuple(c for c in pipeline if c.random)
    if random_maps:
        found = _replay_sequential(options, pair.name, d, random_maps, controls, window, on_event)
        if found is not None:
            return found
    replay_target = replace(options.target, max_steps=window, explain_step=window, sampled=False)
    for attempt in range(1, REPLAY_ATTEMPTS + 1):
        specs = [RunSpec(f"replay-{attempt}a", "replay", controls), RunSpec(f"replay-{attempt}b", "replay", controls)]
        with run_batch(replace(options, target=replay_target), specs, on_event) as runs:
            a, b = (runs.traces.get(s.name) for s in specs)
            again = first_divergence(a.points, b.points) if a is not None and b is not None else None
            if a is not None and b is not None and again is not None:
                return explain_replay(pair.name, again, a.replay.get(again.step), b.replay.get(again.step))
    return not_reproduced(pair.name, d)


def _replay_sequential(
    options: CheckOptions,
    pair: str,
    d: Divergence,
    random_maps: tuple[PipelineCall, ...],
    controls: Controls,
    window: int,
    on_event: OnEvent | None,
) -> Explanation | None:
    """Tests the pipeline hypothesis: two runs with every ``Dataset.map`` sequential, else as the pair ran.

    Where they stay identical past the step the pair went apart, the parallel
    map's random draws are the cause; this also works where XLA-compiled
    steps cannot be probed. None if the replays still differ.
    """
    target = replace(options.target, max_steps=window, sequential_maps=True, sampled=False)
    specs = [RunSpec("sequential-a", "replay", controls), RunSpec("sequential-b", "replay", controls)]
    with run_batch(replace(options, target=target), specs, on_event) as runs:
        a, b = (runs.traces.get(s.name) for s in specs)
        if a is None or b is None or first_divergence(a.points, b.points) is not None or a.steps <= d.step:
            return None
    calls = "; ".join(c.described for c in random_maps)
    return Explanation(
        pair,
        d.step,
        d.stage,
        "pipeline",
        f"the runs went apart at step {d.step}; replayed with every Dataset.map sequential, two runs stay "
        f"bit-identical for {a.steps} steps, so the cause is a parallel map that draws random numbers: {calls}. "
        "Fix: enable op determinism, or draw the random numbers outside the parallel map "
        "(e.g. augmentation layers inside the model)",
        pipeline=random_maps,
    )


def _lint(target: Target) -> tuple[LintFinding, ...]:
    """The script's lint findings (none if it cannot be read or parsed: running it will say why)."""
    try:
        return tuple(lint_source(target.script.read_text(encoding="utf-8"), str(target.script)))
    except (OSError, UnicodeDecodeError, UsageError):
        return ()

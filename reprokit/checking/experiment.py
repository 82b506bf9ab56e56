"""The experiments behind ``reprokit check`` and ``reprokit baseline``.

``run_check`` plans the runs, runs them, compares the pairs and classifies
the differences (or, with a baseline, compares one controlled run with it);
``make_baseline`` runs the controlled pair and writes the baseline of a run
shown to be reproducible.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reprokit.checking import baseline, lockfile
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
from reprokit.checking.notes import report_notes
from reprokit.checking.result import NotReproducibleError, Report, RunSummary
from reprokit.checking.resuming import (
    recorded_resume,
    resume_change,
    resume_check,
    resume_finding,
    resume_section,
    resume_specs,
)
from reprokit.checking.runs import PAIRS, CheckOptions, compare_pair, plan, run_batch
from reprokit.core.backends import profile
from reprokit.core.controls import Controls
from reprokit.core.errors import CheckFailedError, EnvironmentMismatchError, UsageError
from reprokit.core.refusals import Refusal
from reprokit.core.series import evenly
from reprokit.core.version import __version__
from reprokit.core.vocabulary import Pair, Source, Status, Verdict
from reprokit.lint.engine import LintFinding, lint_source
from reprokit.run.dispatch import executing
from reprokit.run.environment import environment_differences
from reprokit.run.runner import OnEvent, Target
from reprokit.run.script import reads_clock, validate_script
from reprokit.run.settings import ModelFileOptions
from reprokit.run.trace import Pin, PipelineCall, RunSpec, RunTrace

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
    with executing(options.settings.execution, one_node=True):  # a pair never compares across machines
        if options.baseline is not None:
            return _check_against_baseline(options, options.baseline, on_event)
        return _check(options, on_event)


def _check(options: CheckOptions, on_event: OnEvent | None) -> Report:
    started = time.monotonic()
    resume = options.resume
    if resume is not None:  # every run observes the whole training state, to compare with the resumed one
        options = replace(options, target=replace(options.target, whole_state=True))
    specs = plan(options.seed, options.quick, clock=reads_clock(options.target.script))
    if resume is not None and resume.step is not None:  # they run beside the others
        specs += resume_specs(specs[0].controls, resume.step)
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
        if resume is not None and runs.refusal is None:
            controlled = next((c for c in comparisons if c.name == Pair.CONTROLLED), None)
            resumed = resume_check(options, resume, traces, controlled, on_event)
        if resumed is not None:
            comparisons.append(resumed[1])
            more += resumed[2]  # the resumed run numbered as the uninterrupted run's steps
    planned = {s.name for s in specs}
    traces.update({t.spec.name: t for t in more})
    specs += [t.spec for t in more if t.spec.name not in planned]
    pins = _pins(traces)
    ops_runs = 2 + sum(t.spec.role == Pair.OPS for t in more)
    findings = classify(comparisons, options.seed, pins, runs.refusal, suspects, ops_runs, written)
    findings = fixes_for(findings, options.settings.backend)
    findings = add_likely_causes(findings, causes)
    findings = tuple(_not_judged(f, unjudged) for f in findings)
    if resume is not None:
        result = resumed[0] if resumed is not None else None
        findings = tuple(resume_finding(result) if f.source is Source.RESUME else f for f in findings)
    ran = [s for s in specs if s.name in traces]
    explanation = _explain(options, comparisons, traces, on_event) if options.explain else None
    report = _report(options, ran, traces, verdict(findings), findings, tuple(comparisons), started)
    pipeline = tuple(dict.fromkeys(c for t in traces.values() for c in t.pipeline))
    resume_result = resumed[0] if resumed is not None else None
    return replace(
        report, lint=lint, refusal=runs.refusal, explanation=explanation, pipeline=pipeline, resume=resume_result
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
    replay_target = replace(options.target, max_steps=window, explain_step=window)
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
    target = replace(options.target, max_steps=window, sequential_maps=True)
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


def make_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None = None) -> Report:
    """Runs the controlled pair and, if it is identical, writes its baseline to ``path``.

    Raises:
        NotReproducibleError: the two controlled runs differ; nothing is written.
    """
    with executing(options.settings.execution, one_node=True):
        return _make_baseline(options, path, on_event)


def _make_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None) -> Report:
    started = time.monotonic()
    resume = options.resume
    if resume is not None:  # the baseline records the whole state, and what a restart does
        options = replace(options, target=replace(options.target, whole_state=True))
    specs = plan(options.seed, quick=True)
    if resume is not None and resume.step is not None:
        specs += resume_specs(specs[0].controls, resume.step)
    resumed = None
    with run_batch(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "no baseline was written")
        traces = runs.traces
        comparison = compare_pair(Pair.CONTROLLED, traces["controlled-1"], traces["controlled-2"])
        if resume is not None:
            resumed = resume_check(options, resume, traces, comparison, on_event)
    findings = classify([comparison], options.seed)
    if resume is not None:
        findings = tuple(
            resume_finding(resumed[0] if resumed else None) if f.source is Source.RESUME else f for f in findings
        )
    report = _report(options, specs, traces, verdict(findings), findings, (comparison,), started)
    report = replace(report, resume=resumed[0] if resumed else None)
    if not report.reproducible:
        raise NotReproducibleError(
            "no baseline was written: two controlled runs differ, so the script is not reproducible "
            "(run reprokit check to see why)",
            report,
        )
    target = options.target
    config = _baseline_config(target, options.settings.model_file, traces["controlled-1"])
    document = baseline.from_trace(traces["controlled-1"], target.script, target.args, path, config)
    if report.resume is not None:
        document["resume"] = resume_section(report.resume)
    baseline.write(document, path)
    return report


def _check_against_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None) -> Report:
    target, model_file = options.target, options.settings.model_file
    validate_script(target.script)
    started = time.monotonic()
    config = {"max_steps": target.max_steps, "epochs": model_file.epochs, "batch_size": model_file.batch_size}
    given = {k: v for k, v in config.items() if k == "max_steps" or model_file.explicit}
    document = lockfile.load(path, target.script, target.args, config, given)
    _same_backend(document, options, path)
    resume = recorded_resume(document, options.resume, path)
    if resume is not None:  # recorded with the whole state: compared with the whole state
        options = replace(options, target=replace(target, whole_state=True))
    specs = [RunSpec("controlled-1", Pair.CONTROLLED, Controls(int(document["seed"]), True))]
    if resume is not None and resume.step is not None:
        specs += resume_specs(specs[0].controls, resume.step)
    resumed = None
    with run_batch(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "cannot compare with the baseline")
        traces = runs.traces
        update = lockfile.command("update", target.script, path, target.args, document["config"], resume)
        result = baseline.compare(
            document, traces["controlled-1"], path, options.rtol, options.atol, target.script, update
        )
        if resume is not None:
            resumed = resume_check(options, resume, traces, None, on_event)
            change = resume_change(document["resume"], resumed[0] if resumed else None)
            if change is not None:
                result = replace(result, passed=False, message=f"{result.message}; but {change}")
            elif resumed is not None:
                again = f"stopped after step {resume.step} and run again, it {resumed[0].verdict.words} as recorded"
                result = replace(result, message=f"{result.message}; {again}")
    not_checked = "Not checked (a baseline check compares one controlled run with the baseline)."
    findings = tuple(Finding(source, Status.NOT_CHECKED, not_checked, runs=0) for source in Source)
    if resumed is not None:
        findings = tuple(resume_finding(resumed[0]) if f.source is Source.RESUME else f for f in findings)
    verdict_ = Verdict.MATCHES_BASELINE if result.passed else Verdict.DIFFERS_FROM_BASELINE
    added = resumed[2] if resumed else []
    ran = specs + [t.spec for t in added if t.spec.name not in {s.name for s in specs}]
    traces.update({t.spec.name: t for t in added})
    report = _report(options, ran, traces, verdict_, findings, (), started, result, int(document["seed"]))
    return replace(report, resume=resumed[0] if resumed else None)


def _same_backend(document: Mapping[str, Any], options: CheckOptions, path: Path) -> None:
    """A baseline recorded on another backend is an environment change, said before any run.

    Raises:
        UsageError: the baseline's backend is not the check's.
    """
    recorded = (document.get("environment") or {}).get("backend") or "tensorflow"
    backend = options.settings.backend
    if recorded != backend.value:
        raise UsageError(
            f"environment change: the baseline {path} was recorded on the Keras backend {recorded}, this check "
            f"runs on {backend.value}, and results are never compared across backends; check with --backend "
            f"{recorded}, or record a baseline on {backend.value} (--update-baseline --backend {backend.value})"
        )


def _refuse_baseline(refusal: Refusal | None, what: str) -> None:
    """A refusal of op determinism fails a baseline command as it fails a check: exit 1."""
    if refusal is not None:
        raise CheckFailedError(f"{what}: TensorFlow refused op determinism: {refusal.error}")


def _lint(target: Target) -> tuple[LintFinding, ...]:
    """The script's lint findings (none if it cannot be read or parsed: running it will say why)."""
    try:
        return tuple(lint_source(target.script.read_text(encoding="utf-8"), str(target.script)))
    except (OSError, UnicodeDecodeError, UsageError):
        return ()


def _baseline_config(target: Target, model_file: ModelFileOptions, trace: RunTrace) -> dict[str, Any]:
    config: dict[str, Any] = {"max_steps": target.max_steps}
    if trace.mode == "model-file":
        config.update(epochs=model_file.epochs, batch_size=model_file.batch_size)
    return config


def _report(
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
        runs=tuple(_summary(traces[s.name]) for s in specs),
        environment=environment,
        pins=_pins(traces),
        reprokit_version=__version__,
        quick=options.quick,
        wall_seconds=time.monotonic() - started,
        notes=tuple(report_notes([t for t in traces.values() if not t.preempted], target, options.settings.model_file)),
        max_steps=target.max_steps,
        baseline=baseline_result,
    )


def _pins(traces: dict[str, RunTrace]) -> tuple[Pin, ...]:
    """The script's own seed and determinism calls, once each, over all runs."""
    return tuple(dict.fromkeys(p for t in traces.values() for p in t.pins))


def _summary(trace: RunTrace) -> RunSummary:
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

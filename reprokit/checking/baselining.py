"""The experiments behind ``reprokit baseline`` and ``reprokit check --baseline``.

:func:`make_baseline` runs the controlled pair and writes the baseline of a
run shown to be reproducible; :func:`check_against_baseline` compares one
controlled run with it. A baseline recorded with a resume check
(``--resume-at K``) keeps what a restart did, and a check against it repeats
the resume check and fails when the restart now does something else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from reprokit.checking import baseline, lockfile
from reprokit.checking.classify import Finding, classify, verdict
from reprokit.checking.reporting import build_report
from reprokit.checking.result import NotReproducibleError, Report
from reprokit.checking.resuming import (
    recorded_resume,
    resume_change,
    resume_check,
    resume_runs,
    resume_section,
    with_resume_finding,
)
from reprokit.checking.runs import CheckOptions, compare_pair, plan, run_batch
from reprokit.core.controls import Controls
from reprokit.core.errors import CheckFailedError, UsageError
from reprokit.core.refusals import Refusal
from reprokit.core.vocabulary import Pair, Source, Status, Verdict
from reprokit.run.dispatch import executing
from reprokit.run.runner import OnEvent, Target
from reprokit.run.script import validate_script
from reprokit.run.settings import ModelFileOptions
from reprokit.run.trace import RunSpec, RunTrace

__all__ = ["check_against_baseline", "make_baseline"]


def make_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None = None) -> Report:
    """Runs the controlled pair and, if it is identical, writes its baseline to ``path``.

    Raises:
        NotReproducibleError: the two controlled runs differ; nothing is written.
    """
    with executing(options.settings.execution, one_node=True):
        return _make_baseline(options, path, on_event)


def _make_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None) -> Report:
    started = time.monotonic()
    resume = options.resume  # the baseline then records the whole state, and what a restart does
    options, specs = resume_runs(options, resume, plan(options.seed, quick=True))
    resumed = None
    with run_batch(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "no baseline was written")
        traces = runs.traces
        comparison = compare_pair(Pair.CONTROLLED, traces["controlled-1"], traces["controlled-2"])
        if resume is not None:
            resumed = resume_check(options, resume, runs, comparison, on_event)
    findings = classify([comparison], options.seed)
    findings = with_resume_finding(findings, resume, resumed)
    report = build_report(options, specs, traces, verdict(findings), findings, (comparison,), started)
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


def check_against_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None) -> Report:
    target, model_file = options.target, options.settings.model_file
    validate_script(target.script)
    started = time.monotonic()
    config = {"max_steps": target.max_steps, "epochs": model_file.epochs, "batch_size": model_file.batch_size}
    given = {k: v for k, v in config.items() if k == "max_steps" or model_file.explicit}
    document = lockfile.load(path, target.script, target.args, config, given)
    _same_backend(document, options, path)
    resume = recorded_resume(document, options.resume, path)  # recorded with the whole state: compared with it
    controlled = [RunSpec("controlled-1", Pair.CONTROLLED, Controls(int(document["seed"]), True))]
    options, specs = resume_runs(options, resume, controlled)
    resumed = None
    with run_batch(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "cannot compare with the baseline")
        traces = runs.traces
        update = lockfile.command("update", target.script, path, target.args, document["config"], resume)
        result = baseline.compare(
            document, traces["controlled-1"], path, options.rtol, options.atol, target.script, update
        )
        if resume is not None:
            resumed = resume_check(options, resume, runs, None, on_event)
            change = resume_change(document["resume"], resumed[0] if resumed else None)
            if change is not None:
                result = replace(result, passed=False, message=f"{result.message}; but {change}")
            elif resumed is not None:
                again = f"stopped after step {resume.step} and run again, it {resumed[0].verdict.words} as recorded"
                result = replace(result, message=f"{result.message}; {again}")
    not_checked = "Not checked (a baseline check compares one controlled run with the baseline)."
    findings = tuple(Finding(source, Status.NOT_CHECKED, not_checked, runs=0) for source in Source)
    findings = with_resume_finding(findings, resume, resumed)
    verdict_ = Verdict.MATCHES_BASELINE if result.passed else Verdict.DIFFERS_FROM_BASELINE
    added = resumed[2] if resumed else []
    ran = specs + [t.spec for t in added if t.spec.name not in {s.name for s in specs}]
    traces.update({t.spec.name: t for t in added})
    report = build_report(options, ran, traces, verdict_, findings, (), started, result, int(document["seed"]))
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


def _baseline_config(target: Target, model_file: ModelFileOptions, trace: RunTrace) -> dict[str, Any]:
    config: dict[str, Any] = {"max_steps": target.max_steps}
    if trace.mode == "model-file":
        config.update(epochs=model_file.epochs, batch_size=model_file.batch_size)
    return config

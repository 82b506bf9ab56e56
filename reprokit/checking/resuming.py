"""The runs of a resume check: the run stopped after step K, the run started again in its folder, and the finding.

The uninterrupted run is the controlled pair's first (every run of a resume
check observes the whole training state). With ``--resume-at K`` the stopped
run starts with the check's first runs; with ``--resume`` it waits for the
uninterrupted run to learn how many steps the training makes, and stops in
the middle. The verdict is :mod:`reprokit.checking.resume`'s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from reprokit.checking.classify import Finding
from reprokit.checking.comparison import Comparison, compare_runs
from reprokit.checking.evidence import EXPLANATIONS
from reprokit.checking.restart import comparable, renamed_arrays, renumbered, same_names, starting_points
from reprokit.checking.resume import Resumed, ResumeResult, analyse, failed, not_judged
from reprokit.checking.runs import CheckOptions, ResumeAt, Runs, run_batch
from reprokit.core.controls import Controls
from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Pair, Source, Status
from reprokit.run.runner import OnEvent
from reprokit.run.trace import RunSpec, RunTrace, saved_arrays

STOPPED = "stopped"
RESUMED = "resumed"


def resume_specs(controls: Controls, step: int) -> list[RunSpec]:
    """The run killed right after optimizer step ``step``, and the run started again among what it wrote."""
    return [
        RunSpec(STOPPED, Pair.RESUME, controls, preempt_after=step),
        RunSpec(RESUMED, Pair.RESUME, controls, after=STOPPED),
    ]


def resume_runs(
    options: CheckOptions, resume: ResumeAt | None, specs: list[RunSpec]
) -> tuple[CheckOptions, list[RunSpec]]:
    """The options and runs of a check that also stops and resumes a run (as they are, where none was asked for).

    Every run then observes the whole training state, to be compared with the
    resumed one; with a step K the stopped and resumed runs join ``specs``, to
    run beside the others (with ``--resume`` they wait for the step count).
    """
    if resume is None:
        return options, specs
    options = replace(options, target=replace(options.target, whole_state=True))
    if resume.step is not None:
        specs = [*specs, *resume_specs(specs[0].controls, resume.step)]
    return options, specs


def with_resume_finding(
    findings: Sequence[Finding], resume: ResumeAt | None, resumed: tuple[ResumeResult, Any, Any] | None
) -> tuple[Finding, ...]:
    """``findings`` with the resume source's answer, where a resume check was asked for."""
    if resume is None:
        return tuple(findings)
    found = resume_finding(resumed[0] if resumed is not None else None)
    return tuple(found if f.source is Source.RESUME else f for f in findings)


def resume_check(
    options: CheckOptions,
    resume: ResumeAt,
    runs: Runs,
    controlled: Comparison | None,
    on_event: OnEvent | None,
) -> tuple[ResumeResult, Comparison | None, list[RunTrace]] | None:
    """Stops a run after step K and runs the script again in its folder (unless they ran already), and compares.

    Returns the result, the resumed run compared with the uninterrupted one
    after the restart (None if the resumed run failed), and the runs it added;
    None if the uninterrupted run is missing (op determinism was refused).

    Raises:
        UsageError: K is not a step before the training's last.
    """
    uninterrupted = runs.traces.get("controlled-1")
    if uninterrupted is None:
        return None
    steps = uninterrupted.steps
    k = resume.step if resume.step is not None else steps // 2
    if uninterrupted.stopped_early and controlled is not None:  # its pair proved it differs: nothing to judge
        return not_judged(uninterrupted, k, controlled), None, [t for t in (runs.traces.get(STOPPED),) if t]
    if steps < 2 or k >= steps:
        choose = f"choose a step from 1 to {steps - 1}" if steps > 1 else "train more steps"
        raise UsageError(
            f"{resume.option}: the training made {steps} optimizer step{'s' if steps != 1 else ''}, so it cannot "
            f"be stopped after step {k} and resumed; {choose}"
        )
    if STOPPED in runs.traces:
        return _compare(uninterrupted, runs, k, controlled)
    with run_batch(options, resume_specs(uninterrupted.spec.controls, k), on_event) as more:
        return _compare(uninterrupted, more, k, controlled)


def _compare(
    uninterrupted: RunTrace, runs: Runs, k: int, controlled: Comparison | None
) -> tuple[ResumeResult, Comparison | None, list[RunTrace]]:
    """The resumed run against the uninterrupted one (while both runs' arrays exist)."""
    stopped = runs.traces[STOPPED]
    if not stopped.preempted:
        raise UsageError(
            f"--resume-at {k}: the stopped run ended after {stopped.steps} optimizer steps, before step {k + 1}; "
            "choose an earlier step"
        )
    if RESUMED not in runs.traces:
        error = runs.failed[RESUMED]
        said = error.message.removeprefix(f"the script failed in run {RESUMED}: ")
        return failed(uninterrupted, stopped, k, said, error.details), None, [stopped]
    resumed = runs.traces[RESUMED]
    named = same_names(uninterrupted, resumed)
    starts = starting_points(uninterrupted, named, k)
    after, again = comparable(uninterrupted, named, starts)
    with saved_arrays(uninterrupted) as arrays_a, saved_arrays(resumed) as saved:
        arrays_b = renamed_arrays(saved, uninterrupted, resumed)
        comparison = compare_runs(Pair.RESUME, after, again, arrays_a, arrays_b)
    result = analyse(uninterrupted, stopped, named, k, comparison, controlled)
    return result, comparison, [stopped, renumbered(resumed, starts)]


def resume_finding(result: ResumeResult | None) -> Finding:
    """The resume source's finding: detected where the resumed training ends elsewhere or starts over."""
    if result is None:  # op determinism was refused: there is no controlled run to resume
        return Finding(Source.RESUME, Status.NOT_CHECKED, "Not checked (no controlled run).", runs=0)
    if result.verdict is Resumed.NOT_JUDGED:
        return Finding(Source.RESUME, Status.NOT_SEPARABLE, result.evidence, runs=3)
    if result.verdict.good:
        return Finding(Source.RESUME, Status.NONE, result.evidence, runs=3)
    fixes = "\n\n".join(dict.fromkeys(x.fix for x in result.lost))  # one fix restores the optimizer
    return Finding(Source.RESUME, Status.DETECTED, result.evidence, fixes or None, EXPLANATIONS[Source.RESUME], runs=3)


def recorded_resume(document: Mapping[str, Any], asked: ResumeAt | None, path: Path) -> ResumeAt | None:
    """The resume check a baseline was recorded with, which a check against it repeats.

    Raises:
        UsageError: ``asked`` (``--resume-at``) is not the baseline's.
    """
    recorded = document.get("resume")
    at = ResumeAt(int(recorded["stopped_after"])) if recorded else None
    if asked is not None and at != asked:
        was = at.option if at is not None else "no resume check"
        raise UsageError(
            f"baseline {path} was recorded with {was}; this check asks for {asked.option} "
            "(record the baseline anew with --update-baseline to change it)"
        )
    return at


def resume_section(result: ResumeResult) -> dict[str, Any]:
    """What a baseline keeps of a resume check: where it stopped, and what the restart did."""
    return {"stopped_after": result.stopped_after, "verdict": result.verdict.value, "resumed_from": result.resumed_from}


def resume_change(recorded: Mapping[str, Any], result: ResumeResult | None) -> str | None:
    """How the resume check now differs from the baseline's (None: it does the same)."""
    if result is None:
        return "the resume check could not run"
    now = resume_section(result)
    if now == dict(recorded):
        return None
    was = Resumed(recorded["verdict"]).words
    lost = "; ".join(x.state.label for x in result.lost)
    where = _from(result.resumed_from) + (f"; not restored: {lost}" if lost else "")
    return (
        f"stopped after step {result.stopped_after} and run again, it now {result.verdict.words} ({where}), "
        f"where the baseline {was} ({_from(recorded.get('resumed_from'))})"
    )


def _from(start: int | None) -> str:
    return "from no step of the training" if start is None else f"from step {start}"

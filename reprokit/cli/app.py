"""The ``reprokit`` command. Commands are thin: parse, call the library, render.

Errors become exit codes in one place, :func:`reprokit.cli.kit.exit_codes`:
0 nothing listed in ``--fail-on`` was detected, 1 something was, 2 bad input
to reprokit, 3 the script failed or timed out in a run, 4 a bug in reprokit,
130 interrupted. The seed-study commands are in :mod:`reprokit.cli.study`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from reprokit.checking.baseline import DEFAULT_ATOL, DEFAULT_RTOL
from reprokit.checking.experiment import CheckOptions, make_baseline, run_check
from reprokit.checking.lockfile import DEFAULT_PATH
from reprokit.checking.result import Report
from reprokit.checking.runs import MIDDLE, ResumeAt
from reprokit.cli import align as aligncli
from reprokit.cli import backends as backendscli
from reprokit.cli import study as studycli
from reprokit.cli import tune as tunecli
from reprokit.cli.kit import (
    RUN_OPTIONS,
    USAGE_ERRORS,
    FormatOpt,
    Output,
    ScriptArg,
    ScriptArgs,
    SeedOpt,
    emit,
    error_console,
    exit_codes,
    guard_outputs,
    parse_outputs,
    print_report,
    run_options,
    usage_error,
)
from reprokit.cli.progress import progress
from reprokit.core.controls import DEFAULT_SEED
from reprokit.core.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_CHECK,
    EXIT_INTERRUPTED,
    EXIT_OK,
    Terminated,
    UsageError,
)
from reprokit.core.files import json_text
from reprokit.core.paths import check_outputs
from reprokit.core.version import __version__
from reprokit.core.vocabulary import FailOn, Source, fail_on_sources
from reprokit.lint.docs import rule_table, rules_document
from reprokit.lint.engine import lint_paths
from reprokit.lint.rules import REGISTRY
from reprokit.report.ci import Format, github_annotations, render
from reprokit.run.runner import Target
from reprokit.run.settings import RunSettings

app = typer.Typer(
    name="reprokit",
    help="Is your Keras training reproducible, and if not, why?",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class FailOnChoice(str, Enum):
    """``--fail-on`` as typer shows and validates it; converted once, where it enters, by ``fail_on_sources``."""

    seed = "seed"
    nondeterministic_ops = "nondeterministic-ops"
    uncontrolled = "uncontrolled"
    written_files = "written-files"
    resume = "resume"
    any = "any"
    none = "none"


DEFAULT_FAIL_ON: FailOn = frozenset({Source.UNCONTROLLED})


def _version(value: bool) -> None:
    if value:
        print(f"reprokit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Is your Keras training reproducible, and if not, why?"""


MaxStepsOpt = Annotated[
    int | None, typer.Option(min=1, help="Stop every run after this many optimizer steps (fast CI checks).")
]


ResumeAtOpt = Annotated[
    int | None,
    typer.Option(
        "--resume-at",
        metavar="K",
        help="Also kill a run right after optimizer step K, run the script again in its folder, "
        "and check that it resumes to the same model.",
    ),
]
ResumeOpt = Annotated[bool, typer.Option("--resume", help="--resume-at the middle of the training.")]


def _target(script: Path, script_args: list[str] | None, max_steps: int | None) -> Target:
    return Target(script=script, args=tuple(script_args or ()), max_steps=max_steps)


@app.command()
@run_options
def check(
    script: ScriptArg,
    script_args: ScriptArgs = None,
    seed: SeedOpt = DEFAULT_SEED,
    quick: Annotated[bool, typer.Option("--quick", help="Run only the controlled pair (2 runs).")] = False,
    fail_on: Annotated[
        list[FailOnChoice] | None,
        typer.Option(help="Exit 1 when this source is detected (repeatable). [default: uncontrolled]"),
    ] = None,
    output_format: FormatOpt = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="Compare one controlled run with this baseline (reprokit.lock.json).")
    ] = None,
    update_baseline: Annotated[
        bool, typer.Option("--update-baseline", help="Rewrite the --baseline file from new runs instead.")
    ] = False,
    rtol: Annotated[float, typer.Option(min=0, help="Relative tolerance when bits cannot be compared.")] = DEFAULT_RTOL,
    atol: Annotated[float, typer.Option(min=0, help="Absolute tolerance when bits cannot be compared.")] = DEFAULT_ATOL,
    max_steps: MaxStepsOpt = None,
    settings: RunSettings = RUN_OPTIONS,
    explain: Annotated[
        bool, typer.Option("--explain", help="Find the layer, op or tf.data call where the first difference arises.")
    ] = False,
    full: Annotated[
        bool, typer.Option("--full", help="Train every run to the end, even after its pair's divergence is proven.")
    ] = False,
    resume_at: ResumeAtOpt = None,
    resume: ResumeOpt = False,
) -> None:
    """Train SCRIPT several times under controlled settings and explain every difference.

    Runs: 2 with seed S and op determinism on (controlled), 2 with seed S and
    default ops, 1 with seed S+1 and op determinism on. With --baseline: one
    controlled run, compared with the baseline. With --resume-at K (or
    --resume): 2 more, one killed after step K and one started again in its
    folder. Reprokit options go before the script; the script's own arguments
    after --.
    """
    with exit_codes():
        outputs = parse_outputs(output_format or [], output)
        fail = fail_on_sources(f.value for f in fail_on) if fail_on else DEFAULT_FAIL_ON
        target = _target(script, script_args, max_steps)
        if update_baseline and baseline is not None:  # named to be rewritten, so it may be an existing file
            guard_outputs(outputs, [script], [baseline])
            check_outputs([baseline], [script])
        else:
            guard_outputs(outputs, [script], [baseline] if baseline is not None else [])
        resume_point = resume_option(resume_at, resume)
        if update_baseline:
            if baseline is None:
                raise UsageError("--update-baseline needs --baseline FILE: the baseline to rewrite")
            _write_baseline(CheckOptions(target=target, seed=seed, settings=settings, resume=resume_point), baseline)
            return
        options = CheckOptions(
            target=target,
            seed=seed,
            quick=quick,
            settings=settings,
            baseline=baseline,
            rtol=rtol,
            atol=atol,
            explain=explain,
            full=full,
            resume=resume_point,
        )
        _check_and_exit(options, outputs, fail)


def resume_option(resume_at: int | None, resume: bool) -> ResumeAt | None:
    """``--resume-at K`` or ``--resume`` as one value (None: no resume check).

    Raises:
        UsageError: both were given, or K is below 1.
    """
    if resume_at is not None and resume:
        raise UsageError(f"expected --resume-at {resume_at} or --resume, received both")
    return ResumeAt.of(MIDDLE if resume else resume_at)


def _check_and_exit(options: CheckOptions, outputs: Sequence[Output], fail: FailOn) -> None:
    with progress(quiet=any(o.path is None and o.format is not Format.RICH for o in outputs)) as on_event:
        report = run_check(options, on_event)
    _emit(report, outputs, fail)
    raise typer.Exit(exit_code(report, fail))


@app.command()
@run_options
def explain(
    script: ScriptArg,
    script_args: ScriptArgs = None,
    seed: SeedOpt = DEFAULT_SEED,
    output_format: FormatOpt = None,
    max_steps: MaxStepsOpt = None,
    settings: RunSettings = RUN_OPTIONS,
) -> None:
    """Say where the first difference between two trainings of SCRIPT comes from.

    Runs the check, then for the first differing pair names the tf.data call
    behind an input-pipeline difference, or replays the first divergent step
    with every layer and gradient probed and names the first layer whose
    inputs match but whose outputs differ (or the gradient, or the update).
    The same as `reprokit check --explain`.
    """
    with exit_codes():
        outputs = parse_outputs(output_format or [], None)
        target = _target(script, script_args, max_steps)
        guard_outputs(outputs, [script])
        options = CheckOptions(target=target, seed=seed, explain=True, settings=settings)
        _check_and_exit(options, outputs, DEFAULT_FAIL_ON)


@app.command(name="baseline")
@run_options
def baseline_command(
    script: ScriptArg,
    script_args: ScriptArgs = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The baseline file to write.")] = DEFAULT_PATH,
    seed: SeedOpt = DEFAULT_SEED,
    max_steps: MaxStepsOpt = None,
    settings: RunSettings = RUN_OPTIONS,
    resume_at: ResumeAtOpt = None,
    resume: ResumeOpt = False,
) -> None:
    """Record a baseline (golden fingerprint) of SCRIPT for `reprokit check --baseline`.

    Runs the controlled pair (seed S, op determinism on) twice and writes the
    baseline only if both runs are bit-identical. With --resume-at K (or
    --resume) it also records what a training stopped after step K and run
    again does, and checks against it repeat that.
    """
    with exit_codes():
        target = _target(script, script_args, max_steps)
        guard_outputs([Output(Format.JSON, output)], [script])
        options = CheckOptions(target=target, seed=seed, settings=settings, resume=resume_option(resume_at, resume))
        _write_baseline(options, output)


@app.command()
def lint(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Python files or folders to lint.", show_default=False)
    ] = None,
    output_format: Annotated[str, typer.Option("--format", "-f", help="text or json.")] = "text",
    select: Annotated[
        list[str] | None, typer.Option(help="Only these rule codes or prefixes, e.g. RK1 (repeatable).")
    ] = None,
    ignore: Annotated[
        list[str] | None, typer.Option(help="Never these rule codes or prefixes, e.g. RK2 (repeatable).")
    ] = None,
    list_rules: Annotated[
        bool, typer.Option("--list-rules", help="List the rules (those selected) instead of linting.")
    ] = False,
) -> None:
    """Find reproducibility hazards in training code without running it.

    Exit 0 when nothing was found, 1 when something was, 2 on bad input. A line
    ending in `# reprokit: ignore[RK101]` (or `# reprokit: ignore`) is skipped.
    `--select`/`--ignore` take codes and prefixes (`RK1`, `RK201`); the more
    specific wins. `--list-rules` lists the rules and exits 0.
    """
    with exit_codes():
        if output_format not in ("text", "json"):
            raise UsageError(f"expected --format text or json, received {output_format!r}")
        if list_rules:
            if paths:
                raise UsageError(f"expected no paths with --list-rules, received {' '.join(map(str, paths))}")
            rules = REGISTRY.select(select or (), ignore or ())
            if output_format == "json":
                sys.stdout.write(json_text(rules_document(rules)))
            else:
                print_report(rule_table(rules))
            raise typer.Exit(EXIT_OK)
        if not paths:
            raise UsageError("expected Python files or folders to lint (or --list-rules), received none")
        found = lint_paths(paths, select or (), ignore or ())
        if output_format == "json":
            sys.stdout.write(json_text([dataclasses.asdict(f) for f in found]))
        else:
            for finding in found:
                print(finding)
            print(f"{len(found)} finding{'s' if len(found) != 1 else ''}", file=sys.stderr)
        raise typer.Exit(EXIT_FAILED_CHECK if found else EXIT_OK)


def _write_baseline(options: CheckOptions, path: Path) -> None:
    with progress(quiet=False) as on_event:
        report = make_baseline(options, path, on_event)
    run = report.runs[0]
    error_console().print(
        f"reprokit: wrote baseline {path}: {run.steps} steps of {', '.join(run.models)}, seed {report.seed}, "
        "two controlled runs bit-identical"
    )


app.command(name="backends")(backendscli.backends_command)
app.command(name="seeds")(studycli.seeds_command)
app.command(name="align")(aligncli.align_command)
app.command(name="compare")(studycli.compare_command)
app.command(name="tune")(tunecli.tune_command)


def exit_code(report: Report, fail_on: FailOn) -> int:
    """1 if the report fails under ``fail_on`` (see :meth:`Report.failures`); else 0."""
    return EXIT_FAILED_CHECK if report.failures(fail_on) else EXIT_OK


def _emit(report: Report, outputs: Sequence[Output], fail_on: FailOn) -> None:
    """Writes every requested format (see :func:`reprokit.cli.kit.emit`), and annotations in GitHub Actions."""
    stdout_taken = emit(report, outputs, lambda chosen: render(report, chosen, fail_on))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        stream = sys.stderr if stdout_taken else sys.stdout
        for line in github_annotations(report, fail_on):
            print(line, file=stream)


@contextlib.contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """SIGTERM and SIGHUP stop the command as Ctrl-C does (:class:`Terminated`), runs and folders cleaned up.

    The first one raises; any later one is ignored while the clean-up runs.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set in the main thread
        return
    caught = {signal.SIGTERM: "SIGTERM", signal.SIGHUP: "SIGHUP"}
    previous = {signum: signal.getsignal(signum) for signum in caught}

    def stop(signum: int, frame: object) -> None:
        for other in caught:
            signal.signal(other, signal.SIG_IGN)
        raise Terminated(signum, caught[signal.Signals(signum)])

    for signum in caught:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (the console-script entry point)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        with terminated_as_interrupted():
            result = app(args=args, prog_name="reprokit", standalone_mode=False)
    except Terminated as e:
        return e.exit_code
    except USAGE_ERRORS as e:
        message = e.format_message()  # type: ignore[attr-defined]
        if type(e).__name__ == "NoSuchOption":
            message += " (reprokit's options go before the script, the script's own after --)"
        usage_error(message)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, typer.Abort):
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK

"""The seed-study commands, ``reprokit seeds`` and ``reprokit compare``: parse, call the library, render."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from reprokit.cli.kit import (
    RUN_OPTIONS,
    FormatOpt,
    Output,
    ScriptArg,
    ScriptArgs,
    emit,
    exit_codes,
    guard_outputs,
    parse_outputs,
    run_options,
)
from reprokit.cli.progress import study_progress
from reprokit.core.controls import DEFAULT_SEED
from reprokit.core.errors import EXIT_FAILED_CHECK, EXIT_OK
from reprokit.core.vocabulary import Outcome
from reprokit.report.ci import Format
from reprokit.report.studyformats import render_study
from reprokit.run.runner import Target
from reprokit.run.settings import RunSettings
from reprokit.study.api import DEFAULT_SEEDS, run_compare, run_seeds
from reprokit.study.result import CompareReport, SeedsReport
from reprokit.study.rounds import DEFAULT_MAX_SEEDS, SeedCount
from reprokit.study.running import StudyOptions


class FailIf(str, Enum):
    """``--fail-if``: which outcomes of ``compare`` exit 1."""

    worse = "worse"
    better = "better"
    different = "different"

    @property
    def outcomes(self) -> frozenset[Outcome]:
        if self is FailIf.different:
            return frozenset({Outcome.BETTER, Outcome.WORSE})
        return frozenset({Outcome(self.value)})


class ModeChoice(str, Enum):
    min = "min"
    max = "max"


SeedsOpt = Annotated[
    str,
    typer.Option(
        "--seeds",
        "-n",
        help="Seeds (runs) per variant: a number, or auto: add seeds in rounds until the verdict is settled.",
    ),
]
MaxSeedsOpt = Annotated[int, typer.Option("--max-seeds", min=2, help="The most seeds per variant with --seeds auto.")]
FirstSeedOpt = Annotated[int, typer.Option("--seed", min=0, max=2**32 - 2, help="The first seed S: S, S+1, …")]
MetricOpt = Annotated[
    str | None, typer.Option(help="The headline metric (val_accuracy, evaluate_accuracy, loss…). [default: chosen]")
]
ModeOpt = Annotated[
    ModeChoice | None, typer.Option(help="Whether higher (max) or lower (min) is better. [default: from the name]")
]
FolderOpt = Annotated[
    Path | None,
    typer.Option("--study-dir", help="Where finished runs are kept. [default: ~/.cache/reprokit/studies]"),
]
ResumeOpt = Annotated[
    bool, typer.Option("--resume", hidden=True, help="No effect: the runs the study folder holds are always reused.")
]
FreshOpt = Annotated[
    bool,
    typer.Option(
        "--fresh",
        help="Train every run again, even those the study folder holds (stored runs are reused by default).",
    ),
]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the report to this file instead.")]


@run_options
def seeds_command(
    script: ScriptArg,
    script_args: ScriptArgs = None,
    n_seeds: SeedsOpt = DEFAULT_SEEDS,
    max_seeds: MaxSeedsOpt = DEFAULT_MAX_SEEDS,
    seed: FirstSeedOpt = DEFAULT_SEED,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    no_repeat: Annotated[
        bool, typer.Option("--no-repeat", help="Do not run seed S twice (whether it pins the script is then unknown).")
    ] = False,
    output_format: FormatOpt = None,
    output: OutputOpt = None,
    study_dir: FolderOpt = None,
    fresh: FreshOpt = False,
    resume: ResumeOpt = False,
    settings: RunSettings = RUN_OPTIONS,
) -> None:
    """How much does the seed matter for SCRIPT? Train it once per seed and report the spread.

    Every run has every seed fixed and op determinism on, in a fresh process;
    seed S runs twice to show that the seed pins the script (exit 1 if it
    does not). The script's own arguments go after --.
    """
    del resume  # stored runs are always reused: --resume is accepted for the commands written before
    with exit_codes():
        outputs = parse_outputs(output_format or [], output)
        guard_outputs(outputs, [script])
        count = SeedCount.parse(n_seeds, max_seeds)
        total = (count.fixed or 0) + (0 if no_repeat else 1)
        with study_progress(total, [str(script)], metric, quiet(outputs)) as on_result:
            report = run_seeds(
                Target(script, tuple(script_args or ())),
                StudyOptions(count.fixed or 1, seed, True, not no_repeat, study_dir, fresh, settings),
                metric,
                None if mode is None else mode.value,
                on_result=on_result,
                count=count,
            )
        _emit(report, outputs, frozenset())
        raise typer.Exit(EXIT_FAILED_CHECK if report.pinned is False else EXIT_OK)


@run_options
def compare_command(
    variants: Annotated[
        list[str],
        typer.Argument(
            help='Two or more scripts or quoted command lines ("train.py --lr 0.1"); one with --against.',
            show_default=False,
        ),
    ],
    common_args: Annotated[
        list[str] | None, typer.Option("--arg", help="An argument appended to every variant (repeatable).")
    ] = None,
    against: Annotated[
        str | None, typer.Option(help="Compare the variant at this git ref (first) with the working tree.")
    ] = None,
    n_seeds: SeedsOpt = DEFAULT_SEEDS,
    max_seeds: MaxSeedsOpt = DEFAULT_MAX_SEEDS,
    seed: FirstSeedOpt = DEFAULT_SEED,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    unpaired: Annotated[bool, typer.Option("--unpaired", help="Give every variant seeds of its own.")] = False,
    min_effect: Annotated[
        float | None, typer.Option(min=0, help="Differences within ±this do not matter: allows 'equivalent'.")
    ] = None,
    fail_if: Annotated[
        list[FailIf] | None, typer.Option(help="Exit 1 when a variant is worse, better or different (repeatable).")
    ] = None,
    output_format: FormatOpt = None,
    output: OutputOpt = None,
    study_dir: FolderOpt = None,
    fresh: FreshOpt = False,
    resume: ResumeOpt = False,
    settings: RunSettings = RUN_OPTIONS,
) -> None:
    """Did a change move the metric beyond seed noise? Train every variant with the same seeds and compare.

    Variants: scripts (a.py b.py), quoted command lines ("train.py --lr 0.1"
    "train.py --lr 0.01"), or one script with --against REF. Each is compared
    with the first: better, worse, within seed noise, or equivalent (with
    --min-effect). Arguments after -- go to every variant.
    """
    del resume  # stored runs are always reused: --resume is accepted for the commands written before
    with exit_codes():
        outputs = parse_outputs(output_format or [], output)
        guard_outputs(outputs, _scripts_of(variants))
        count = SeedCount.parse(n_seeds, max_seeds)
        failing = frozenset(o for f in fail_if or () for o in f.outcomes)
        variants_count = 2 if against is not None else len(variants)
        labels = [str(v) for v in variants] if against is None else [f"{variants[0]} @ {against}", str(variants[0])]
        if len(settings.backends) > 1:
            variants_count *= len(settings.backends)
            labels = [f"{label} [{b.value}]" for label in labels for b in settings.backends]
        with study_progress((count.fixed or 0) * variants_count, labels, metric, quiet(outputs)) as on_result:
            report = run_compare(
                variants,
                StudyOptions(count.fixed or 1, seed, not unpaired, False, study_dir, fresh, settings),
                args=common_args or (),
                against_ref=against,
                metric=metric,
                mode=None if mode is None else mode.value,
                min_effect=min_effect,
                on_result=on_result,
                count=count,
            )
        _emit(report, outputs, failing)
        raise typer.Exit(EXIT_FAILED_CHECK if report.outcomes() & failing else EXIT_OK)


def _scripts_of(variants: Sequence[str]) -> list[Path]:
    """The script of each variant's command line (one that does not parse is refused later, by its parser)."""
    scripts = []
    for variant in variants:
        with contextlib.suppress(ValueError):
            words = shlex.split(variant)
            scripts += [Path(words[0])] if words else []
    return scripts


def quiet(outputs: Sequence[Output]) -> bool:
    return any(o.path is None and o.format is not Format.RICH for o in outputs)


def _emit(report: SeedsReport | CompareReport, outputs: Sequence[Output], failing: frozenset[Outcome]) -> None:
    """Writes every requested format, and a Markdown summary for GitHub."""
    emit(report, outputs, lambda chosen: render_study(report, chosen, failing))

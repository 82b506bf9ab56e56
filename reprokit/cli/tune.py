"""``reprokit tune``: parse, call the library, render."""

from __future__ import annotations

from enum import Enum
from typing import Annotated

import typer

from reprokit.cli.kit import (
    RUN_OPTIONS,
    FormatOpt,
    ScriptArg,
    ScriptArgs,
    emit,
    exit_codes,
    guard_outputs,
    parse_outputs,
    run_options,
)
from reprokit.cli.progress import study_progress
from reprokit.cli.study import (
    FirstSeedOpt,
    FolderOpt,
    FreshOpt,
    MaxSeedsOpt,
    MetricOpt,
    ModeOpt,
    OutputOpt,
    ResumeOpt,
    SeedsOpt,
    quiet,
)
from reprokit.core.controls import DEFAULT_SEED
from reprokit.core.errors import EXIT_FAILED_CHECK, EXIT_OK
from reprokit.report.tunetext import render_tune
from reprokit.run.settings import RunSettings
from reprokit.study.api import DEFAULT_SEEDS
from reprokit.study.grid import Passing, configurations, parse_grid
from reprokit.study.rounds import DEFAULT_MAX_SEEDS, SeedCount
from reprokit.study.running import StudyOptions
from reprokit.study.tuneresult import Concern
from reprokit.study.tuning import run_tune


class PassChoice(str, Enum):
    args = "args"
    env = "env"


class TuneFailIf(str, Enum):
    """``tune --fail-if``: which concerns exit 1."""

    tied = "tied"
    unstable = "unstable"


@run_options
def tune_command(
    script: ScriptArg,
    script_args: ScriptArgs = None,
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid",
            "-g",
            help="A hyperparameter and its values, NAME=V1,V2,… (repeatable: every combination is trained).",
            show_default=False,
        ),
    ] = None,
    passing: Annotated[
        PassChoice,
        typer.Option(
            "--pass",
            help="How values reach the script: args (--NAME V) or env (REPROKIT_PARAMS, REPROKIT_PARAM_NAME).",
        ),
    ] = PassChoice.args,
    n_seeds: SeedsOpt = DEFAULT_SEEDS,
    max_seeds: MaxSeedsOpt = DEFAULT_MAX_SEEDS,
    seed: FirstSeedOpt = DEFAULT_SEED,
    metric: MetricOpt = None,
    mode: ModeOpt = None,
    min_effect: Annotated[
        float | None, typer.Option(min=0, help="Differences within ±this do not matter (settles --seeds auto).")
    ] = None,
    fail_if: Annotated[
        list[TuneFailIf] | None,
        typer.Option(help="Exit 1 when the best is tied with another configuration, or one seed picks another."),
    ] = None,
    output_format: FormatOpt = None,
    output: OutputOpt = None,
    study_dir: FolderOpt = None,
    fresh: FreshOpt = False,
    resume: ResumeOpt = False,
    settings: RunSettings = RUN_OPTIONS,
) -> None:
    """Which hyperparameters really win? Train every combination of the grid with the same seeds and rank them.

    Every configuration runs SCRIPT --NAME V … (or with --pass env, the values
    in REPROKIT_PARAMS) once per seed, every configuration with the same
    seeds. The report gives each configuration's mean and interval, the
    probability that each is the best, how often one seed's winner is the
    overall winner, rank stability (Kendall's W), the configurations tied
    with the best, and how many seeds a reliable choice needs.
    """
    del resume  # stored runs are always reused: --resume is accepted for the commands written before
    with exit_codes():
        outputs = parse_outputs(output_format or [], output)
        guard_outputs(outputs, [script])
        axes = parse_grid(grid or [])
        count = SeedCount.parse(n_seeds, max_seeds)
        failing = frozenset(Concern(f.value) for f in fail_if or ())
        labels = [c.label for c in configurations(axes)]
        with study_progress((count.fixed or 0) * len(labels), labels, metric, quiet(outputs)) as on_result:
            report = run_tune(
                script,
                tuple(script_args or ()),
                axes,
                Passing(passing.value),
                StudyOptions(count.fixed or 1, seed, True, False, study_dir, fresh, settings),
                count,
                metric,
                None if mode is None else mode.value,
                min_effect,
                on_result=on_result,
            )
        emit(report, outputs, lambda chosen: render_tune(report, chosen, failing))
        raise typer.Exit(EXIT_FAILED_CHECK if report.concerns() & failing else EXIT_OK)

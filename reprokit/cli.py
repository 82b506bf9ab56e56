"""The ``reprokit`` command. Commands are thin: parse, call the library, render.

Errors become exit codes here and only here (see :mod:`reprokit.errors`):
0 nothing listed in ``--fail-on`` was detected, 1 something was, 2 bad input
to reprokit, 3 the script failed or timed out in a run, 4 a bug in reprokit,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from reprokit import __version__
from reprokit.check import CheckOptions, run_check
from reprokit.errors import (
    EXIT_BAD_INPUT,
    EXIT_FAILED_CHECK,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    ReprokitError,
    ScriptFailedError,
)
from reprokit.files import write_atomic
from reprokit.report import Report
from reprokit.runner import Target
from reprokit.settings import DEFAULT_SEED
from reprokit.trace import RunSpec

try:  # typer before 0.20 runs on the click package, later ones on a vendored copy
    from click import ClickException as _ClickException

    _USAGE_ERRORS: tuple[type[Exception], ...] = (_ClickException, typer.TyperException)
except ImportError:
    _USAGE_ERRORS = (typer.TyperException,)

app = typer.Typer(
    name="reprokit",
    help="Is your Keras training reproducible, and if not, why?",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Format(str, Enum):
    rich = "rich"
    json = "json"


class FailOn(str, Enum):
    seed = "seed"
    nondeterministic_ops = "nondeterministic-ops"
    uncontrolled = "uncontrolled"
    any = "any"
    none = "none"


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


@app.command()
def check(
    script: Annotated[
        Path, typer.Argument(help="The training script (or model file) to check.", show_default=False)
    ],
    script_args: Annotated[
        list[str] | None, typer.Argument(help="The script's own arguments, after --.", show_default=False)
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, max=2**32 - 2, help="The seed S of the controlled runs.")
    ] = DEFAULT_SEED,
    quick: Annotated[bool, typer.Option("--quick", help="Run only the controlled pair (2 runs).")] = False,
    fail_on: Annotated[
        list[FailOn] | None,
        typer.Option(help="Exit 1 when this source is detected (repeatable). [default: uncontrolled]"),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", "-f", help="Report format.")] = Format.rich,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the report to this file instead of stdout.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(min=0.001, help="Seconds one run may take before it is killed.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Epochs for a model file. [default: 5]")] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Batch size for a model file. [default: 32]")
    ] = None,
    jobs: Annotated[int, typer.Option(min=1, help="How many runs may execute at once.")] = 1,
) -> None:
    """Train SCRIPT several times under controlled settings and explain every difference.

    Runs: 2 with seed S and op determinism on (controlled), 2 with seed S and
    default ops, 1 with seed S+1 and op determinism on. Reprokit options go
    before the script; the script's own arguments after --.
    """
    with _exit_codes():
        target = Target(
            script=script,
            args=tuple(script_args or ()),
            epochs=epochs or 5,
            batch_size=batch_size or 32,
            timeout=timeout,
            explicit_model_options=epochs is not None or batch_size is not None,
        )
        options = CheckOptions(target=target, seed=seed, quick=quick, jobs=jobs)
        with _progress(quiet=output_format is Format.json and output is None) as on_event:
            report = run_check(options, on_event)
        _emit(report, output_format, output)
        raise typer.Exit(exit_code(report, [f.value for f in fail_on or [FailOn.uncontrolled]]))


def exit_code(report: Report, fail_on: Sequence[str]) -> int:
    """1 if a source named in ``fail_on`` was detected, else 0."""
    wanted = set(fail_on)
    if "none" in wanted:
        return EXIT_OK
    detected = {f.source.replace("_", "-") for f in report.findings if f.detected}
    if "any" in wanted:
        return EXIT_FAILED_CHECK if detected else EXIT_OK
    return EXIT_FAILED_CHECK if detected & wanted else EXIT_OK


def _emit(report: Report, output_format: Format, output: Path | None) -> None:
    if output_format is Format.json:
        text = report.to_json() + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            write_atomic(output, text)
        return
    if output is None:
        Console(highlight=False).print(report)
        return
    console = Console(record=True, width=100, file=open(os.devnull, "w"), color_system=None)  # noqa: SIM115
    console.print(report)
    write_atomic(output, console.export_text())


@contextmanager
def _progress(quiet: bool) -> Iterator[Any]:
    """A live display of the runs on a terminal, one line per run otherwise."""
    err = Console(stderr=True, highlight=False)
    if not err.is_terminal:

        def log(spec: RunSpec, event: Mapping[str, Any]) -> None:
            if event.get("type") == "end":
                steps = sum(m["steps"] for m in event["models"])
                err.print(f"reprokit: run {spec.name} finished ({steps} steps)")

        yield (None if quiet else log)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("[dim]{task.fields[status]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(spec: RunSpec, event: Mapping[str, Any]) -> None:
            if spec.name not in tasks:
                determinism = "on" if spec.controls.op_determinism else "off"
                label = f"{spec.name:<13} seed {spec.controls.seed}, determinism {determinism}"
                tasks[spec.name] = progress.add_task(
                    label, total=None, status="importing TensorFlow", steps=0
                )
            task = tasks[spec.name]
            kind = event.get("type")
            if kind == "start":
                progress.update(task, status="running the script")
            elif kind == "step":
                steps = progress.tasks[task].fields["steps"] + 1
                progress.update(task, steps=steps, status=f"step {steps}")
            elif kind == "end":
                progress.update(task, status="done", completed=1, total=1)

        yield update


@contextmanager
def _exit_codes() -> Iterator[None]:
    """Turns every failure into a message on stderr and a documented exit code."""
    err = _error_console()
    try:
        yield
    except ScriptFailedError as e:
        err.print(f"[bold red]reprokit: error:[/] {e}", markup=True)
        if e.details:
            err.print(f"\n--- the script's output (run {e.run}) ---", style="dim")
            err.print(e.details, markup=False)
        raise typer.Exit(e.exit_code) from None
    except ReprokitError as e:
        err.print(f"[bold red]reprokit: error:[/] {e}", markup=True)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("reprokit: interrupted; every run was stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except _USAGE_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - a bug in reprokit: say so briefly
        if os.environ.get("REPROKIT_DEBUG"):
            traceback.print_exc()
        err.print(
            f"reprokit: internal error: {type(e).__name__}: {e} "
            "(set REPROKIT_DEBUG=1 for the traceback, and please report it)"
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI and returns its exit code (the console-script entry point)."""
    args = list(argv) if argv is not None else sys.argv[1:]
    try:
        result = app(args=args, prog_name="reprokit", standalone_mode=False)
    except _USAGE_ERRORS as e:
        message = e.format_message()  # type: ignore[attr-defined]
        if type(e).__name__ == "NoSuchOption":
            message += " (reprokit's options go before the script, the script's own after --)"
        _usage_error(message)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, typer.Abort):
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else EXIT_OK


def _usage_error(message: str) -> None:
    _error_console().print(f"[bold red]reprokit: error:[/] {message}", markup=True)


def _error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line

"""What every command shares: report outputs, and errors turned into exit codes in one place.

Errors become exit codes here and only here (see :mod:`reprokit.core.errors`):
0 nothing failed, 1 the check or study failed, 2 bad input to reprokit, 3 the
script failed or timed out in a run, 4 a bug in reprokit, 130 interrupted.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from reprokit.checking.result import NotReproducibleError
from reprokit.core.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, ReprokitError, ScriptFailedError, UsageError
from reprokit.core.files import write_atomic
from reprokit.report.ci import Format, html_note, plain_summary
from reprokit.run.execution import Executor


def _usage_error_types() -> tuple[type[Exception], ...]:
    """Older typer runs on the click package, newer typer on a vendored copy: catch either."""
    found: list[type[Exception]] = []
    try:
        from click import ClickException

        found.append(ClickException)
    except ImportError:
        pass
    vendored = getattr(typer, "TyperException", None)
    if vendored is not None:
        found.append(vendored)
    return tuple(found)


USAGE_ERRORS = _usage_error_types()

ScriptArg = Annotated[Path, typer.Argument(help="The training script (or model file).", show_default=False)]
ScriptArgs = Annotated[
    list[str] | None, typer.Argument(help="The script's own arguments, after --.", show_default=False)
]
SeedOpt = Annotated[int, typer.Option(min=0, max=2**32 - 2, help="The seed S of the controlled runs.")]
TimeoutOpt = Annotated[float | None, typer.Option(min=0.001, help="Seconds one run may take before it is killed.")]
EpochsOpt = Annotated[int | None, typer.Option(min=1, help="Epochs for a model file. [default: 5]")]
BatchOpt = Annotated[int | None, typer.Option(min=1, help="Batch size for a model file. [default: 32]")]
JobsOpt = Annotated[
    int | None,
    typer.Option(min=1, help="How many runs may execute at once (runs share GPUs). [default: CPU cores + 1]"),
]
ExecutorOpt = Annotated[
    Executor,
    typer.Option(help="Where runs execute: processes on this machine, or Ray tasks (pip install 'reprokit[ray]')."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="The Ray cluster, HOST:PORT. [default: RAY_ADDRESS, else a cluster running here, else a local instance]",
        show_default=False,
    ),
]
CpusPerRunOpt = Annotated[float, typer.Option("--cpus-per-run", help="CPUs Ray reserves for each run.")]
GpusPerRunOpt = Annotated[
    float, typer.Option("--gpus-per-run", help="GPUs Ray gives each run; a fraction shares a GPU (0.5: two runs).")
]
FormatOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--format",
        "-f",
        help="rich, json, junit, markdown or html; NAME=PATH writes to a file (repeatable). [default: rich]",
    ),
]


@dataclass(frozen=True)
class Output:
    """One report format and where it goes (None: stdout)."""

    format: Format
    path: Path | None


def parse_outputs(
    formats: Sequence[str], output: Path | None, allowed: Sequence[Format] = tuple(Format)
) -> list[Output]:
    """``--format NAME`` or ``--format NAME=PATH`` (repeatable); ``--output`` names the stdout one's file."""
    outputs = []
    for spec in formats or ["rich"]:
        name, _, path = spec.partition("=")
        chosen = next((f for f in allowed if f.value == name), None)
        if chosen is None:
            names = ", ".join(f.value for f in allowed)
            raise UsageError(f"expected a format among {names} (optionally NAME=PATH), received {spec!r}")
        outputs.append(Output(chosen, Path(path) if path else None))
    to_stdout = [o for o in outputs if o.path is None]
    if len(to_stdout) > 1:
        raise UsageError("only one --format can go to stdout; give the others a file: --format junit=report.xml")
    if output is not None:
        if not to_stdout:
            raise UsageError("--output names the file of a --format without =PATH; every format already has one")
        outputs = [Output(o.format, output) if o.path is None else o for o in outputs]
    return outputs


def emit(
    report: RenderableType, outputs: Sequence[Output], rendered: Callable[[Format], str], summary: bool = True
) -> bool:
    """Writes ``report`` in every requested format; returns whether a text format took stdout.

    ``rendered(format)`` is the report as text. With ``summary``, its
    Markdown is also appended to ``$GITHUB_STEP_SUMMARY`` when that is set.
    Markdown says where the HTML reports were written.
    """
    note = html_note([o.path for o in outputs if o.format is Format.HTML and o.path is not None])
    stdout_taken = False
    for out in outputs:
        if out.format is Format.RICH and out.path is None:
            print_report(report)
            continue
        text = rendered(out.format) + (note if out.format is Format.MARKDOWN else "")
        if out.path is not None:
            write_atomic(out.path, text)
        else:
            stdout_taken = True
            sys.stdout.write(text)
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary and step_summary:
        with open(step_summary, "a", encoding="utf-8") as f:
            f.write(rendered(Format.MARKDOWN) + note + "\n")
    return stdout_taken


@contextmanager
def exit_codes() -> Iterator[None]:
    """Turns every failure into a message on stderr and a documented exit code."""
    err = error_console()
    try:
        yield
    except ScriptFailedError as e:
        print_error(err, e.message)
        if e.details:
            source = f"the script's output (run {e.run})" if e.run else "as Python reports it"
            err.print(f"\n--- {source} ---", style="dim")
            err.print(e.details, markup=False)
        raise typer.Exit(e.exit_code) from None
    except NotReproducibleError as e:
        print_report(e.report)
        print_error(err, str(e))
        raise typer.Exit(e.exit_code) from None
    except ReprokitError as e:
        print_error(err, str(e))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("reprokit: interrupted; every run was stopped")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except typer.Exit:
        raise
    except USAGE_ERRORS:
        raise
    except Exception as e:  # noqa: BLE001 - a bug in reprokit: say so briefly
        if os.environ.get("REPROKIT_DEBUG"):
            traceback.print_exc()
        err.print(
            f"reprokit: internal error: {type(e).__name__}: {e} "
            "(set REPROKIT_DEBUG=1 for the traceback, and please report it)"
        )
        raise typer.Exit(EXIT_INTERNAL) from None


def usage_error(message: str) -> None:
    print_error(error_console(), message)


def print_error(console: Console, message: str) -> None:
    console.print(Text("reprokit: error: ", style="bold red") + Text(message))


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)  # one message, one line


def print_report(report: RenderableType) -> None:
    """A rich report (a check's or a study's) on stdout: colors on a terminal, plain text otherwise."""
    console = Console(highlight=False)
    if console.is_terminal:
        console.print(report)
    else:
        sys.stdout.write(plain_summary(report, width=console.width))

"""What every command shares: the run options (declared once), report outputs, and errors turned into exit codes.

Errors become exit codes here and only here (see :mod:`reprokit.core.errors`):
0 nothing failed, 1 the check or study failed, 2 bad input to reprokit, 3 the
script failed or timed out in a run, 4 a bug in reprokit, 130 interrupted.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer
from rich.console import Console, RenderableType
from rich.text import Text

from reprokit.checking.result import NotReproducibleError
from reprokit.core.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    ReprokitError,
    ReprokitWarning,
    ScriptFailedError,
    Terminated,
    UsageError,
)
from reprokit.core.files import write_atomic
from reprokit.core.paths import check_outputs
from reprokit.report.ci import Format, html_note, plain_summary
from reprokit.run.execution import Execution, Executor
from reprokit.run.settings import ModelFileOptions, RunSettings, backends_of


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
BackendOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--backend",
        help="The Keras backend to train on: tensorflow, jax or torch (compare: repeat it to compare backends). "
        "[default: KERAS_BACKEND, then ~/.keras/keras.json, then tensorflow]",
        show_default=False,
    ),
]
CpusPerRunOpt = Annotated[float, typer.Option("--cpus-per-run", help="CPUs Ray reserves for each run.")]
GpusPerRunOpt = Annotated[
    float, typer.Option("--gpus-per-run", help="GPUs Ray gives each run; a fraction shares a GPU (0.5: two runs).")
]


def run_settings(
    timeout: TimeoutOpt = None,
    epochs: EpochsOpt = None,
    batch_size: BatchOpt = None,
    jobs: JobsOpt = None,
    executor: ExecutorOpt = Executor.LOCAL,
    ray_address: RayAddressOpt = None,
    cpus_per_run: CpusPerRunOpt = 1.0,
    gpus_per_run: GpusPerRunOpt = 0.0,
    backend: BackendOpt = None,
) -> RunSettings:
    """The run options every running command shares, declared once (this signature), as one RunSettings.

    :func:`run_options` puts these parameters in a command's signature, in
    this order, and hands the command what this returns.

    Raises:
        UsageError: bad Ray options (see :class:`~reprokit.run.execution.Execution`), or an unknown backend.
    """
    return RunSettings(
        timeout=timeout,
        jobs=jobs,
        model_file=ModelFileOptions.given(epochs, batch_size),
        execution=Execution(executor, ray_address, cpus_per_run, gpus_per_run),
        backends=backends_of(backend),
    )


RUN_OPTIONS = RunSettings()
"""The default of a command's ``settings`` parameter; :func:`run_options` puts the run options in its place."""

Command = TypeVar("Command", bound=Callable[..., None])


def run_options(command: Command) -> Command:
    """Gives ``command`` the shared run options (the parameters of :func:`run_settings`) in place of its
    ``settings`` parameter, and calls it with them built into one :class:`~reprokit.run.settings.RunSettings`.

    The options keep their place in ``--help``: where ``settings`` stands
    in the command's signature. Bad options end the command as any usage
    error does (:func:`exit_codes`).
    """
    shared = inspect.signature(run_settings, eval_str=True).parameters
    own = inspect.signature(command, eval_str=True)
    if "settings" not in own.parameters:
        raise TypeError(f"{command.__qualname__} has no settings parameter for the run options")
    parameters = [q for p in own.parameters.values() for q in (shared.values() if p.name == "settings" else (p,))]

    @functools.wraps(command)
    def with_settings(*args: Any, **kwargs: Any) -> None:
        options = {name: kwargs.pop(name) for name in shared}
        with exit_codes():
            settings = run_settings(**options)
        command(*args, settings=settings, **kwargs)

    signature = own.replace(parameters=parameters)
    with_settings.__signature__ = signature  # type: ignore[attr-defined]
    with_settings.__annotations__ = {p.name: p.annotation for p in parameters}
    return cast(Command, with_settings)


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


def guard_outputs(outputs: Sequence[Output], scripts: Sequence[Path] = (), inputs: Sequence[Path] = ()) -> None:
    """Refuses, before any run, report paths that would write over a script, an input or the scripts' own files.

    See :func:`reprokit.core.paths.check_outputs`; ``scripts`` are both inputs and the folders to protect.
    """
    paths = [o.path for o in outputs if o.path is not None]
    check_outputs(paths, [*scripts, *inputs], [s.parent for s in scripts])


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
        with _warnings_shown(err):
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
    except Terminated as e:
        err.print(f"reprokit: stopped by {e.name}; every run was stopped")
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


@contextmanager
def _warnings_shown(err: Console) -> Iterator[None]:
    """Prints each :class:`ReprokitWarning` raised in the block as one line, as it comes; others as Python would."""
    shown = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, ReprokitWarning):
            err.print(Text("reprokit: warning: ", style="yellow") + Text(str(message)))
        else:
            shown(message, category, *args, **kwargs)

    with warnings.catch_warnings():
        warnings.simplefilter("always", ReprokitWarning)
        warnings.showwarning = show
        yield


def usage_error(message: str) -> None:
    print_error(error_console(), message)


def print_error(console: Console, message: str) -> None:
    console.print(Text("reprokit: error: ", style="bold red") + Text(message))


def error_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)  # one line; user text is never markup


def print_report(report: RenderableType) -> None:
    """A rich report (a check's or a study's) on stdout: colors on a terminal, plain text otherwise."""
    console = Console(highlight=False, markup=False)  # paths, layer and metric names are text, never markup
    if console.is_terminal:
        console.print(report)
    else:
        sys.stdout.write(plain_summary(report, width=console.width))

"""What the user sees while runs execute: a live display on a terminal, one line per run otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from reprokit.protocol import EndEvent, Event, PreemptedEvent, StartEvent, StepEvent
from reprokit.run.trace import RunSpec
from reprokit.study.metrics import headline
from reprokit.study.store import RunResult


@contextmanager
def progress(quiet: bool) -> Iterator[Any]:
    """A live display of the runs on a terminal, one line per run otherwise."""
    err = Console(stderr=True, highlight=False)
    if not err.is_terminal:

        def log(spec: RunSpec, event: Event) -> None:
            if isinstance(event, EndEvent):
                steps = sum(m.steps for m in event.models)
                err.print(f"reprokit: run {spec.name} finished ({steps} steps)")
            elif isinstance(event, PreemptedEvent):
                err.print(
                    f"reprokit: run {spec.name} killed after step {event.step}, as a preempted machine's would be"
                )

        yield (None if quiet else log)
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TextColumn("{task.fields[status]}", style="dim", markup=False),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        tasks: dict[str, Any] = {}

        def update(spec: RunSpec, event: Event) -> None:
            if spec.name not in tasks:
                determinism = "on" if spec.controls.op_determinism else "off"
                label = f"{spec.name:<13} seed {spec.controls.seed}, determinism {determinism}"
                tasks[spec.name] = progress.add_task(label, total=None, status="importing TensorFlow", steps=0)
            task = tasks[spec.name]
            if isinstance(event, StartEvent):
                progress.update(task, status="running the script")
            elif isinstance(event, StepEvent):
                steps = progress.tasks[task].fields["steps"] + 1
                progress.update(task, steps=steps, status=f"step {steps}")
            elif isinstance(event, EndEvent):
                progress.update(task, status="done", completed=1, total=1)
            elif isinstance(event, PreemptedEvent):
                progress.update(task, status=f"killed after step {event.step}", completed=1, total=1)

        yield update


@contextmanager
def study_progress(total: int, labels: list[str], metric: str | None, quiet: bool) -> Iterator[Any]:
    """A study's live display: a bar of finished runs with an ETA on a terminal, one line per run otherwise.

    ``total`` is the runs known at the start (0: unknown, as with ``--seeds auto``).

    Yields the ``on_result`` callback of :func:`reprokit.study.running.run_study` (None: nothing to show).
    """
    err = Console(stderr=True, highlight=False)

    def line(variant: int, result: RunResult) -> str:
        who = f"{labels[variant]}, " if len(labels) > 1 else ""
        if not result.ok:
            return f"{who}{result.name}: failed: {result.error}"
        shown = metric if metric in result.metrics else (headline(result.metrics) if result.metrics else None)
        value = f"{shown} {result.metrics[shown]:.4g}" if shown is not None else "no metric"
        when = "reused from the study folder" if result.cached else f"{result.wall_seconds:.1f} s"
        return f"{who}{result.name}: {value} ({when})"

    if not err.is_terminal:

        def log(variant: int, result: RunResult) -> None:
            err.print(f"reprokit: {line(variant, result)}", markup=False)

        yield None if quiet else log
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("runs", total=total or None)

        def finished(variant: int, result: RunResult) -> None:
            bar.console.print(Text(line(variant, result), style="dim" if result.ok else "red"))
            bar.advance(task)
            done = bar.tasks[0].completed
            if total and done > total:  # --seeds auto added a round: the bar counts what is known so far
                bar.update(task, total=done)

        yield finished

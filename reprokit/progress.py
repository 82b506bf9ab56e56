"""What the user sees while runs execute: a live display on a terminal, one line per run otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from reprokit.protocol import EndEvent, Event, StartEvent, StepEvent
from reprokit.trace import RunSpec


@contextmanager
def progress(quiet: bool) -> Iterator[Any]:
    """A live display of the runs on a terminal, one line per run otherwise."""
    err = Console(stderr=True, highlight=False)
    if not err.is_terminal:

        def log(spec: RunSpec, event: Event) -> None:
            if isinstance(event, EndEvent):
                steps = sum(m.steps for m in event.models)
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

        yield update

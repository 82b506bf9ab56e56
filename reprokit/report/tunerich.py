"""``reprokit tune`` in the terminal: a verdict panel, the ranked table and the seed advice (sentences from
:mod:`reprokit.report.tunetext`)."""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reprokit.report.studyrich import failures
from reprokit.report.tunetext import HEADER, rows, seed_advice, sequential_line, stability_sentence, tune_headline
from reprokit.study.tuneresult import TuneReport

_VS_STYLE = {"best": "bold green", "tied": "yellow", "worse": "dim"}


def render_tune(report: TuneReport) -> Iterator[RenderableType]:
    title, style = tune_headline(report)
    body = Text(title, style=f"bold {style}")
    body.append("\n\n" + seed_advice(report))
    stability = stability_sentence(report)
    if stability:
        body.append("\n\n" + stability)
    sequential = sequential_line(report)
    if sequential:
        body.append("\n\n" + sequential, style="dim")
    runs = sum(len(v.runs) for v in report.variants)
    cached = sum(r.cached for v in report.variants for r in v.runs)
    kept = f" ({cached} kept from the study folder)" if cached else ""
    better = "higher" if report.mode == "max" else "lower"
    yield Panel(
        body,
        title=f"reprokit tune {report.script} · {report.metric} ({better} is better)",
        subtitle=f"{len(report.configurations)} configurations × {report.seeds} seeds · {runs} runs{kept} · "
        f"{report.wall_seconds:.1f} s",
        border_style=style,
    )
    table = Table(title=f"{report.metric} by configuration", box=box.SIMPLE_HEAD, title_justify="left")
    for column in HEADER:
        table.add_column(column, justify="left" if column in ("configuration", "vs best") else "right")
    for row in rows(report):
        table.add_row(*row[:-1], Text(row[-1], style=_VS_STYLE[row[-1]]))
    yield table
    for v in report.variants:
        yield from failures(v)
    yield Text(f"Runs kept in {report.folder} (add seeds with --resume: only new runs are made)", style="dim")

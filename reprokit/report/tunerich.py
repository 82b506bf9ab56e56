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
from reprokit.report.studytext import REUSED_NOTE
from reprokit.report.tunetext import HEADER, rows, seed_advice, sequential_line, stability_sentence, tune_headline
from reprokit.study.tuneresult import TuneReport

_SHORT = {"seed wins": "wins"}  # the seeds under which it is best (or tied): the advice says so
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
    kept = f" ({cached} reused)" if cached else ""
    better = "higher" if report.mode == "max" else "lower"
    yield Panel(
        body,
        title=Text(f"reprokit tune {report.script} · {report.metric} ({better} is better)"),
        subtitle=Text(
            f"{len(report.configurations)} configurations × {report.seeds} seeds · {runs} runs{kept} · "
            f"{report.wall_seconds:.0f} s"
        ),
        border_style=style,
    )
    yield _table(report)
    for v in report.variants:
        yield from failures(v)
    yield Text(f"Runs kept in {report.folder} ({REUSED_NOTE})", style="dim")


def _table(report: TuneReport) -> Table:
    """The ranked table, narrow enough for 80 columns: best first (no rank column), no std (the CI says it),
    ``n`` only where a failed run left a configuration short."""
    found = rows(report)
    uneven = len({row[2] for row in found}) > 1
    keep = [i for i, column in enumerate(HEADER) if column not in ("#", "std") and (column != "n" or uneven)]
    seeds = "" if uneven else f" ({report.seeds} seeds each)"
    table = Table(title=f"{report.metric} by configuration{seeds}", box=box.SIMPLE_HEAD, title_justify="left")
    for i in keep:
        left = HEADER[i] in ("configuration", "vs best")
        table.add_column(_SHORT.get(HEADER[i], HEADER[i]), justify="left" if left else "right", no_wrap=True)
    for row in found:
        table.add_row(*[row[i] for i in keep[:-1]], Text(row[-1], style=_VS_STYLE[row[-1]]))
    return table

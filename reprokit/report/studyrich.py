"""Seed-study reports in the terminal: the rich panels and tables of a seeds or compare report.

Their figures and sentences come from :mod:`reprokit.report.studytext`, so the terminal, Markdown, JUnit and HTML
say the same.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from rich import box
from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reprokit.core.vocabulary import Outcome
from reprokit.report.studytext import (
    REUSED_NOTE,
    compare_next_step,
    contrast_sentence,
    interval,
    letter,
    num,
    placement,
    seeds_explanation,
    seeds_headline,
    sequential_sentence,
    signed,
    worst_style,
)
from reprokit.study.result import CompareReport, SeedsReport, VariantResult
from reprokit.study.stats import Effect

_OUTCOME_STYLE = {
    Outcome.BETTER: "bold green",
    Outcome.WORSE: "bold red",
    Outcome.WITHIN_NOISE: "bold yellow",
    Outcome.EQUIVALENT: "bold green",
    Outcome.TOO_FEW_SEEDS: "bold yellow",
}


# -- seeds ---------------------------------------------------------------------


def render_seeds(report: SeedsReport) -> Iterator[RenderableType]:
    title, style = seeds_headline(report)
    body = Text(title, style=f"bold {style}")
    body.append("\n\n" + seeds_explanation(report))
    runs = len(report.variant.runs)
    cached = sum(r.cached for r in report.variant.runs)
    subtitle = f"{runs} runs{_resumed(cached)} · {report.wall_seconds:.1f} s"
    yield Panel(body, title=Text(f"reprokit seeds {report.variant.label}"), subtitle=Text(subtitle), border_style=style)
    yield _metrics_table(report.variant)
    yield _per_seed_table(report.variant)
    yield from failures(report.variant)
    yield from _placement([report.variant])
    seed = report.variant.seeds[0] if report.variant.seeds else report.first_seed
    yield Text(f"Replay a seed exactly: {report.replay_command(seed)}", style="dim")
    yield Text(f"Runs kept in {report.folder} ({REUSED_NOTE})", style="dim")


def _resumed(cached: int) -> str:
    """How many of a study's runs were reused rather than trained ("" when none was)."""
    return f" ({cached} reused)" if cached else ""


def _metrics_table(variant: VariantResult) -> Table:
    title = "Metrics over seeds (95 % CI of the mean; ↑ higher is better, ↓ lower)"
    table = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in ("metric", "n", "mean ± std", "min … max", "95 % CI"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
    for m in variant.metrics:
        s = m.summary
        better = {"min": " ↓", "max": " ↑"}.get(m.mode or "", "")
        if s is None:
            table.add_row(m.name + better, "0", "—", "—", "—")
            continue
        table.add_row(
            m.name + better,
            str(s.n),
            f"{num(s.mean)} ± {num(s.std, '.2g')}",
            f"{num(s.min)} … {num(s.max)}",
            interval(s.ci_low, s.ci_high),
        )
    return table


def _per_seed_table(variant: VariantResult) -> Table:
    names = [m.name for m in variant.metrics]
    shown = names[:1] + [n for n in ("loss", "val_loss") if n in names[1:]][:1]  # the headline, and a loss
    table = Table(title="Per seed", box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("seed", justify="right", no_wrap=True)
    for name in shown:
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("steps", justify="right")
    table.add_column("time", justify="right")
    for r in variant.runs:
        seed = f"{r.seed}" + (" again" if r.repeat else "")
        if not r.ok:
            table.add_row(seed, *["failed"] * len(shown), "—", f"{r.wall_seconds:.1f} s")
            continue
        cells = [num(r.metrics.get(name)) for name in shown]
        time = "reused" if r.cached else f"{r.wall_seconds:.1f} s"
        table.add_row(seed, *cells, str(r.steps), time)
    return table


def failures(variant: VariantResult) -> Iterator[RenderableType]:
    for r in variant.failed:
        yield Text(f"{variant.label}, {r.name} failed: {r.error}", style="red")


def _placement(variants: Sequence[VariantResult]) -> Iterator[RenderableType]:
    for line, warn in placement(variants):
        yield Text(line, style="yellow" if warn else "dim")


# -- compare -------------------------------------------------------------------


def render_compare(report: CompareReport) -> Iterator[RenderableType]:
    body = Text()
    for i, v in enumerate(report.variants):
        body.append(f"{letter(i)}  ", style="bold")
        body.append(v.label + ("  (baseline)" if i == 0 else "") + "\n")
    for c in report.contrasts:
        body.append(f"\n{letter(c.variant)} vs A: ", style="bold")
        body.append(contrast_sentence(report, c), style=_OUTCOME_STYLE[c.outcome])
        e = c.effect
        if e is not None:
            body.append(
                f" P({letter(c.variant)} better than A) = {num(e.prob_improvement, '.0%')}, "
                f"Hedges' g {num(e.hedges_g, '.2f')}, Welch's t p = {num(e.welch_p, '.3g')}."
            )
        body.append("\n")
    for v in report.variants:
        if v.repeat is not None and v.repeat.identical is False:
            body.append(f"\nThe seed does not pin {v.label}: {', '.join(v.repeat.differences[:2])}.", style="red")
    sequential = sequential_sentence(report)
    if sequential is not None:
        body.append(f"\n{sequential}", style="dim")
    runs = sum(len(v.runs) for v in report.variants)
    cached = sum(r.cached for v in report.variants for r in v.runs)
    yield Panel(
        body,
        title=Text(f"reprokit compare · {report.metric} ({'higher' if report.mode == 'max' else 'lower'} is better)"),
        subtitle=Text(f"{runs} runs{_resumed(cached)} · seeds {report.first_seed}… · {report.wall_seconds:.1f} s"),
        border_style=worst_style(report),
    )
    yield _compare_table(report)
    for v in report.variants:
        yield from failures(v)
    yield from _placement(report.variants)
    yield Text(f"Runs kept in {report.folder} ({REUSED_NOTE})", style="dim")
    step = compare_next_step(report)
    if step is not None:
        line = Text("Next: ", style="bold")
        line.append(step, style="cyan")
        yield line


def _compare_table(report: CompareReport) -> Table:
    table = Table(title=f"{report.metric} by variant", box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for column in ("", "n", "mean ± std", "Δ vs A", "95 % CI of Δ", "p"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("result")
    for i, v in enumerate(report.variants):
        stats = v.metric(report.metric)
        s = stats.summary if stats is not None else None
        cells = [letter(i), str(s.n) if s else "0", f"{num(s.mean)} ± {num(s.std, '.2g')}" if s else "—"]
        if i == 0:
            table.add_row(*cells, "", "", "", "baseline")
            continue
        c = report.contrasts[i - 1]
        e: Effect | None = c.effect
        cells += [
            signed(e.difference) if e else "—",
            interval(e.ci_low, e.ci_high) if e else "—",
            num(c.p_adjusted, ".3g"),
        ]
        table.add_row(*cells, Text(c.outcome.label, style=_OUTCOME_STYLE[c.outcome]))
    return table

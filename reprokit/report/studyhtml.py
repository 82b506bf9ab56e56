"""``--format html`` of a seed study and of an alignment: one self-contained page, a pure function of the report.

The page holds the rich report (:mod:`reprokit.report.html`) and the report's
plots: a study's seeds and learning curves (:mod:`reprokit.report.studyfigures`),
an alignment's layers (:func:`reprokit.report.charts.align_figures`). A check's
page is :meth:`reprokit.checking.result.Report.to_html` (its plots:
:mod:`reprokit.report.checkfigures`).
"""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import RenderableType

from reprokit.aligning.result import AlignReport
from reprokit.core.version import __version__
from reprokit.report.alignrich import render_align
from reprokit.report.charts import align_figures
from reprokit.report.html import footer, html_page
from reprokit.report.studyfigures import compare_figures, seeds_figures, tune_figures
from reprokit.report.studyrich import render_compare, render_seeds
from reprokit.report.studytext import letter, seeds_headline, worst_style
from reprokit.report.tunerich import render_tune
from reprokit.report.tunetext import tune_headline
from reprokit.study.result import CompareReport, SeedsReport
from reprokit.study.tuneresult import TuneReport

_TONES = {"green": "good", "red": "bad"}


def _footer(command: str) -> str:
    return footer(__version__, command)


def _split(parts: Iterable[RenderableType]) -> tuple[list[RenderableType], list[RenderableType]]:
    """A study's headline panel, shown before the plots, and the tables and lines after them."""
    found = list(parts)
    return found[:1], found[1:]


def seeds_html(report: SeedsReport) -> str:
    """``reprokit seeds --format html``."""
    headline, style = seeds_headline(report)
    title = f"reprokit seeds {report.variant.label}"
    lead, rest = _split(render_seeds(report))
    tone = _TONES.get(style, "neutral")
    return html_page(title, headline, tone, lead, seeds_figures(report), rest, _footer("reprokit seeds"))


def compare_html(report: CompareReport) -> str:
    """``reprokit compare --format html``."""
    verdict = "; ".join(f"{letter(c.variant)} vs A: {c.outcome.label}" for c in report.contrasts)
    tone = _TONES.get(worst_style(report), "neutral")
    title = f"reprokit compare · {report.metric}"
    lead, rest = _split(render_compare(report))
    return html_page(title, verdict, tone, lead, compare_figures(report), rest, _footer("reprokit compare"))


def tune_html(report: TuneReport) -> str:
    """``reprokit tune --format html``."""
    headline, style = tune_headline(report)
    title = f"reprokit tune {report.script} · {report.metric}"
    tone = _TONES.get(style, "neutral")
    lead, rest = _split(render_tune(report))
    return html_page(title, headline, tone, lead, tune_figures(report), rest, _footer("reprokit tune"))


def align_html(report: AlignReport) -> str:
    """``reprokit align --format html``."""
    a = report.alignment
    if a.explained is not None:
        verdict = f"the order of the units explains {a.explained:.0%} of the weight difference"
    else:
        verdict = "no layer could be aligned: the weights are compared in their own order"
    title = f"reprokit align {report.model_a} {report.model_b}"
    lead, rest = _split(render_align(report))
    return html_page(title, verdict, "neutral", lead, align_figures(report), rest, _footer("reprokit align"))

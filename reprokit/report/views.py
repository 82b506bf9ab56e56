"""Registers the view of every result type (see :mod:`reprokit.core.views`): terminal and HTML."""

from __future__ import annotations

from reprokit.aligning.result import AlignReport
from reprokit.checking.result import Report
from reprokit.core.views import View, register
from reprokit.report.alignrich import render_align
from reprokit.report.checkfigures import check_figures
from reprokit.report.checkrich import answer_parts, closing_parts, render_report
from reprokit.report.checktext import headline
from reprokit.report.html import footer, html_page
from reprokit.report.studyhtml import align_html, compare_html, seeds_html, tune_html
from reprokit.report.studyrich import render_compare, render_seeds
from reprokit.report.tunerich import render_tune
from reprokit.study.result import CompareReport, SeedsReport
from reprokit.study.tuneresult import TuneReport

register(View.RICH, Report)(render_report)
register(View.RICH, SeedsReport)(render_seeds)
register(View.RICH, CompareReport)(render_compare)
register(View.RICH, AlignReport)(render_align)
register(View.HTML, SeedsReport)(seeds_html)
register(View.HTML, CompareReport)(compare_html)
register(View.HTML, AlignReport)(align_html)
register(View.RICH, TuneReport)(render_tune)
register(View.HTML, TuneReport)(tune_html)


@register(View.HTML, Report)
def check_html(report: Report) -> str:
    """A check's page: its verdict (or the baseline's), the answer and the fix, the plots, then the environment."""
    if report.baseline is not None:
        passed = report.baseline.passed
        verdict, tone = ("matches the baseline" if passed else "differs from the baseline"), "good" if passed else "bad"
    else:
        head = headline(report)
        verdict, tone = head.words, {"green": "good", "yellow": "neutral"}.get(head.style, "bad")
    args = " " + " ".join(report.script_args) if report.script_args else ""
    title = f"reprokit check {report.script}{args}"
    made = footer(report.reprokit_version, "reprokit check")
    answer, rest = list(answer_parts(report)), list(closing_parts(report))
    return html_page(title, verdict, tone, answer, check_figures(report), rest, made)

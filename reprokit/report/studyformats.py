"""A seed study's report in every ``--format``: pure functions of the report object."""

from __future__ import annotations

from reprokit.core.files import json_text
from reprokit.core.vocabulary import Outcome
from reprokit.report.ci import Format, plain_summary
from reprokit.report.studytext import compare_junit, compare_markdown, seeds_junit, seeds_markdown
from reprokit.study.result import CompareReport, SeedsReport


def render_study(report: SeedsReport | CompareReport, output_format: Format, failing: frozenset[Outcome]) -> str:
    """The report as text in ``output_format`` (``failing``: the outcomes of ``compare --fail-if``)."""
    if output_format is Format.JSON:
        return json_text(report.to_dict())
    if output_format is Format.MARKDOWN:
        return seeds_markdown(report) if isinstance(report, SeedsReport) else compare_markdown(report)
    if output_format is Format.HTML:
        return report.to_html()
    if output_format is Format.JUNIT:
        return seeds_junit(report) if isinstance(report, SeedsReport) else compare_junit(report, failing)
    return plain_summary(report)

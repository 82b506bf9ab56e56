"""CI formats of a report: JUnit XML, Markdown, GitHub annotations, a plain summary.

Every function here is a pure function of a :class:`~reprokit.checking.result.Report`
and the ``--fail-on`` sources; what fails is decided by
:meth:`~reprokit.checking.result.Report.failures` alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from xml.etree import ElementTree as ET

from rich.console import Console, RenderableType

from reprokit.checking.classify import Finding
from reprokit.checking.result import Report
from reprokit.checking.resume import ResumeResult
from reprokit.checking.search import SearchResult
from reprokit.core.vocabulary import FailOn, Source, Status, Word
from reprokit.lint.engine import hazards_for
from reprokit.report import markdown as md
from reprokit.report.checktext import BLANK, blanks, footnotes, headline, next_step


class Format(Word):
    """The formats a report is written in (``--format``)."""

    RICH = "rich"
    JSON = "json"
    JUNIT = "junit"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True)
class Case:
    """One check of a report as a test case: passed, failed or skipped."""

    name: str
    status: str  # "passed", "failed", "skipped" or "error" (a run that failed)
    message: str
    details: str


def _failing(report: Report, fail_on: FailOn) -> frozenset[Source | None]:
    """The sources that fail ``report`` (None for a baseline mismatch)."""
    return frozenset(f.source for f in report.failures(fail_on))


def cases(report: Report, fail_on: FailOn) -> list[Case]:
    """The checks of a report, one per source (or one for a baseline)."""
    if report.baseline is not None:
        b = report.baseline
        details = "\n".join(
            [b.message]
            + [
                f"environment: {d.field}: {d.baseline!r} in the baseline, {d.current!r} now"
                for d in b.environment_differences
            ]
        )
        failed = None in _failing(report, fail_on)
        return [Case(f"baseline {b.path}", "failed" if failed else "passed", b.message, details)]
    failing = _failing(report, fail_on)
    found = []
    for finding in report.shown_findings:
        pair = finding.source.pair
        name = f"{pair} pair ({pair.description}): {finding.title}"
        details = finding.evidence + (f"\n\nFix:\n{finding.fix}" if finding.fix else "")
        if finding.detected is None:
            found.append(Case(name, "skipped", finding.evidence, details))
        elif finding.source in failing:
            found.append(Case(name, "failed", f"{finding.title} detected: {finding.evidence}", details))
        else:
            note = " (detected, not in --fail-on)" if finding.status is Status.DETECTED else ""
            found.append(Case(name, "passed", finding.evidence + note, details))
    return found


def junit(report: Report, fail_on: FailOn) -> str:
    """JUnit XML: one test case per source (or per baseline), evidence in the failures."""
    kind = "BaselineMismatch" if report.baseline is not None else "NotReproducible"
    properties = {"seed": report.seed, "verdict": report.verdict.value, "reprokit": report.reprokit_version}
    name, classname = f"reprokit check {report.script}", f"reprokit.{report.script}"
    return junit_document(name, classname, cases(report, fail_on), properties, report.wall_seconds, kind)


def junit_document(
    name: str,
    classname: str,
    found: Sequence[Case],
    properties: Mapping[str, object],
    seconds: float,
    failure_type: str,
) -> str:
    """One JUnit test suite of ``found`` cases (status passed, failed, skipped or error), with its properties."""
    attrs = {
        "name": name,
        "tests": str(len(found)),
        "failures": str(sum(c.status == "failed" for c in found)),
        "errors": str(sum(c.status == "error" for c in found)),
        "skipped": str(sum(c.status == "skipped" for c in found)),
        "time": f"{seconds:.3f}",
    }
    suites = ET.Element("testsuites", {k: v for k, v in attrs.items() if k != "name"} | {"name": "reprokit"})
    suite = ET.SubElement(suites, "testsuite", attrs)
    listed = ET.SubElement(suite, "properties")
    for key, value in properties.items():
        ET.SubElement(listed, "property", {"name": key, "value": str(value)})
    for case in found:
        element = ET.SubElement(suite, "testcase", {"classname": classname, "name": case.name, "time": "0"})
        if case.status == "failed":
            ET.SubElement(element, "failure", {"message": case.message, "type": failure_type}).text = case.details
        elif case.status == "error":
            ET.SubElement(element, "error", {"message": case.message, "type": "ScriptFailed"}).text = case.details
        elif case.status == "skipped":
            ET.SubElement(element, "skipped", {"message": case.message})
        ET.SubElement(element, "system-out").text = case.details
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def markdown(report: Report, fail_on: FailOn) -> str:
    """A compact Markdown summary (for pull requests and ``GITHUB_STEP_SUMMARY``)."""
    icon = "✅" if report.verdict.good else "❌"
    env = report.environment
    verdict = report.verdict.words if report.baseline is not None else headline(report).words
    lines = [
        f"### {icon} reprokit check {md.code(report.script)}: {md.text(verdict)}",
        "",
        f"seed {report.seed} · {len(report.runs)} runs · {report.wall_seconds:.1f} s · "
        f"TensorFlow {env.get('tensorflow', '?')} · Keras {env.get('keras', '?')}",
        "",
    ]
    if report.baseline is not None:
        lines += [f"**Baseline** {md.code(report.baseline.path)}: {md.text(report.baseline.message)}", ""]
        return "\n".join(lines) + "\n"
    failing = _failing(report, fail_on)
    lines += ["| source | result | evidence |", "|---|---|---|"]
    for f in report.shown_findings:
        lines.append(f"| {f.title} | {_result(f, failing)} | {md.cell(f.evidence)} |")
    lines += ["", *_comparison_lines(report)]
    if report.search is not None:
        lines += ["", *_search_lines(report.search)]
    if report.resume is not None:
        lines += ["", *_resume_lines(report.resume)]
    for f in report.findings:
        if f.status in (Status.DETECTED, Status.NOT_OBSERVED) and f.fix:
            lines += [
                "",
                f"<details><summary>Fix: {f.title}</summary>",
                "",
                *md.fence(f.fix, "python"),
                "",
                "</details>",
            ]
    step = next_step(report)
    if step is not None:
        lines += ["", f"**Next:** {md.code(step.command)} ({md.text(step.question)})"]
    return "\n".join(lines) + "\n"


def _comparison_lines(report: Report) -> list[str]:
    """The comparisons as a Markdown table; each blank cell is marked, and its reason is a footnote below."""
    marks, notes = footnotes(blanks(report))
    lines = [
        "| pair | result | first divergence | max \\|Δw\\| | prediction agreement |",
        "|---|---|---|---|---|",
    ]
    for c in report.comparisons:
        d = c.divergence
        where = f"none ({c.steps[0]} steps)" if d is None else d.steps
        if d is not None and d.variables:
            where += f" ({md.code(d.variables[0])})"
        if c.prediction_agreement is None:
            agreement = BLANK + marks.get((c.name, "agree"), "")
        else:
            agreement = f"{c.prediction_agreement:.0%}"
        if c.identical:
            max_abs = "0"
        elif c.max_abs_diff is None:
            max_abs = BLANK + marks.get((c.name, "max |Δw|"), "")
        else:
            max_abs = f"{c.max_abs_diff:.3g}"
        lines.append(f"| {c.name} | {'identical' if c.identical else 'differs'} | {where} | {max_abs} | {agreement} |")
    notes = tuple(n for n in notes if "final loss" not in n)  # the table has no loss column
    return lines + (["", *(md.text(n) for n in notes)] if notes else [])


def _search_lines(r: SearchResult) -> list[str]:
    """The script's own hyperparameter search in Markdown: its answer, and each pair's sentences."""
    icon = "✅" if r.reproducible else ("❔" if r.reproducible is None else "❌")
    lines = [f"**Hyperparameter search**: {icon} {md.text(r.words)}", ""]
    lines += [f"- {p.pair.value} pair ({md.text(p.label)}): {md.text(p.summary)}" for p in r.pairs]
    return lines


def _resume_lines(r: ResumeResult) -> list[str]:
    """The resume check in Markdown: its verdict and evidence, and a row per state not restored."""
    icon = "✅" if r.verdict.good else "❌"
    head = f"**Resume** (stopped after step {r.stopped_after} of {r.steps}): {icon} {r.verdict.words}."
    lines = [f"{head} {md.text(r.evidence)}"]
    if r.lost:
        lines += ["", "| not restored | evidence |", "|---|---|"]
        lines += [f"| {x.state.label} | {md.cell(x.evidence)} |" for x in r.lost]
    return lines


_RESULT_TEXT = {
    Status.NONE: "✅ none",
    Status.NOT_OBSERVED: "not observed",
    Status.NOT_CHECKED: "not checked",
    Status.NOT_SEPARABLE: "unclear",
}


def _result(f: Finding, failing: frozenset[Source | None]) -> str:
    if f.status is Status.DETECTED:
        return "❌ detected" if f.source in failing else "⚠️ detected"
    return _RESULT_TEXT[f.status]


def github_annotations(report: Report, fail_on: FailOn) -> Iterator[str]:
    """GitHub Actions workflow commands: an error per failure, a notice per script line of note."""
    failing = _failing(report, fail_on)
    for case in cases(report, fail_on):
        if case.status == "failed":
            yield f"::error file={_prop(report.script)},title={_prop('reprokit: ' + case.name)}::{_data(case.message)}"
    causes = [hazard for source in failing if source is not None for hazard in hazards_for(source, report.lint)]
    for f in report.lint:
        level = "error" if f in causes else "warning"
        location = f"file={_prop(f.path)},line={f.line},col={f.col}"
        yield f"::{level} {location},title={_prop('reprokit ' + f.code)}::{_data(f.message + ' Fix: ' + f.fix)}"
    for pin in report.pins:
        message = f"the script fixes its own {'seed' if pin.kind == 'seed' else 'op determinism'}: {pin.call}"
        yield f"::notice file={_prop(pin.file)},line={pin.line},title=reprokit::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def html_note(paths: Sequence[object]) -> str:
    """Markdown lines saying where the HTML reports with plots were written ("" for none)."""
    return "".join(f"\n📊 The HTML report, with plots: `{path}`\n" for path in paths)


def plain_summary(report: RenderableType, width: int = 100) -> str:
    """A terminal report (a check's or a study's) as plain text: no escape codes, no trailing spaces."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False, highlight=False, markup=False).print(report)
    return "".join(line.rstrip() + "\n" for line in out.getvalue().splitlines())


def render(report: Report, output_format: Format, fail_on: FailOn) -> str:
    """The report in ``output_format``, as text (rich: plain text, 100 columns)."""
    if output_format is Format.JSON:
        return report.to_json()
    if output_format is Format.JUNIT:
        return junit(report, fail_on)
    if output_format is Format.MARKDOWN:
        return markdown(report, fail_on)
    if output_format is Format.HTML:
        return report.to_html()
    return plain_summary(report)

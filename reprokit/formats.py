"""CI formats of a report: JUnit XML, Markdown, GitHub annotations, a plain summary.

Every function here is a pure function of a :class:`~reprokit.report.Report`
(and the ``--fail-on`` sources that decide what counts as a failure).
"""

from __future__ import annotations

import io
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from rich.console import Console

from reprokit.classify import PAIR_OF_SOURCE, PAIR_TITLES, Finding, linked_lint
from reprokit.errors import UsageError
from reprokit.report import Report

FAIL_ON_ALL = frozenset({"seed", "nondeterministic-ops", "uncontrolled"})

FORMATS = ("rich", "json", "junit", "markdown")


def failing_sources(fail_on: Collection[str]) -> frozenset[str]:
    """The source names (``nondeterministic_ops`` style) that ``--fail-on`` makes failures."""
    wanted = set(fail_on)
    if "none" in wanted:
        return frozenset()
    if "any" in wanted:
        wanted = set(FAIL_ON_ALL)
    return frozenset(s.replace("-", "_") for s in wanted)


@dataclass(frozen=True)
class Case:
    """One check of a report as a test case: passed, failed or skipped."""

    name: str
    status: str  # "passed", "failed" or "skipped"
    message: str
    details: str


def cases(report: Report, fail_on: Collection[str]) -> list[Case]:
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
        return [Case(f"baseline {b.path}", "passed" if b.passed else "failed", b.message, details)]
    failing = failing_sources(fail_on)
    found = []
    for finding in report.findings:
        pair = PAIR_OF_SOURCE[finding.source]
        name = f"{pair} pair ({PAIR_TITLES[pair]}): {finding.title}"
        details = finding.evidence + (f"\n\nFix:\n{finding.fix}" if finding.fix else "")
        if finding.detected is None:
            found.append(Case(name, "skipped", finding.evidence, details))
        elif finding.detected and finding.source in failing:
            found.append(Case(name, "failed", f"{finding.title} detected: {finding.evidence}", details))
        else:
            note = " (detected, not in --fail-on)" if finding.detected else ""
            found.append(Case(name, "passed", finding.evidence + note, details))
    return found


def junit(report: Report, fail_on: Collection[str]) -> str:
    """JUnit XML: one test case per source (or per baseline), evidence in the failures."""
    found = cases(report, fail_on)
    failures = sum(c.status == "failed" for c in found)
    skipped = sum(c.status == "skipped" for c in found)
    attrs = {
        "name": f"reprokit check {report.script}",
        "tests": str(len(found)),
        "failures": str(failures),
        "errors": "0",
        "skipped": str(skipped),
        "time": f"{report.wall_seconds:.3f}",
    }
    suites = ET.Element("testsuites", {k: v for k, v in attrs.items() if k != "name"} | {"name": "reprokit"})
    suite = ET.SubElement(suites, "testsuite", attrs)
    properties = ET.SubElement(suite, "properties")
    for name, value in (
        ("seed", report.seed),
        ("verdict", report.verdict),
        ("reprokit", report.reprokit_version),
    ):
        ET.SubElement(properties, "property", {"name": name, "value": str(value)})
    classname = f"reprokit.{report.script}"
    for case in found:
        element = ET.SubElement(suite, "testcase", {"classname": classname, "name": case.name, "time": "0"})
        if case.status == "failed":
            ET.SubElement(element, "failure", {"message": case.message, "type": "NotReproducible"}).text = case.details
        elif case.status == "skipped":
            ET.SubElement(element, "skipped", {"message": case.message})
        ET.SubElement(element, "system-out").text = case.details
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def markdown(report: Report, fail_on: Collection[str]) -> str:
    """A compact Markdown summary (for pull requests and ``GITHUB_STEP_SUMMARY``)."""
    icon = "✅" if report.reproducible else "❌"
    env = report.environment
    lines = [
        f"### {icon} reprokit check `{report.script}`: {report.verdict.replace('_', ' ')}",
        "",
        f"seed {report.seed} · {len(report.runs)} runs · {report.wall_seconds:.1f} s · "
        f"TensorFlow {env.get('tensorflow', '?')} · Keras {env.get('keras', '?')}",
        "",
    ]
    if report.baseline is not None:
        lines += [f"**Baseline** `{report.baseline.path}`: {report.baseline.message}", ""]
    else:
        failing = failing_sources(fail_on)
        lines += ["| source | result | evidence |", "|---|---|---|"]
        for f in report.findings:
            lines.append(f"| {f.title} | {_result(f, failing)} | {_cell(f.evidence)} |")
        lines += [
            "",
            "| pair | result | first divergence | max \\|Δw\\| | prediction agreement |",
            "|---|---|---|---|---|",
        ]
        for c in report.comparisons:
            d = c.divergence
            where = "—" if d is None else ("initial weights" if d.step == 0 else f"step {d.step}")
            if d is not None and d.variables:
                where += f" (`{d.variables[0]}`)"
            agreement = "—" if c.prediction_agreement is None else f"{c.prediction_agreement:.0%}"
            max_abs = "—" if c.max_abs_diff is None else f"{c.max_abs_diff:.3g}"
            lines.append(
                f"| {c.name} | {'identical' if c.identical else 'differs'} | {where} | {max_abs} | {agreement} |"
            )
        for f in report.findings:
            if f.detected and f.fix:
                lines += [
                    "",
                    f"<details><summary>Fix: {f.title}</summary>",
                    "",
                    "```python",
                    f.fix,
                    "```",
                    "",
                    "</details>",
                ]
    return "\n".join(lines) + "\n"


def _result(f: Finding, failing: frozenset[str]) -> str:
    if f.detected is None:
        return "not checked" if f.evidence.startswith("Not checked") else "unclear"
    if f.detected:
        return "❌ detected" if f.source in failing else "⚠️ detected"
    return "✅ none"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def github_annotations(report: Report, fail_on: Collection[str]) -> Iterator[str]:
    """GitHub Actions workflow commands: an error per failure, a notice per script line of note."""
    failing = failing_sources(fail_on)
    for case in cases(report, fail_on):
        if case.status == "failed":
            yield f"::error file={_prop(report.script)},title={_prop('reprokit: ' + case.name)}::{_data(case.message)}"
    for f in report.lint:
        detected = any(
            x.detected and x.source in failing and f in linked_lint(x.source, report.lint) for x in report.findings
        )
        level = "error" if detected and report.baseline is None else "warning"
        location = f"file={_prop(f.path)},line={f.line},col={f.col}"
        yield f"::{level} {location},title={_prop('reprokit ' + f.code)}::{_data(f.message + ' Fix: ' + f.fix)}"
    for pin in report.pins:
        message = f"the script fixes its own {'seed' if pin.kind == 'seed' else 'op determinism'}: {pin.call}"
        yield f"::notice file={_prop(pin.file)},line={pin.line},title=reprokit::{_data(message)}"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def plain_summary(report: Report, width: int = 100) -> str:
    """The terminal report as plain text (for assertion messages and exceptions)."""
    out = io.StringIO()
    Console(file=out, width=width, color_system=None, force_terminal=False, highlight=False).print(report)
    return out.getvalue()


@dataclass(frozen=True)
class Output:
    """One report format and where it goes (None: stdout)."""

    format: str
    path: Path | None


def parse_outputs(formats: Sequence[str], output: Path | None) -> list[Output]:
    """``--format NAME`` or ``--format NAME=PATH`` (repeatable); ``--output`` names the stdout one's file."""
    outputs = []
    for spec in formats or ["rich"]:
        name, _, path = spec.partition("=")
        if name not in FORMATS:
            raise UsageError(f"expected a format among {', '.join(FORMATS)} (optionally NAME=PATH), received {spec!r}")
        outputs.append(Output(name, Path(path) if path else None))
    to_stdout = [o for o in outputs if o.path is None]
    if len(to_stdout) > 1:
        raise UsageError("only one --format can go to stdout; give the others a file: --format junit=report.xml")
    if output is not None:
        if not to_stdout:
            raise UsageError("--output names the file of a --format without =PATH; every format already has one")
        outputs = [Output(o.format, output) if o.path is None else o for o in outputs]
    return outputs


def render(report: Report, output_format: str, fail_on: Sequence[str], terminal: bool = False) -> str:
    """The report in one of FORMATS, as text (rich: plain text, 100 columns)."""
    if output_format == "json":
        return report.to_json()
    if output_format == "junit":
        return junit(report, fail_on)
    if output_format == "markdown":
        return markdown(report, fail_on)
    return "" if terminal else plain_summary(report)

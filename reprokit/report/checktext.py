"""A check's answers in words, the same in every format: its headline, why a cell is blank, and the next command.

The terminal (:mod:`reprokit.report.checkrich`), the HTML page (built from the
terminal's parts) and the Markdown summary (:mod:`reprokit.report.ci`) take
these sentences from here, so they cannot say different things.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from reprokit.checking.comparison import Comparison
from reprokit.checking.evidence import pins_text
from reprokit.checking.result import Report
from reprokit.checking.resume import Resumed
from reprokit.core.vocabulary import Pair, Source, Status

OWN_RUNS = {
    Source.SEED: "the seed",
    Source.NONDETERMINISTIC_OPS: "nondeterministic ops",
    Source.WRITTEN_FILES: "files read back",
    Source.RESUME: "resuming",
}
"""What makes a user's own trainings differ, in the headline's words (with the controlled pair identical)."""

BLANK = "—"
"""How a table shows a figure that was not measured; every one has a footnote saying why."""

MARKS = "¹²³⁴⁵⁶⁷⁸⁹"


@dataclass(frozen=True)
class Headline:
    """The first line of a check's report.

    Attributes:
        lead: the verdict, shown in bold (``✔ REPRODUCIBLE UNDER CONTROL``).
        detail: what follows it (`` — your own runs differ: files read back``).
        style: ``green``, ``yellow`` or ``red``.
        words: the whole line in lower case without its mark, for a page's verdict or a Markdown heading.
    """

    lead: str
    detail: str
    style: str
    words: str


@dataclass(frozen=True)
class NextStep:
    """The one command that answers the next natural question after a report.

    Attributes:
        question: the question, in a few words.
        command: the command to paste.
    """

    question: str
    command: str


@dataclass(frozen=True)
class Blank:
    """A cell of the comparisons table that shows :data:`BLANK`, and why.

    Attributes:
        pair: the comparison's name.
        column: the column's heading (``agree``).
        reason: why the figure is missing, as a clause.
    """

    pair: str
    column: str
    reason: str


def own_differences(report: Report) -> tuple[Source, ...]:
    """The sources that make the user's own trainings differ although the controlled pair is identical."""
    if not report.reproducible or report.baseline is not None:
        return ()
    return tuple(s for s in OWN_RUNS if report.finding(s).status is Status.DETECTED)


def headline(report: Report) -> Headline:
    """The verdict with what qualifies it: reproducible under control can still mean that the user's runs differ."""
    if report.reproducible:
        own = own_differences(report)
        if own:
            differ = f"your own runs differ: {', '.join(OWN_RUNS[s] for s in own)}"
            words = f"reproducible under control — {differ}"
            return Headline("✔ REPRODUCIBLE UNDER CONTROL", f" — {differ}", "yellow", words)
        return Headline("✔ REPRODUCIBLE", " with every seed fixed and op determinism on", "green", "reproducible")
    if report.refusal is not None:
        return Headline("✘ NOT REPRODUCIBLE", ": TensorFlow refused op determinism", "red", "not reproducible")
    return Headline(
        "✘ NOT REPRODUCIBLE", " even with every seed fixed and op determinism on", "red", "not reproducible"
    )


def next_step(report: Report) -> NextStep | None:
    """The command that answers the next question: ``--explain`` after a difference under one seed, else the seed study.

    None after a baseline check, a refusal, or a check whose runs all agree.
    """
    if report.baseline is not None or report.refusal is not None:
        return None
    same_seed = (Source.UNCONTROLLED, Source.NONDETERMINISTIC_OPS)
    if report.explanation is None and any(report.finding(s).status is Status.DETECTED for s in same_seed):
        return NextStep(
            "where, and in which layer and op, do runs with the same seed first differ?",
            _command(report, "check", "--explain"),
        )
    if report.finding(Source.SEED).status is Status.DETECTED:
        return NextStep("how much does the seed move your metrics?", _command(report, "seeds"))
    return None


def _command(report: Report, command: str, *options: str) -> str:
    words = ["reprokit", command, report.script, *options]
    return shlex.join(words + (["--", *report.script_args] if report.script_args else []))


def blanks(report: Report) -> tuple[Blank, ...]:
    """Every blank cell of the comparisons table (max |Δw|, agree, final loss), with its reason."""
    found = []
    for c in report.comparisons:
        if not c.identical and c.max_abs_diff is None:
            found.append(Blank(c.name, "max |Δw|", c.max_abs_diff_unmeasured or "not measured"))
        if c.prediction_agreement is None:
            found.append(Blank(c.name, "agree", c.prediction_agreement_unmeasured or "not measured"))
        for run, loss in zip(c.runs, c.final_losses):
            if loss is None:
                found.append(Blank(c.name, "final loss", f"run {run} reported no training loss"))
    return tuple(found)


def footnotes(found: Sequence[Blank]) -> tuple[dict[tuple[str, str], str], tuple[str, ...]]:
    """A mark per blank cell (the same reason, the same mark) and the footnotes, one per reason.

    Returns:
        ``{(pair, column): mark}`` and the lines ``¹ agree (seed pair): the outputs … are not classes``.
    """
    marks: dict[tuple[str, str], str] = {}
    reasons: dict[tuple[str, str], list[str]] = {}
    for b in found:
        reasons.setdefault((b.column, b.reason), [])
        if b.pair not in reasons[(b.column, b.reason)]:
            reasons[(b.column, b.reason)].append(b.pair)
    lines = []
    for i, ((column, reason), pairs) in enumerate(reasons.items()):
        mark = MARKS[i] if i < len(MARKS) else f"({i + 1})"
        for pair in pairs:
            marks[(pair, column)] = mark
        named = f"{', '.join(pairs)} pair{'s' if len(pairs) > 1 else ''}"
        lines.append(f"{mark} {BLANK} under {column} ({named}): {reason}.")
    return marks, tuple(lines)


def summary(report: Report) -> str:
    """The answer to "why do my trainings differ?", in a few sentences."""
    seed = report.finding(Source.SEED)
    ops = report.finding(Source.NONDETERMINISTIC_OPS)
    files = report.finding(Source.WRITTEN_FILES)
    controlled = report.comparison(Pair.CONTROLLED)
    steps = controlled.steps[0] if controlled else 0
    if report.refusal is not None:
        r = report.refusal
        at = f" at {r.where}" if r.where else ""
        compared = " The runs that did not need op determinism were still compared." if report.comparisons else ""
        return (
            f"TensorFlow refused to run the script with op determinism on{at}: {r.error} "
            f"That is a finding, not a crash: {r.meaning}.{compared} See the options below."
        )
    if not report.reproducible:
        assert controlled is not None
        text = (
            f"Two trainings with seed {report.seed} and op determinism on differ "
            f"({_divergence_words(controlled)}): the script draws randomness that no "
            "global seed reaches, so no setting outside the script makes it reproducible."
        )
        return text + " See the fix below."
    text = (
        f"Two trainings with seed {report.seed} and op determinism on gave bit-identical "
        f"weights at every one of {steps} steps."
    )
    causes = [f for f in (seed, ops, files) if f.status is Status.DETECTED]
    resumed = _resumed(report)
    if not causes:
        if report.quick:
            return text + resumed + " Run without --quick to learn what makes unseeded trainings differ."
        own = pins_text(report.pins, "seed")
        if own and seed.status is Status.NONE:
            return (
                f"{text}{resumed} Your script pins its seed itself ({own}), so another seed from reprokit trains "
                "the same model; default ops do not change the weights either."
            )
        return text + resumed + " Even with another seed or default ops the weights do not change."
    parts = []
    if seed.status is Status.DETECTED:
        c = report.comparison(Pair.SEED)
        size = _size(c, len(models(report)) > 1)
        parts.append(f"the seed (with seed {report.seed + 1} the weights differ {_divergence_words(c)}{size})")
    if ops.status is Status.DETECTED:
        c = report.comparison(Pair.OPS)
        parts.append(f"nondeterministic ops (with default ops, same-seed runs differ {_divergence_words(c)})")
    if files.status is Status.DETECTED:
        c = report.comparison(Pair.FILES)
        again = f"a second training among them differs {_divergence_words(c)}"
        parts.append(f"the files it writes and reads back ({again})")
    fixes = "set the seed" if causes == [seed] else "apply the fixes"
    return (
        f"{text}{resumed} The differences between your own trainings come from "
        f"{' and from '.join(parts)}. {fixes.capitalize()} below and every training of "
        "this script gives the same model."
    )


def _resumed(report: Report) -> str:
    """The resume check's answer in one sentence ("" where none ran or it could not judge)."""
    r = report.resume
    if r is None or r.verdict is Resumed.NOT_JUDGED:
        return ""
    return f" Stopped after step {r.stopped_after} and run again, it {r.verdict.words}."


def _divergence_words(c: Comparison | None) -> str:
    if c is None or c.divergence is None:
        return "only in the final weights"
    d = c.divergence
    if d.after is not None:
        return f"between steps {d.after} and {d.step}"
    return "from initialization on" if d.step == 0 else f"from step {d.step}"


def _size(c: Comparison | None, several_models: bool = False) -> str:
    if c is None:
        return ""
    parts = []
    if c.max_abs_diff is not None:
        largest = c.variables[0].model if several_models and c.variables else None
        parts.append(f"final max |Δw| {num(c.max_abs_diff)}" + (f" (in {largest})" if largest else ""))
    if c.prediction_agreement is not None:
        parts.append(f"predictions agree on {c.prediction_agreement:.0%} of a probe batch")
    aligned = next((m.alignment for m in c.alignments if m.alignment.explained is not None), None)
    if aligned is not None:  # explained: some layer was aligned
        cka = f", hidden layers' CKA {aligned.cka:.2f}" if aligned.cka is not None else ""
        parts.append(f"the order of the hidden units explains {aligned.explained:.0%} of the weight distance{cka}")
    return ": " + ", ".join(parts) if parts else ""


def models(report: Report) -> tuple[str, ...]:
    """The models the runs trained, in the order they were trained."""
    return tuple(dict.fromkeys(m for run in report.runs for m in run.models))


def num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"

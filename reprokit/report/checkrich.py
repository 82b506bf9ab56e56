"""The rich terminal report, rendered from a :class:`~reprokit.checking.result.Report`."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reprokit.checking.baseline import BaselineResult
from reprokit.checking.classify import Finding
from reprokit.checking.comparison import Comparison, short_name
from reprokit.checking.explain import Explanation
from reprokit.checking.result import Report
from reprokit.checking.resume import Resumed, ResumeResult
from reprokit.checking.search import SearchResult, params_words
from reprokit.core.backends import Backend, framework_line, profile_line
from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Pair, Source, Status
from reprokit.report.alignrich import three_parts
from reprokit.report.code import FoldedCode


def render_report(report: Report) -> Iterator[RenderableType]:
    """Yields the parts of the terminal report, top to bottom."""
    if report.baseline is not None:
        yield from _baseline_parts(report, report.baseline)
        yield _environment(report)
        return
    yield _verdict_panel(report)
    yield _sources_table(report)
    if report.comparisons:
        yield _comparisons_table(report)
    yield from _why_weights(report)
    if report.search is not None:
        yield _search_panel(report.search)
    if report.resume is not None:
        yield _resume_panel(report.resume)
    if report.explanation is not None:
        yield _explanation_panel(report.explanation)
    for finding in report.findings:
        if finding.status in (Status.DETECTED, Status.NOT_OBSERVED):
            yield _fix_panel(finding)
    if report.lint:
        yield _lint_table(report)
    yield _environment(report)


def _why_weights(report: Report) -> Iterator[RenderableType]:
    """The seed pair's answer to "why are the weights different?", per model, in three parts."""
    c = report.comparison(Pair.SEED)
    if c is None or report.finding(Source.SEED).status is not Status.DETECTED:
        return  # the difference is not the seed's alone: the seed pair's sizes would mix sources
    cause = f"the seed ({report.seed} vs {report.seed + 1})"
    for m in c.alignments:
        yield three_parts(m.alignment, cause, f"Why are the weights different? ({m.model}, seed pair)")


def _search_panel(result: SearchResult) -> Panel:
    """The script's own hyperparameter search: is it reproducible, and does the seed change what it chooses?"""
    good = result.reproducible
    style = "green" if good else ("yellow" if good is None else "red")
    mark = "✔" if good else ("?" if good is None else "✘")
    parts: list[RenderableType] = [Text(f"{mark} THE SEARCH IS {result.words.upper()}", style=f"bold {style}")]
    for pair in result.pairs:
        line = Text(f"\n{pair.pair.value} pair ({pair.label}): ", style="bold")
        line.append(pair.summary, style="")
        parts.append(line)
    table = Table(title="Best trials", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    several = len({(s.library, s.name) for pair in result.pairs for s in pair.searches}) > 1
    if several:
        table.add_column("search", no_wrap=True)
    table.add_column("run", no_wrap=True, style="bold")
    table.add_column("seed", justify="right", no_wrap=True)
    table.add_column("trials", justify="right", no_wrap=True)
    table.add_column("best hyperparameters", ratio=1, overflow="fold")
    table.add_column("score", justify="right", no_wrap=True)
    shown = set()
    for pair in result.pairs:
        for s in pair.searches:
            for run, seed, trials, best in zip(pair.runs, pair.seeds, s.trials, s.best):
                if (s.library, s.name, run) in shown:
                    continue
                shown.add((s.library, s.name, run))
                row = [run, str(seed), str(trials), "—" if best is None else params_words(best)]
                row.append("—" if best is None else _num(best.score, 6))
                table.add_row(*([f"{s.library} {s.name}"] if several else []), *row)
    parts += [Text(""), table]
    return Panel(Group(*parts), title="Hyperparameter search", border_style=style, box=box.ROUNDED)


def _resume_panel(result: ResumeResult) -> Panel:
    """A resume check's answer: where the training resumed from, what differs after, and what was not restored."""
    good = result.verdict.good
    style = "green" if good else ("yellow" if result.verdict is Resumed.NOT_JUDGED else "red")
    headline = Text(f"{'✔' if good else '✘'} {result.verdict.words.upper()}", style=f"bold {style}")
    parts: list[RenderableType] = [headline, Text("")]
    if result.verdict is Resumed.NOT_JUDGED:
        parts += [Text(result.evidence), Text("")]
    facts = Table(box=None, show_header=False, padding=(0, 2, 0, 0))
    facts.add_column(style="bold", no_wrap=True)
    facts.add_column()
    start = result.resumed_from
    facts.add_row("stopped after", f"step {result.stopped_after} of {result.steps}")
    facts.add_row("resumed from", "—" if start is None else ("the initial weights" if start == 0 else f"step {start}"))
    if result.replayed is not None:
        facts.add_row("replayed", f"steps {result.replayed[0]}–{result.replayed[1]}")
    if result.first_difference is not None:
        facts.add_row("first differs", f"after step {result.first_difference}")
    facts.add_row("final weights", "bit-identical" if result.final_identical else "differ")
    parts.append(facts)
    if result.lost:
        lost = Table(title="Not restored", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
        lost.add_column("state", no_wrap=True, style="bold")
        lost.add_column("evidence", ratio=1)
        for x in result.lost:
            lost.add_row(x.state.label, x.evidence)
        parts.append(lost)
    title = f"Resume: stopped after step {result.stopped_after} and run again"
    return Panel(Group(*parts), title=Text(title), border_style=style, box=box.ROUNDED)


def _verdict_panel(report: Report) -> Panel:
    if report.reproducible:
        headline = Text("✔ REPRODUCIBLE", style="bold green")
        headline.append(" with every seed fixed and op determinism on", style="green")
        style = "green"
    else:
        headline = Text("✘ NOT REPRODUCIBLE", style="bold red")
        why = (
            ": TensorFlow refused op determinism"
            if report.refusal
            else " even with every seed fixed and op determinism on"
        )
        headline.append(why, style="red")
        style = "red"
    runs = f"{len(report.runs)} runs"
    args = " " + " ".join(report.script_args) if report.script_args else ""
    return Panel(
        Group(headline, Text(""), Text(summary(report))),
        title=Text(f"reprokit check {report.script}{args}"),
        subtitle=Text(f"seed {report.seed} · {runs} · {report.wall_seconds:.1f} s"),
        border_style=style,
        box=box.ROUNDED,
    )


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
        return text + resumed + " Even with another seed or default ops the weights do not change."
    parts = []
    if seed.status is Status.DETECTED:
        c = report.comparison(Pair.SEED)
        size = _size(c, len(_models(report)) > 1)
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
        parts.append(f"final max |Δw| {_num(c.max_abs_diff)}" + (f" (in {largest})" if largest else ""))
    if c.prediction_agreement is not None:
        parts.append(f"predictions agree on {c.prediction_agreement:.0%} of a probe batch")
    aligned = next((m.alignment for m in c.alignments if m.alignment.explained is not None), None)
    if aligned is not None:  # explained: some layer was aligned
        cka = f", hidden layers' CKA {aligned.cka:.2f}" if aligned.cka is not None else ""
        parts.append(f"the order of the hidden units explains {aligned.explained:.0%} of the weight distance{cka}")
    return ": " + ", ".join(parts) if parts else ""


_STATUS_TEXT = {
    Status.DETECTED: "● detected",
    Status.NONE: "✔ none",
    Status.NOT_OBSERVED: "○ not observed",
    Status.NOT_CHECKED: "○ not checked",
    Status.NOT_SEPARABLE: "? unclear",
}


def _status(finding: Finding) -> Text:
    if finding.status is Status.DETECTED:
        style = "bold red" if finding.source is Source.UNCONTROLLED else "bold yellow"
    else:
        style = "green" if finding.status is Status.NONE else "yellow"
    return Text(_STATUS_TEXT[finding.status], style=style)


def _sources_table(report: Report) -> Table:
    table = Table(title="Sources of difference", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    table.add_column("source", no_wrap=True, style="bold")
    table.add_column("result", no_wrap=True)
    table.add_column("evidence", ratio=1)
    for finding in report.shown_findings:
        table.add_row(finding.title, _status(finding), finding.evidence)
    return table


def _comparisons_table(report: Report) -> Table:
    legend = " · ".join(f"{c.name}: {_pair_title(c.name)}" for c in report.comparisons)
    models = _models(report)
    if len(models) > 1:  # a run reports the loss of the last model it trained
        legend += f" · final loss: of {models[-1]}"
    table = Table(
        title="Comparisons",
        title_justify="left",
        caption=legend,
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        expand=True,
    )
    table.add_column("pair", no_wrap=True, style="bold")
    table.add_column("result", no_wrap=True)
    table.add_column("first divergence", ratio=1, overflow="fold")
    table.add_column("max |Δw|", justify="right", no_wrap=True)
    table.add_column("agree", justify="right", no_wrap=True)
    table.add_column("final loss", justify="right", no_wrap=True)  # one line per run
    for c in report.comparisons:
        result = Text("identical", style="green") if c.identical else Text("differs", style="red")
        losses = dict.fromkeys(_num(loss, 3) for loss in c.final_losses)
        table.add_row(
            c.name,
            result,
            _first_divergence(c),
            "0" if c.identical else _num(c.max_abs_diff),
            "—" if c.prediction_agreement is None else f"{c.prediction_agreement:.0%}",
            "\n".join(losses),
        )
    return table


def _pair_title(name: str) -> str:
    try:
        return Pair(name).description
    except ValueError:  # a comparison of the caller's own
        return ""


def _models(report: Report) -> tuple[str, ...]:
    """The models the runs trained, in the order they were trained."""
    return tuple(dict.fromkeys(m for run in report.runs for m in run.models))


def _first_divergence(c: Comparison) -> Text:
    d = c.divergence
    if d is None:
        return Text(f"none ({c.steps[0]} steps)", style="dim")
    text = Text(d.steps)
    if d.located:
        text.append("\nlocated by a replay", style="dim")
    if d.variables:
        more = f" +{len(d.variables) - 1}" if len(d.variables) > 1 else ""
        text.append(f"\n{short_name(d.model, d.variables[0])}{more}", style="dim")
    if d.stage is None and c.xla_steps and d.step > 0:
        text.append("\nstage unknown (XLA)", style="dim")
    if d.stage in ("input pipeline", "computation"):
        how = {"order": ": reordered", "values": ": other values"}.get(d.input_change or "", "")
        text.append(f"\n{d.stage}{how}", style="dim")
    return text


def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def _fix_panel(finding: Finding) -> Panel:
    parts: list[RenderableType] = []
    if finding.explanation:
        parts.append(Text(finding.explanation))
    if finding.fix and not finding.fix_is_code:
        parts += [Text(""), Text("Options:", style="bold"), Text(finding.fix)]
    elif finding.fix:
        parts += [
            Text(""),
            Text("Fix:", style="bold"),
            FoldedCode(finding.fix),  # folded to the panel's width, never clipped: a pasted fix runs
        ]
    style = "red" if finding.source is Source.UNCONTROLLED else "yellow"
    return Panel(Group(*parts), title=Text(f"{finding.title}: why, and the fix"), border_style=style, box=box.ROUNDED)


def _environment(report: Report) -> RenderableType:
    env = report.environment
    threads = env.get("intra_op_threads")
    thread_text = f"intra-op threads {threads or 'default'}, inter-op {env.get('inter_op_threads') or 'default'}"
    lines = [
        f"{framework_line(env)} · Keras {env.get('keras', '?')} ({env.get('backend', '?')}) · "
        f"Python {env.get('python', '?')}",
        f"{env.get('cpu', '?')} · {env.get('cpu_count', '?')} cores · {thread_text}",
    ]
    if env.get("gpus"):
        lines.append("GPUs: " + ", ".join(env["gpus"]))
    with contextlib.suppress(UsageError):  # an environment of no backend reprokit knows names no profile
        lines.append(profile_line(Backend.parse(str(env.get("backend", "tensorflow")))))
    lines += [f"Note: {note}" for note in report.notes]
    text = Text("\n".join(lines), style="dim")
    return Padding(text, (1, 0, 0, 1))


def _baseline_parts(report: Report, result: BaselineResult) -> Iterator[RenderableType]:
    if result.passed:
        headline = Text("✔ MATCHES THE BASELINE", style="bold green")
        style = "green"
    else:
        headline = Text("✘ DIFFERS FROM THE BASELINE", style="bold red")
        style = "red"
    how = "bit for bit" if result.bitwise else f"within rtol {result.rtol:g}, atol {result.atol:g}"
    headline.append(f" {result.path} ({how})", style=style)
    run = report.runs[0]
    lines = [headline, Text(""), Text(f"One controlled run (seed {report.seed}, op determinism on): {result.message}.")]
    if not result.passed and result.update_command:
        lines += [Text(""), Text("If the change was intended, record the baseline anew:", style="bold")]
        lines.append(Text(result.update_command))
    yield Panel(
        Group(*lines),
        title=Text(f"reprokit check {report.script} --baseline {result.path}"),
        subtitle=Text(f"{run.steps} steps · {report.wall_seconds:.1f} s"),
        border_style=style,
        box=box.ROUNDED,
    )
    if result.environment_differences:
        table = Table(title="Environment differences", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
        for column in ("field", "baseline", "now"):
            table.add_column(column, overflow="fold")
        for d in result.environment_differences:
            table.add_row(d.field, str(d.baseline), str(d.current))
        yield table
    if result.metric_differences:
        table = Table(title="Losses and metrics", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
        for column in ("model", "metric", "at", "baseline", "now"):
            table.add_column(column, overflow="fold")
        for m in result.metric_differences:
            table.add_row(m.model, m.metric, f"{m.unit} {m.index}", _num(m.baseline, 6), _num(m.current, 6))
        yield table


def _lint_table(report: Report) -> Table:
    table = Table(title="Hazards in the script (reprokit lint)", title_justify="left", box=box.SIMPLE_HEAD, expand=True)
    table.add_column("where", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("what, and the fix", ratio=1)
    for f in report.lint:
        table.add_row(f"{f.path.rsplit('/', 1)[-1]}:{f.line}", f.code, f"{f.message} Fix: {f.fix}")
    return table


def _explanation_panel(e: Explanation) -> Panel:
    lines = Text(f"{e.pair} pair, step {e.step}", style="bold")
    if e.stage:
        lines.append(f" · stage: {e.stage}", style="bold")
    lines.append(f"\n{e.detail[0].upper()}{e.detail[1:]}.")
    named = [("layer", e.layer), ("class", e.layer_class), ("op", e.op), ("variable", e.variable)]
    shown = [f"{label} {value}" for label, value in named if value]
    if shown:
        lines.append("\n" + " · ".join(shown), style="dim")
    return Panel(lines, title="Where the difference comes from (explain)", border_style="cyan", box=box.ROUNDED)

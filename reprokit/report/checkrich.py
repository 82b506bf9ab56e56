"""The rich terminal report, rendered from a :class:`~reprokit.checking.result.Report`."""

from __future__ import annotations

import contextlib
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
from reprokit.report.checktext import BLANK, blanks, footnotes, headline, models, next_step, num, summary
from reprokit.report.code import FoldedCode


def render_report(report: Report) -> Iterator[RenderableType]:
    """Yields the parts of the terminal report, top to bottom: the answer, then how it was reached."""
    yield from answer_parts(report)
    yield from closing_parts(report)


def answer_parts(report: Report) -> Iterator[RenderableType]:
    """The verdict, the sources, the evidence in tables, the likely cause and the fix (the HTML page's plots follow)."""
    if report.baseline is not None:
        yield from _baseline_parts(report, report.baseline)
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


def closing_parts(report: Report) -> Iterator[RenderableType]:
    """The environment the runs saw, then the one command that answers the next natural question."""
    yield _environment(report)
    step = next_step(report)
    if step is not None:
        line = Text("Next: ", style="bold")
        line.append(step.command, style="bold cyan")
        line.append(f"  ({step.question})", style="dim")
        yield Padding(line, (1, 0, 0, 1))


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
                row.append("—" if best is None else num(best.score, 6))
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
    head = headline(report)
    line = Text(head.lead, style=f"bold {head.style}")
    line.append(head.detail, style=head.style)
    style = head.style
    runs = f"{len(report.runs)} runs"
    args = " " + " ".join(report.script_args) if report.script_args else ""
    return Panel(
        Group(line, Text(""), Text(summary(report))),
        title=Text(f"reprokit check {report.script}{args}"),
        subtitle=Text(f"seed {report.seed} · {runs} · {report.wall_seconds:.1f} s"),
        border_style=style,
        box=box.ROUNDED,
    )


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
    trained = models(report)
    if len(trained) > 1:  # a run reports the loss of the last model it trained
        legend += f" · final loss: of {trained[-1]}"
    marks, notes = footnotes(blanks(report))  # every blank cell says why, below the table
    table = Table(
        title="Comparisons",
        title_justify="left",
        caption="\n".join([legend, *notes]),
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

    def blank(pair: str, column: str) -> str:
        return BLANK + marks.get((pair, column), "")

    for c in report.comparisons:
        result = Text("identical", style="green") if c.identical else Text("differs", style="red")
        losses = dict.fromkeys(blank(c.name, "final loss") if loss is None else num(loss, 3) for loss in c.final_losses)
        table.add_row(
            c.name,
            result,
            _first_divergence(c),
            "0" if c.identical else (blank(c.name, "max |Δw|") if c.max_abs_diff is None else num(c.max_abs_diff)),
            blank(c.name, "agree") if c.prediction_agreement is None else f"{c.prediction_agreement:.0%}",
            "\n".join(losses),
        )
    return table


def _pair_title(name: str) -> str:
    try:
        return Pair(name).description
    except ValueError:  # a comparison of the caller's own
        return ""


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
            table.add_row(m.model, m.metric, f"{m.unit} {m.index}", num(m.baseline, 6), num(m.current, 6))
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

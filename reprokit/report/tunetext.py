"""``reprokit tune``'s sentences, Markdown and JUnit, and its report in every ``--format``: pure functions of it.

The terminal (:mod:`reprokit.report.tunerich`), Markdown, JUnit and HTML say the same, from these sentences.
"""

from __future__ import annotations

from reprokit.core.files import json_text
from reprokit.report import markdown as md
from reprokit.report.ci import Case, Format, junit_document, plain_summary
from reprokit.report.studytext import interval, num
from reprokit.study.ranking import RELIABLE, Ranking
from reprokit.study.tuneresult import Concern, TuneReport


def tune_headline(report: TuneReport) -> tuple[str, str]:
    """The verdict line and its style (green: a clear winner, yellow: tied or unstable, red: no ranking)."""
    r = report.ranking
    if r is None:
        return "✘ NO RANKING: fewer than two seeds gave every configuration a value", "red"
    best = report.label(r.best)
    tied = sum(c.tied for c in r.configs) - 1
    if tied and r.tie_test_possible:
        return f"● BEST {best}, statistically tied with {tied} other configuration{'s' if tied > 1 else ''}", "yellow"
    if not r.tie_test_possible:
        return f"● BEST {best} on the mean, with too few seeds to tell it from the others", "yellow"
    return f"✔ BEST {best}, ahead of every other configuration beyond seed noise", "green"


def seed_advice(report: TuneReport) -> str:
    """The answer to "should I fix the seed while tuning?" for this script, with its numbers."""
    r = report.ranking
    if r is None:
        return "No advice: fewer than two seeds gave every configuration a value."
    best, pick, n = report.label(r.best), report.label(r.one_seed_pick), len(r.seeds)
    if r.one_seed_pick == r.best:
        picked = f"With one fixed seed ({r.seeds[0]}), tuning would have picked {pick}, the overall best"
    else:
        picked = f"With one fixed seed ({r.seeds[0]}), tuning would have picked {pick}, not the overall best {best}"
    share = r.winner_share
    across = (
        f"across {n} seeds {best} is the best (or tied for it) under {share:.0%} of them "
        f"(P(best) {r.configs[r.best].p_best:.0%})"
    )
    top = min(3, len(r.configs))
    if r.seeds_for_top is not None:
        spend = (
            f"spend ≥ {r.seeds_for_top} seeds per configuration to rank the top {top} reliably "
            f"(the same order in ≥ {RELIABLE:.0%} of resampled studies)"
        )
    else:
        spend = (
            f"even {n} seeds per configuration do not rank the top {top} reliably (the same order in "
            f"{r.top_share:.0%} of resampled studies, < {RELIABLE:.0%}): spend more than {n}"
        )
    return f"{picked}; {across}; {spend}."


def stability_sentence(report: TuneReport) -> str:
    """How far the seeds agree on the ranking (Kendall's W), and how often one seed's winner is the overall one."""
    r = report.ranking
    if r is None:
        return ""
    w = "undefined (every seed ties every configuration)" if r.kendall_w is None else f"{r.kendall_w:.2f}"
    friedman = "" if r.friedman_p is None else f", Friedman p = {num(r.friedman_p, '.3g')}"
    sentence = (
        f"Rank stability across seeds: Kendall's W = {w} (0: the seeds rank the configurations at random, 1: "
        f"every seed ranks them alike{friedman})."
    )
    if r.dropped:
        sentence += f" Seeds left out (a configuration has no value there): {', '.join(map(str, r.dropped))}."
    if not r.tie_test_possible:
        sentence += " Too few seeds for the tie test to reach p < 0.05 after the Holm correction: none is ruled out."
    return sentence


def sequential_line(report: TuneReport) -> str | None:
    s = report.sequential
    return None if s is None else f"--seeds auto: {s.why()} (every pair of configurations, see docs/sequential.md)."


def rows(report: TuneReport) -> list[list[str]]:
    """One row per configuration, best first: rank, label, n, mean, std, 95 % CI, P(best), seed wins, tied."""
    r: Ranking | None = report.ranking
    if r is None:
        return []
    found = []
    for place, i in enumerate(r.order, 1):
        c = r.configs[i]
        stats = report.variants[i].metric(report.metric)
        std = stats.summary.std if stats is not None and stats.summary is not None else None
        tied = "best" if i == r.best else ("tied" if c.tied else "worse")
        found.append(
            [
                str(place),
                report.label(i),
                str(c.n),
                num(c.mean),
                num(std, ".2g"),
                interval(c.ci_low, c.ci_high),
                f"{c.p_best:.0%}",
                str(c.seed_wins),
                tied,
            ]
        )
    return found


HEADER = ("#", "configuration", "n", "mean", "std", "95 % CI", "P(best)", "seed wins", "vs best")


def tune_markdown(report: TuneReport) -> str:
    title, _ = tune_headline(report)
    lines = [f"### reprokit tune {md.code(report.script)}: {md.code(report.metric)}", "", f"**{md.text(title)}**", ""]
    lines += [md.text(seed_advice(report)), "", md.text(stability_sentence(report)), ""]
    sequential = sequential_line(report)
    if sequential:
        lines += [md.text(sequential), ""]
    lines += ["| " + " | ".join(HEADER) + " |", "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    lines += ["| " + " | ".join(md.cell(cell) for cell in row) + " |" for row in rows(report)]
    return "\n".join(lines) + "\n"


def tune_junit(report: TuneReport, failing: frozenset[Concern]) -> str:
    """JUnit: one case per concern ("a clear winner", "one seed picks the winner"), failed when ``--fail-if``
    names it and it holds; then one case per failed run."""
    headline, _ = tune_headline(report)
    advice = seed_advice(report)
    found = []
    for concern, name, message in (
        (Concern.TIED, "a clear winner", headline),
        (Concern.UNSTABLE, "one seed picks the winner", advice),
    ):
        failed = concern in report.concerns() and concern in failing
        found.append(Case(name, "failed" if failed else "passed", message, message))
    for v in report.variants:
        found += [Case(f"{v.label} {r.name}", "error", r.error or "", r.details) for r in v.failed]
    properties = {"metric": report.metric, "first_seed": report.first_seed, "seeds": report.seeds}
    name = f"reprokit tune {report.script}"
    return junit_document(name, "reprokit.tune", found, properties, report.wall_seconds, "TuningConcern")


def render_tune(report: TuneReport, output_format: Format, failing: frozenset[Concern]) -> str:
    """The report as text in ``output_format`` (``failing``: the concerns of ``--fail-if``)."""
    if output_format is Format.JSON:
        return json_text(report.to_dict())
    if output_format is Format.MARKDOWN:
        return tune_markdown(report)
    if output_format is Format.HTML:
        return report.to_html()
    if output_format is Format.JUNIT:
        return tune_junit(report, failing)
    return plain_summary(report)

"""Seed-study reports in words: their figures, verdicts and sentences, and the Markdown and JUnit documents.

The terminal's panels and tables (:mod:`reprokit.report.studyrich`) and the HTML page
(:mod:`reprokit.report.studyhtml`) say what these functions say.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from reprokit.core.vocabulary import Outcome
from reprokit.report import markdown as md
from reprokit.report.ci import Case, junit_document
from reprokit.study.result import CompareReport, Contrast, MetricStats, SeedsReport, VariantResult
from reprokit.study.sequential import Reason
from reprokit.study.stats import MIN_SEEDS
from reprokit.weights.words import seeds_features

REUSED_NOTE = "any study of the same command line reuses them; --fresh trains them again"
"""What the study folder does for the next study, said under every study report."""


def num(value: float | None, spec: str = ".3g") -> str:
    """A figure as reports show it: NaN as NaN, a missing one as an em dash."""
    if value is None:
        return "—"
    if math.isnan(value):
        return "NaN"
    return format(value, spec)


def signed(value: float | None) -> str:
    return "—" if value is None else ("+" if value > 0 else "") + num(value)


def interval(low: float | None, high: float | None) -> str:
    return "—" if low is None or high is None else f"[{num(low)}, {num(high)}]"


# -- seeds ---------------------------------------------------------------------


def seeds_headline(report: SeedsReport) -> tuple[str, str]:
    """The verdict line and its style."""
    variant, stats = report.variant, report.variant.metric(report.metric)
    if report.pinned is False:
        return "✘ THE SEED DOES NOT PIN THIS SCRIPT", "red"
    if stats is None or stats.summary is None:
        return "✘ NO RESULT: no run reported the metric", "red"
    s = stats.summary
    line = f"{report.metric} {num(s.mean)} ± {num(s.std)} over {s.n} seed{'s' if s.n != 1 else ''}"
    if variant.same_model:
        return "● EVERY SEED GAVE THE SAME MODEL: " + line, "yellow"
    return "✔ " + line, "green" if report.pinned else "yellow"


def seeds_explanation(report: SeedsReport) -> str:
    variant, stats = report.variant, report.variant.metric(report.metric)
    parts = []
    repeat = variant.repeat
    if repeat is not None and repeat.identical is False:
        parts.append(
            f"Seed {repeat.seed} run twice with every seed fixed and op determinism on gave different results "
            f"({'; '.join(repeat.differences[:3])}): something the seed does not reach changes the training "
            "(uncontrolled randomness), so the spread below mixes the seed with other sources. "
            f"Run `reprokit check {variant.script}` to find it."
        )
    elif repeat is not None and repeat.identical:
        searched = " (and the same trials of its own hyperparameter search)" if variant.searches else ""
        parts.append(f"Seed {repeat.seed} run twice gave bit-identical results{searched}: the seed pins this script.")
    elif repeat is not None and repeat.differences and "environments" in repeat.differences[0]:
        parts.append(f"Whether the seed pins the script is not known: {repeat.differences[0]}.")
    elif repeat is not None:
        parts.append("Whether the seed pins the script is not known: a run of the repeated seed failed.")
    if stats is not None and stats.summary is not None and stats.summary.ci_low is not None:
        s = stats.summary
        parts.append(
            f"The mean of {report.metric} lies in {interval(s.ci_low, s.ci_high)} (95 % CI, {s.ci_method}); "
            f"single seeds range from {num(s.min)} to {num(s.max)}."
        )
    if variant.same_model:
        parts.append(
            "Every seed gave bit-identical final weights: the script fixes its own seeds (or draws no random "
            "numbers), so reprokit's seed does not reach it and this study shows no seed spread."
        )
    if variant.agreement is not None:
        a = variant.agreement
        parts.append(
            f"Models of two seeds predict the same class on {a.mean:.0%} of the probe batch on average "
            f"(lowest {a.min:.0%}, {a.pairs} pairs)."
        )
    if variant.similarity is not None:
        sim = variant.similarity
        reference = f", {sim.untrained:.2f} for untrained copies" if sim.untrained is not None else ""
        parts.append(
            f"Their hidden layers' linear CKA is {sim.mean:.2f} on average (lowest {sim.min:.2f}{reference}): "
            f"{seeds_features(sim.mean, sim.untrained)}."
        )
    parts += [spread.sentence() for spread in variant.searches]
    if variant.failed:
        parts.append(f"{len(variant.failed)} run(s) failed and are left out (see below).")
    if report.automatic:
        parts.append(
            f"--seeds auto ran {report.seeds} seeds: the first look of a comparison's sequential design, the "
            "fewest with which a change can be shown beyond seed noise; a `reprokit compare` of this command "
            "line with the same study folder reuses these runs."
        )
    return " ".join(parts)


def placement(variants: Sequence[VariantResult]) -> list[tuple[str, bool]]:
    """Where the runs ran, runs Ray retried, metrics that differ by node: (sentence, whether it warns)."""
    lines: list[tuple[str, bool]] = []
    counts: Counter[str] = Counter()
    for v in variants:
        counts.update(dict(v.nodes))
    on_ray = any(r.environment.get("ray_node") for v in variants for r in v.runs)
    if on_ray or len(counts) > 1:
        shown = ", ".join(f"{name} ({n} runs)" for name, n in sorted(counts.items()))
        lines.append((f"Ran on {len(counts)} {'Ray ' if on_ray else ''}node(s): {shown}.", False))
    for v in variants:
        for r in v.runs:
            if r.retries:
                times = "once" if len(r.retries) == 1 else f"{len(r.retries)} times"
                lines.append(
                    (
                        f"Ray lost the run of {v.label}, {r.name} {times} ({r.retries[-1]}) and ran it again from "
                        "the start: with every seed fixed, the retry is exact.",
                        False,
                    )
                )
        for name, p in v.by_node:
            lines.append(
                (
                    f"{v.label}: {name} differs by node (Kruskal–Wallis p = {num(p)}): the nodes compute differently "
                    "(CPU, GPU, versions); compare runs made on one node, or give the nodes one environment.",
                    True,
                )
            )
    return lines


# -- compare -------------------------------------------------------------------


def contrast_sentence(report: CompareReport, c: Contrast) -> str:
    variant, first = report.variants[c.variant], report.variants[0]
    e = c.effect
    if e is None:
        return f"{variant.label} vs {first.label}: fewer than 2 usable runs in a variant; nothing can be said."
    design = "paired" if e.paired else "unpaired"
    p = f"p = {num(c.p_adjusted, '.3g')}" + (" (Holm-adjusted)" if len(report.contrasts) > 1 else "")
    test = f"{'exact' if e.p_exact else 'Monte Carlo'} permutation test, {design}, {e.n_a} vs {e.n_b} runs"
    diff = f"{report.metric} {signed(e.difference)} (95 % CI {interval(e.ci_low, e.ci_high)})"
    detect = f"this study detects differences of about {num(e.detectable)} or more (80 % power)"
    if c.verdict is not None:
        p = f"p = {num(c.p_adjusted, '.3g')}" + (" (Holm-adjusted)" if len(report.contrasts) > 1 else "")
        p += f" against {num(c.verdict.level, '.3g')}, the sequential level at {c.verdict.seeds} seeds"
        if c.verdict.reason is Reason.FUTILE:
            detect = "more seeds would very likely not have made it significant (futility)"
    match c.outcome:
        case Outcome.BETTER | Outcome.WORSE:
            return f"{c.outcome.label.upper()}: {diff}, {p}, {test}."
        case Outcome.EQUIVALENT:
            return f"EQUIVALENT within ±{num(report.min_effect)}: {diff} lies inside it; {p}, {test}."
        case Outcome.WITHIN_NOISE:
            return f"WITHIN SEED NOISE: {diff}, {p}, {test}. Not a finding of no difference: {detect}."
        case _:
            needed = "" if len(report.contrasts) == 1 else f", Holm-corrected over {len(report.contrasts)} comparisons"
            return (
                f"TOO FEW SEEDS for any claim ({e.n_a} vs {e.n_b}: an exact test of this design{needed} cannot "
                f"reach p < 0.05; at least {MIN_SEEDS} seeds are needed, 6 when paired, more with more "
                f"variants): {diff}."
            )


def sequential_sentence(report: CompareReport) -> str | None:
    """How many seeds an automatic study (``--seeds auto``) used, and why it stopped there (None: fixed seeds)."""
    s = report.sequential
    if s is None:
        return None
    return (
        f"--seeds auto: {s.why()}. Group-sequential design: Pocock-type alpha spending over up to "
        f"{s.design.max_seeds} seeds per variant, exact permutation tests (see docs/sequential.md)."
    )


def compare_next_step(report: CompareReport) -> str | None:
    """The command that answers a comparison left within seed noise (None: every contrast is settled).

    With a fixed number of seeds: ``--seeds auto``, which adds seeds until the
    change is shown or ruled out. After ``--seeds auto``: the seeds per variant
    that would detect the difference measured (80 % power; the smallest
    detectable difference shrinks as one over the square root of the seeds),
    or ``--min-effect`` where the contrast was settled as futile, the
    difference measured is nil or would take more than
    :data:`MOST_SEEDS_SUGGESTED` seeds.
    """
    unsettled = [c for c in report.contrasts if c.outcome in (Outcome.WITHIN_NOISE, Outcome.TOO_FEW_SEEDS)]
    if not unsettled:
        return None
    if report.sequential is None:
        return (
            "the same reprokit compare with --seeds auto: it adds seeds to the runs kept in "
            f"{report.folder} until the answer is settled (docs/sequential.md)."
        )
    promising = [c for c in unsettled if c.verdict is None or c.verdict.reason is not Reason.FUTILE]
    needed = [n for c in promising if (n := seeds_needed(c)) is not None and n <= MOST_SEEDS_SUGGESTED]
    if not needed:  # futile, nil, or a difference too small for any practical number of seeds
        return (
            "the same reprokit compare with --min-effect DELTA: it answers whether the variants are equivalent "
            "within a margin you choose (more seeds would very likely not show a difference)."
        )
    return (
        f"the same reprokit compare with --seeds {min(needed)}: about {min(needed)} seeds per variant "
        "detect a difference of the size measured (80 % power); the runs made so far are reused."
    )


MOST_SEEDS_SUGGESTED = 200
"""Seeds per variant beyond which a next step suggests an equivalence margin instead of more seeds."""


def seeds_needed(c: Contrast) -> int | None:
    """Seeds per variant at which the contrast's measured difference becomes detectable (None: no estimate)."""
    e = c.effect
    if e is None or e.detectable is None or not math.isfinite(e.difference) or e.difference == 0:
        return None
    n = min(e.n_a, e.n_b)
    return max(n + 1, math.ceil(n * (e.detectable / abs(e.difference)) ** 2))


def letter(index: int) -> str:
    """How tables name variant number ``index``: A, B, C, …"""
    return chr(ord("A") + index) if index < 26 else f"V{index + 1}"


def worst_style(report: CompareReport) -> str:
    """The colour of a comparison's outcomes: red if a variant is worse, green if one is better or equivalent."""
    outcomes = report.outcomes()
    if Outcome.WORSE in outcomes:
        return "red"
    if Outcome.BETTER in outcomes or Outcome.EQUIVALENT in outcomes:
        return "green"
    return "yellow"


# -- Markdown and JUnit --------------------------------------------------------


def seeds_markdown(report: SeedsReport) -> str:
    title, _ = seeds_headline(report)
    lines = [
        f"### reprokit seeds {md.code(report.variant.label)}",
        "",
        f"**{md.text(title)}**",
        "",
        md.text(seeds_explanation(report)),
        "",
    ]
    lines += _metrics_markdown(report.variant.metrics)
    lines += _placement_markdown([report.variant])
    return "\n".join(lines) + "\n"


def compare_markdown(report: CompareReport) -> str:
    lines = [f"### reprokit compare: {md.code(report.metric)}", ""]
    sequential = sequential_sentence(report)
    if sequential is not None:
        lines += [md.text(sequential), ""]
    for c in report.contrasts:
        lines += [
            f"- **{md.text(report.variants[c.variant].label)}** vs {md.code(report.variants[0].label)}: "
            + md.text(contrast_sentence(report, c))
        ]
    lines += [
        "",
        "| variant | n | mean ± std | 95 % CI | Δ vs first | 95 % CI of Δ | p | result |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, v in enumerate(report.variants):
        stats = v.metric(report.metric)
        s = stats.summary if stats is not None else None
        row = [
            md.cell(v.label),
            str(s.n) if s else "0",
            f"{num(s.mean)} ± {num(s.std)}" if s else "—",
            interval(s.ci_low, s.ci_high) if s else "—",
        ]
        if i == 0:
            row += ["", "", "", "baseline"]
        else:
            c = report.contrasts[i - 1]
            e = c.effect
            row += [
                signed(e.difference) if e else "—",
                interval(e.ci_low, e.ci_high) if e else "—",
                num(c.p_adjusted, ".3g"),
                c.outcome.label,
            ]
        lines.append("| " + " | ".join(row) + " |")
    lines += _placement_markdown(report.variants)
    step = compare_next_step(report)
    if step is not None:
        lines += ["", f"**Next:** {md.text(step)}"]
    return "\n".join(lines) + "\n"


def _placement_markdown(variants: Sequence[VariantResult]) -> list[str]:
    found = placement(variants)
    return ["", *[("⚠ " if warn else "") + md.text(line) for line, warn in found]] if found else []


def _metrics_markdown(metrics: tuple[MetricStats, ...]) -> list[str]:
    lines = ["| metric | n | mean | std | min | max | 95 % CI |", "|---|---:|---:|---:|---:|---:|---:|"]
    for m in metrics:
        s = m.summary
        if s is None:
            lines.append(f"| {md.cell(m.name)} | 0 | — | — | — | — | — |")
        else:
            lines.append(
                f"| {md.cell(m.name)} | {s.n} | {num(s.mean)} | {num(s.std)} | {num(s.min)} | {num(s.max)} "
                f"| {interval(s.ci_low, s.ci_high)} |"
            )
    return lines


def seeds_junit(report: SeedsReport) -> str:
    """JUnit: "seed pins the script" (failed when the repeat differs), then one case per run (error if it failed)."""
    message = seeds_explanation(report)
    if report.pinned is False:
        pinned = Case("seed pins the script", "failed", message, message)
    elif report.pinned is None:
        pinned = Case("seed pins the script", "skipped", "not shown: no repeat, or a run failed", message)
    else:
        pinned = Case("seed pins the script", "passed", message, message)
    runs = [
        Case(r.name, "passed", "", "") if r.ok else Case(r.name, "error", r.error or "", r.details)
        for r in report.variant.runs
    ]
    properties = {"metric": report.metric, "first_seed": report.first_seed, "pinned": report.pinned}
    name = f"reprokit seeds {report.variant.label}"
    return junit_document(name, "reprokit.seeds", [pinned, *runs], properties, report.wall_seconds, "SeedNotPinned")


def compare_junit(report: CompareReport, failing: frozenset[Outcome]) -> str:
    """JUnit: one case per comparison, failed when ``--fail-if`` names its outcome."""
    found = []
    for c in report.contrasts:
        text = contrast_sentence(report, c)
        name = f"{report.variants[c.variant].label} vs {report.variants[0].label}"
        found.append(Case(name, "failed" if c.outcome in failing else "passed", text, text))
    properties = {"metric": report.metric, "mode": report.mode, "paired": report.paired}
    suite = f"reprokit compare {report.metric}"
    return junit_document(suite, "reprokit.compare", found, properties, report.wall_seconds, "ChangeBeyondSeedNoise")

"""Builds the results of seed studies (:mod:`reprokit.study.result`) from the runs of their variants.

Each metric's statistics, the contrasts between variants (Holm-corrected), prediction agreement, hidden-layer
similarity and the repeated seed's check. A NaN metric or a failed run is never averaged in: the statistics rest on the
finite values, say how many, and list what was left out and why.
"""

from __future__ import annotations

import itertools
import math
import shlex
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from reprokit.core.vocabulary import Outcome
from reprokit.run.environment import environment_differences
from reprokit.study.metrics import Mode, all_names, direction, headline, resolve_mode
from reprokit.study.replay import Replay
from reprokit.study.result import (
    Agreement,
    CompareReport,
    Contrast,
    MetricStats,
    RepeatCheck,
    SeedsReport,
    VariantResult,
    node_of,
)
from reprokit.study.rounds import Sequential
from reprokit.study.running import VariantRuns
from reprokit.study.searches import search_spreads
from reprokit.study.stats import ALPHA, Effect, compare_samples, decide, differs_by_group, holm, summarize
from reprokit.study.store import RunResult
from reprokit.weights.similarity import Similarity, across, class_agreement
from reprokit.weights.structure import under


def seeds_report(
    runs: VariantRuns,
    requested: str | None,
    mode: Mode | None,
    first_seed: int,
    folder: Path,
    wall: float,
    seeds: int,
    automatic: bool = False,
    replay: Replay | None = None,
) -> SeedsReport:
    """The report of a one-variant study (raises UsageError for an unknown ``--metric``).

    ``replay`` is what the study ran with, for the command that replays a seed.
    """
    names = all_names(r.metrics for r in runs.results if r.ok)
    metric = headline(names, requested) if names or requested else ""
    variant = variant_result(runs, metric, mode)
    return SeedsReport(variant, metric, first_seed, folder, wall, seeds, automatic, replay)


def compare_report(
    runs: Sequence[VariantRuns],
    requested: str | None,
    mode: Mode | None,
    paired: bool,
    min_effect: float | None,
    first_seed: int,
    folder: Path,
    wall: float,
    seeds: int,
    sequential: Sequential | None = None,
) -> CompareReport:
    """The report of a study of several variants, each against the first, Holm-corrected.

    With ``sequential`` (``--seeds auto``) each outcome is its sequential
    verdict (:mod:`reprokit.study.sequential`), and ``p_adjusted`` the Holm
    p-value of the look that settled it.
    """
    names = all_names(r.metrics for v in runs for r in v.results if r.ok)
    metric = headline(names, requested)
    chosen = resolve_mode(metric, mode)
    variants = tuple(variant_result(v, metric, chosen) for v in runs)
    effects = [_effect(variants[0], v, metric, paired, chosen) for v in variants[1:]]
    adjusted = holm([None if e is None else e.p_value for e, _ in effects])
    contrasts = []
    for i, ((e, left), p) in enumerate(zip(effects, adjusted)):
        if sequential is not None:
            verdict = sequential.verdicts[i]
            contrasts.append(Contrast(i + 1, e, verdict.p_adjusted, verdict.outcome, left, verdict))
        else:
            outcome = Outcome.TOO_FEW_SEEDS if e is None else decide(e, p, min_effect, len(effects))
            contrasts.append(Contrast(i + 1, e, p, outcome, left))
    return CompareReport(
        variants, tuple(contrasts), metric, chosen, paired, min_effect, first_seed, seeds, folder, wall, sequential
    )


def contrast_samples(
    runs: Sequence[VariantRuns], requested: str | None, mode: Mode | None, paired: bool
) -> tuple[list[tuple[list[float], list[float]]], bool]:
    """Each variant's finite headline values against the first's (paired: on common seeds), and which way is better.

    What a sequential look judges (:func:`reprokit.study.sequential.judge`);
    failed and NaN runs are left out, as in the report.
    """
    names = all_names(r.metrics for v in runs for r in v.results if r.ok)
    metric = headline(names, requested)
    higher = resolve_mode(metric, mode) == "max"

    def values(v: VariantRuns) -> dict[int, float]:
        found = {r.seed: r.metrics.get(metric, math.nan) for r in v.results if r.ok and not r.repeat}
        return {s: x for s, x in found.items() if math.isfinite(x)}

    first = values(runs[0])
    samples = []
    for v in runs[1:]:
        other = values(v)
        if paired:
            common = sorted(set(first) & set(other))
            samples.append(([first[s] for s in common], [other[s] for s in common]))
        else:
            samples.append((list(first.values()), list(other.values())))
    return samples, higher


def variant_result(runs: VariantRuns, metric: str, mode: Mode | None = None) -> VariantResult:
    target = runs.target
    main = [r for r in runs.results if not r.repeat]
    ok = [r for r in main if r.ok]
    names = all_names(r.metrics for r in ok)
    ordered = [metric, *[n for n in names if n != metric]] if metric in names else names
    metrics = tuple(_metric_stats(name, main, mode if name == metric else None) for name in ordered)
    loaded = [(r, runs.predictions(r)) for r in ok]
    return VariantResult(
        label=runs.label or shlex.join([str(target.script), *target.args]),
        script=str(target.script),
        args=tuple(target.args),
        commit=runs.commit,
        seeds=tuple(r.seed for r in main),
        runs=tuple(runs.results),
        metrics=metrics,
        agreement=_agreement(loaded),
        similarity=_similarity(loaded),
        repeat=_repeat_check(runs),
        same_model=len(ok) > 1 and len({tuple(sorted(r.weights.items())) for r in ok}) == 1,
        nodes=tuple(Counter(node_of(r) for r in runs.results if node_of(r)).items()),
        by_node=_by_node(ok, metrics),
        searches=search_spreads(main),
    )


def _by_node(runs: Sequence[RunResult], metrics: Sequence[MetricStats]) -> tuple[tuple[str, float], ...]:
    """The metrics whose values differ by node (several nodes, p < 0.05): nodes that compute differently."""
    nodes = sorted({node_of(r) for r in runs})
    if len(nodes) < 2:
        return ()
    found = []
    for m in metrics:
        groups = [[r.metrics[m.name] for r in runs if node_of(r) == n and m.name in r.metrics] for n in nodes]
        p = differs_by_group(groups)
        if p is not None and p < ALPHA:
            found.append((m.name, p))
    return tuple(found)


def _metric_stats(name: str, runs: Sequence[RunResult], mode: Mode | None) -> MetricStats:
    values, left_out = [], []
    for r in runs:
        if not r.ok:
            left_out.append((r.seed, "the run failed"))
        elif name not in r.metrics:
            left_out.append((r.seed, "not reported"))
        else:
            values.append((r.seed, r.metrics[name]))
            if not math.isfinite(r.metrics[name]):
                left_out.append((r.seed, f"{r.metrics[name]}"))
    finite = [v for _, v in values if math.isfinite(v)]
    return MetricStats(
        name, mode or direction(name), tuple(values), summarize(finite) if finite else None, tuple(left_out)
    )


def _effect(
    first: VariantResult, other: VariantResult, metric: str, paired: bool, mode: Mode
) -> tuple[Effect | None, tuple[tuple[int, str], ...]]:
    a, b = first.metric(metric), other.metric(metric)
    left: list[tuple[int, str]] = []
    if a is None or b is None:
        return None, ()
    xa = {s: v for s, v in a.values if math.isfinite(v)}
    xb = {s: v for s, v in b.values if math.isfinite(v)}
    left += [(s, why) for s, why in (*a.left_out, *b.left_out)]
    if paired:
        seeds = [s for s in xa if s in xb]
        left += [(s, "its pair has no value") for s in sorted(set(xa) ^ set(xb))]
        va, vb = [xa[s] for s in seeds], [xb[s] for s in seeds]
    else:
        va, vb = list(xa.values()), list(xb.values())
    if min(len(va), len(vb)) < 2:
        return None, tuple(left)
    return compare_samples(va, vb, paired=paired, higher_is_better=mode == "max"), tuple(left)


Loaded = Sequence[tuple[RunResult, dict[str, np.ndarray]]]


def _similarity(loaded: Loaded) -> Similarity | None:
    """Mean pairwise linear CKA of the seeds' hidden layers, per model on one probe batch (the first model's)."""
    for model in sorted(
        {key.split("/")[1] for _, arrays in loaded for key in arrays if key.startswith("activations/")}
    ):
        probes = {r.probes.get(model) for r, _ in loaded}
        if len(probes) != 1 or None in probes:
            continue  # the seeds saw other probe batches: their activations are not comparable
        found = across(
            [(under(arrays, f"activations/{model}/"), under(arrays, f"untrained/{model}/")) for _, arrays in loaded]
        )
        if found is not None:
            return found
    return None


def _agreement(loaded: Loaded) -> Agreement | None:
    shares = []
    for (ra, pa), (rb, pb) in itertools.combinations(loaded, 2):
        found = []
        for key in sorted(k for k in set(pa) & set(pb) if k.startswith("predictions/")):
            model = key.split("/")[1]
            if ra.probes.get(model) is None or ra.probes.get(model) != rb.probes.get(model):
                continue
            share = class_agreement(pa[key], pb[key])
            if share is not None:
                found.append(share)
        if found:
            shares.append(min(found))
    if not shares:
        return None
    return Agreement(float(np.mean(shares)), float(min(shares)), len(shares))


def _repeat_check(runs: VariantRuns) -> RepeatCheck | None:
    repeat = next((r for r in runs.results if r.repeat), None)
    if repeat is None:
        return None
    original = next((r for r in runs.results if r.seed == repeat.seed and not r.repeat), None)
    if original is None or not original.ok or not repeat.ok:
        return RepeatCheck(repeat.seed, None, ("one of the two runs failed",))
    elsewhere = environment_differences(original.environment, repeat.environment)
    if elsewhere:  # bits are never compared across machines
        return RepeatCheck(repeat.seed, None, (f"the two runs ran in different environments ({', '.join(elsewhere)})",))
    differences = [f"final weights of {m}" for m in original.weights if original.weights[m] != repeat.weights.get(m)]
    for name, value in original.metrics.items():
        other = repeat.metrics.get(name)
        if other is None or not _same(value, other):
            differences.append(f"{name} {value:.6g} vs {other if other is None else format(other, '.6g')}")
    searches = {(s.library, s.name): s for s in repeat.searches}
    for s in original.searches:
        again = searches.get((s.library, s.name))
        if again is None or again.digest != s.digest:
            differences.append(f"the trials of the {s.label}")
    pa, pb = runs.predictions(original), runs.predictions(repeat)
    if any(key not in pb or not np.array_equal(pa[key], pb[key], equal_nan=True) for key in pa):
        differences.append("predictions on the probe batch")
    return RepeatCheck(repeat.seed, not differences, tuple(differences))


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))

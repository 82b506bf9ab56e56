"""The plots of a seed study's HTML report (``seeds``, ``compare``), as data built from its report.

* every seed's value of the headline metric per variant, with the mean and
  its confidence interval;
* every seed's learning curve per variant, with their mean and spread.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reprokit.report.charts import Figure, LineChart, Series, Strip, StripChart
from reprokit.study.result import CompareReport, SeedsReport, VariantResult
from reprokit.study.tuneresult import TuneReport

SEED_LINE = 7
"""The look of one seed's thin curve when a chart shows a single variant (grey)."""


def seeds_figures(report: SeedsReport) -> tuple[Figure, ...]:
    """``reprokit seeds``: the headline metric of every seed, and the learning curves."""
    return _figures([report.variant], report.metric)


def compare_figures(report: CompareReport) -> tuple[Figure, ...]:
    """``reprokit compare``: the headline metric of every seed per variant, and each variant's learning curves."""
    return _figures(report.variants, report.metric)


def tune_figures(report: TuneReport) -> tuple[Figure, ...]:
    """``reprokit tune``: each configuration's rank under every seed, and each one's seeds with their interval."""
    found = []
    ranks = ranks_figure(report)
    if ranks is not None:
        found.append(ranks)
    values = values_figure(report.variants, report.metric)
    if values is not None:
        found.append(values)
    return tuple(found)


def ranks_figure(report: TuneReport) -> Figure | None:
    """One line per configuration: its rank (1: the best) under each seed alone."""
    r = report.ranking
    if r is None:
        return None
    sign = 1.0 if report.mode == "max" else -1.0
    columns = []
    for seed in r.seeds:
        scores = []
        for v in report.variants:
            stats = v.metric(report.metric)
            value = dict(stats.values).get(seed, math.nan) if stats is not None else math.nan
            scores.append(sign * value)
        order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
        columns.append({config: place for place, config in enumerate(order, 1)})
    x = tuple(float(s) for s in r.seeds)
    series = tuple(
        Series(report.label(i), x, tuple(float(c[i]) for c in columns), i, emphasis=i == r.best)
        for i in range(len(report.variants))
    )
    return Figure(
        "tune-ranks",
        "Rank of each configuration under every seed",
        f"Each line is one configuration's rank by {report.metric} (1: the best) when only that seed is run; "
        f"the thick line is the overall best. Lines that cross show a choice that changes with the seed.",
        LineChart("seed", "rank (1 = best)", series, whole_y=True),
        look="Look at the thick line: if it leaves rank 1 under some seed, the winner depends on the seed.",
    )


def _figures(variants: Sequence[VariantResult], metric: str) -> tuple[Figure, ...]:
    found = []
    values = values_figure(variants, metric)
    if values is not None:
        found.append(values)
    curves = curves_figure(variants, metric)
    if curves is not None:
        found.append(curves)
    return tuple(found)


def values_figure(variants: Sequence[VariantResult], metric: str) -> Figure | None:
    """One strip per variant: each seed's final value, the mean and its 95 % interval."""
    strips, methods = [], set()
    for v in variants:
        stats = v.metric(metric)
        if stats is None:
            continue
        finite = tuple(value for _, value in stats.values if math.isfinite(value))
        s = stats.summary
        strips.append(Strip(v.label, finite, s.mean if s else None, s.ci_low if s else None, s.ci_high if s else None))
        if s is not None:
            methods.add(s.ci_method)
    if not strips or not any(s.values for s in strips):
        return None
    how = ", ".join(sorted(methods)) or "no interval"
    seeds = max(len(s.values) for s in strips)
    return Figure(
        "study-values",
        f"{metric} of every seed",
        f"Each dot is one seed's final {metric} ({seeds} seeds{' per variant' if len(strips) > 1 else ''}); "
        f"the bar is the mean with its 95 % confidence interval ({how}).",
        StripChart(metric, tuple(strips), f"mean and 95 % CI ({how})"),
        look="Look at the spread of the dots: that is what a new seed alone can change"
        + (", and whether the variants' intervals overlap." if len(strips) > 1 else "."),
    )


def curve_name(variants: Sequence[VariantResult], metric: str) -> str | None:
    """The learning curve to draw: the headline metric's if runs have one, else the validation or training loss."""
    names = {n for v in variants for r in v.runs if r.ok for n in r.curves}
    base = metric.removeprefix("evaluate_")
    for name in (metric, f"val_{base}", base, "val_loss", "loss"):
        if name in names:
            return name
    return min(names) if names else None


def curves_figure(variants: Sequence[VariantResult], metric: str) -> Figure | None:
    """Every seed's learning curve (thin), each variant's mean (thick) and its spread (lowest to highest seed)."""
    name = curve_name(variants, metric)
    if name is None:
        return None
    series = []
    for i, v in enumerate(variants):
        curves = [r.curves[name] for r in v.runs if r.ok and not r.repeat and name in r.curves]
        if not curves:
            continue
        style = SEED_LINE if len(variants) == 1 else i
        for curve in curves:
            series.append(Series("", _epochs(len(curve)), tuple(curve), style))
        mean, low, high = _spread(curves)
        label = "mean of the seeds" if len(variants) == 1 else f"{v.label}: mean of {len(curves)} seeds"
        series.append(Series(label, _epochs(len(mean)), mean, i, emphasis=True, low=low, high=high))
    if not series:
        return None
    return Figure(
        "study-curves",
        f"Learning curves: {name} per epoch",
        f"Thin lines: the {name} of each seed after every epoch; thick: their mean; shaded: from the lowest to "
        "the highest seed.",
        LineChart("epoch", name, tuple(series)),
        look="Look at the width of the shaded band at the last epoch: the spread that seeds alone give.",
    )


def _epochs(n: int) -> tuple[float, ...]:
    return tuple(float(e) for e in range(1, n + 1))


def _spread(curves: Sequence[Sequence[float]]) -> tuple[tuple[float, ...], ...]:
    """Mean, lowest and highest over the seeds at each epoch (only the epochs every seed reached; NaN skipped)."""
    length = min(len(c) for c in curves)
    mean, low, high = [], [], []
    for epoch in range(length):
        values = [c[epoch] for c in curves if math.isfinite(c[epoch])]
        mean.append(sum(values) / len(values) if values else math.nan)
        low.append(min(values, default=math.nan))
        high.append(max(values, default=math.nan))
    return tuple(mean), tuple(low), tuple(high)

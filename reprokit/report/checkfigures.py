"""The plots of a check's HTML report, as data (:mod:`reprokit.report.charts`) built from its :class:`Report`.

* the loss of every run over its steps, overlaid, each differing pair's
  first divergence marked (and every other ``fit`` metric over epochs);
* the divergence map: the step at which each variable first differs, per
  pair, and how far apart each variable is over training, per differing pair.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from reprokit.checking.comparison import Comparison, Track, short_name
from reprokit.checking.result import Report
from reprokit.report.charts import DotChart, Dots, Figure, LineChart, Mark, Series, thinned

MAX_TRACKS = 8
"""Variables drawn at most in a distance-over-training plot (the farthest apart at the end)."""

MAX_METRICS = 3
"""Epoch metrics besides the loss that get a plot."""

LOG_STEPS = 32
"""Steps beyond which a step axis is logarithmic (symmetric: step 0 stays on it)."""

PAIR_STYLE = {"controlled": 3, "ops": 5, "seed": 6, "files": 4}
"""The look of each pair's marks (runs take the styles 0, 1, 2, … in their order)."""


def check_figures(report: Report) -> tuple[Figure, ...]:
    """Every plot of a check's report, in the order the page shows them."""
    found: list[Figure] = []
    models = sorted({m for r in report.runs for m in (*r.step_losses, *r.history)})
    for model in models:
        loss = loss_figure(report, model, len(models) > 1)
        if loss is not None:
            found.append(loss)
        found.extend(metric_figures(report, model, len(models) > 1))
    differing = [c for c in report.comparisons if not c.identical and c.tracks]
    if differing:
        found.append(first_difference_figure(differing))
        found.extend(distance_figure(c) for c in differing)
    return tuple(found)


def divergence_marks(comparisons: Sequence[Comparison], model: str | None = None) -> tuple[Mark, ...]:
    """A mark at each differing pair's first divergence (of ``model``, if given)."""
    marks = []
    for c in comparisons:
        d = c.divergence
        if c.identical or d is None or (model is not None and d.model != model):
            continue
        marks.append(Mark(d.step, f"{c.name} pair first differs ({d.steps})", PAIR_STYLE.get(c.name, 4)))
    return tuple(marks)


def loss_figure(report: Report, model: str, named: bool) -> Figure | None:
    """The loss each run was trained on at every step (else per epoch), overlaid, divergences marked."""
    series = []
    per_step = any(model in r.step_losses for r in report.runs)
    for i, run in enumerate(report.runs):
        if per_step:
            points = run.step_losses.get(model, ())
            x, y = thinned([float(s) for s, _ in points], [loss for _, loss in points])
        else:
            values = run.history.get(model, {}).get("loss", ())
            x, y = tuple(float(e) for e in range(1, len(values) + 1)), tuple(values)
        if x:
            series.append(Series(_run_label(run.name, run.seed, run.op_determinism), x, y, i))
    if not series:
        return None
    marks = divergence_marks(report.comparisons, model) if per_step else ()
    identical = [c.name for c in report.comparisons if c.identical]
    same = (
        f" The {' and '.join(identical)} pair's runs are identical: their lines lie on each other." if identical else ""
    )
    return Figure(
        f"check-loss-{_slug(model)}",
        f"Training loss of every run{f' ({model})' if named else ''}",
        ("The loss each optimizer step was taken on" if per_step else "The loss of each epoch")
        + ", one line per run; dashed verticals mark where each differing pair's weights first differ."
        + same,
        LineChart(
            "optimizer step" if per_step else "epoch", "loss", tuple(series), marks, log_y=_spans_decades(series)
        ),
        look=_loss_look(marks),
    )


def _loss_look(marks: Sequence[Mark]) -> str:
    """What to look at in a loss plot: where the lines part, at each pair's first difference."""
    if not marks:
        return "Look at whether any line leaves the others: where one does, its run learned something else."
    where = "; ".join(m.label for m in marks)
    return f"Look at where the lines part, at the dashed lines: {where}."


def metric_figures(report: Report, model: str, named: bool) -> list[Figure]:
    """Every other ``fit`` metric over epochs (accuracy, validation loss…), one line per run."""
    names: list[str] = []
    for run in report.runs:
        names += [n for n in run.history.get(model, {}) if n != "loss" and n not in names]
    found = []
    for name in names[:MAX_METRICS]:
        series = []
        for i, run in enumerate(report.runs):
            values = run.history.get(model, {}).get(name, ())
            if values:
                epochs = tuple(float(e) for e in range(1, len(values) + 1))
                series.append(Series(_run_label(run.name, run.seed, run.op_determinism), epochs, tuple(values), i))
        found.append(
            Figure(
                f"check-metric-{_slug(model)}-{_slug(name)}",
                f"{name} per epoch{f' ({model})' if named else ''}",
                f"The {name} the script's fit history reports after each epoch, one line per run.",
                LineChart("epoch", name, tuple(series)),
                look=f"Look at how far apart the runs' last {name} values are: what the differences cost in {name}.",
            )
        )
    return found


def first_difference_figure(comparisons: Sequence[Comparison]) -> Figure:
    """The divergence map: for each variable, the step at which each differing pair first differs there."""
    keys: list[tuple[str, str]] = []
    for c in comparisons:
        keys += [(t.model, t.variable) for t in c.tracks if (t.model, t.variable) not in keys]
    named = len({m for m, _ in keys}) > 1
    categories = tuple(_variable_label(m, v, named) for m, v in keys)
    dots = []
    for c in comparisons:
        first = {(t.model, t.variable): t.first_step for t in c.tracks}
        values = tuple(None if (step := first.get(k)) is None else float(step) for k in keys)
        dots.append(Dots(f"{c.name} pair", values, PAIR_STYLE.get(c.name, 4)))
    return Figure(
        "check-first-difference",
        "Where each variable first differs",
        "For each variable, the optimizer step after which the two runs of a pair first hold different bits "
        "(0: the initial weights already differ). No marker: identical at every step observed.",
        DotChart("first differing step", categories, tuple(dots), log_x=max(_steps(dots), default=0) > LOG_STEPS),
        look="Look at the leftmost marker of each pair: the variable and step at which its runs first differ.",
    )


def distance_figure(comparison: Comparison) -> Figure:
    """How far apart a differing pair's variables are over training (the farthest :data:`MAX_TRACKS`)."""
    chosen = sorted(comparison.tracks, key=lambda t: -_final(t))[:MAX_TRACKS]
    chosen = [t for t in comparison.tracks if t in chosen]  # back in layer order
    named = len({t.model for t in comparison.tracks}) > 1
    series = tuple(
        Series(
            _variable_label(t.model, t.variable, named),
            tuple(float(s) for s in t.steps),
            tuple(v if v > 0 and math.isfinite(v) else math.nan for v in t.relative_l2),
            i,
        )
        for i, t in enumerate(chosen)
    )
    left = len(comparison.tracks) - len(chosen)
    sampled = any(t.sampled for t in chosen)
    return Figure(
        f"check-distance-{comparison.name}",
        f"How far apart the weights are over training ({comparison.name} pair)",
        f"Relative L2 distance ‖A − B‖ / ‖A‖ of each variable of runs {comparison.runs[0]} and "
        f"{comparison.runs[1]}, at steps 0, 1, 2, 4, 8, … and the last; a line starts where the "
        "variable first differs."
        + (
            f" The {len(chosen)} farthest apart of {len(comparison.tracks)} variables ({left} not drawn)."
            if left
            else ""
        )
        + (" Large variables are measured on a fixed sample of their values before the last step." if sampled else ""),
        LineChart(
            "optimizer step",
            "relative L2 distance",
            series,
            divergence_marks([comparison]),
            log_x=max((s for t in chosen for s in t.steps), default=0) > LOG_STEPS,
            log_y=True,
        ),
        look="Look at whether the lines keep rising: a difference that grows over training is amplified by it.",
    )


def _steps(dots: Sequence[Dots]) -> list[float]:
    return [v for d in dots for v in d.values if v is not None]


def _final(track: Track) -> float:
    finite = [v for v in track.relative_l2 if math.isfinite(v)]
    return finite[-1] if finite else math.inf


def _run_label(name: str, seed: int, op_determinism: bool) -> str:
    return f"{name} (seed {seed}, op determinism {'on' if op_determinism else 'off'})"


def _variable_label(model: str, variable: str, named: bool) -> str:
    short = short_name(model, variable)
    return f"{model}: {short}" if named else short


def _spans_decades(series: Sequence[Series]) -> bool:
    values = [v for s in series for v in s.y if math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) > 30


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-") or "model"

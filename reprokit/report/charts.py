"""The plots of a report as plain data: what to draw, not how.

Every figure of an HTML report is built from a report object by a pure
function (:mod:`reprokit.report.checkfigures`, :mod:`reprokit.report.studyfigures`,
:func:`align_figures`) into one of these frozen charts, then drawn by
:mod:`reprokit.report.svg` with matplotlib. Tests read the data; only the
drawing needs matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reprokit.aligning.result import AlignReport
from reprokit.core.series import evenly

MAX_POINTS = 800
"""Points a line keeps at most (longer lines are thinned evenly, keeping both ends)."""


@dataclass(frozen=True)
class Series:
    """One line (or, with ``low``/``high``, a band around it).

    Attributes:
        label: the legend entry ("" for none).
        x: the horizontal positions.
        y: the values (NaN: a gap).
        style: the index of its colour, line style and marker (the same index, the same look).
        emphasis: a summary line (a mean) drawn thicker over thin ones.
        low: the band's lower edge at each ``x`` (empty: no band).
        high: its upper edge.
    """

    label: str
    x: tuple[float, ...]
    y: tuple[float, ...]
    style: int = 0
    emphasis: bool = False
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()


@dataclass(frozen=True)
class Mark:
    """A vertical line across a chart at ``x`` (a first divergence), with its legend entry."""

    x: float
    label: str
    style: int = 0


@dataclass(frozen=True)
class LineChart:
    """Lines over a shared horizontal axis (steps, epochs)."""

    xlabel: str
    ylabel: str
    series: tuple[Series, ...]
    marks: tuple[Mark, ...] = ()
    log_x: bool = False  # symmetric log: step 0 stays on the axis
    log_y: bool = False
    whole_x: bool = True  # the horizontal axis counts (steps, epochs): whole-number ticks
    whole_y: bool = False  # the vertical axis counts (ranks): whole-number ticks


@dataclass(frozen=True)
class Dots:
    """One marker per category: ``values[i]`` for ``categories[i]`` (None: no marker)."""

    label: str
    values: tuple[float | None, ...]
    style: int = 0


@dataclass(frozen=True)
class DotChart:
    """Categories down the vertical axis, a value along the horizontal one, one marker set per series."""

    xlabel: str
    categories: tuple[str, ...]
    dots: tuple[Dots, ...]
    log_x: bool = False


@dataclass(frozen=True)
class Strip:
    """One group's values (every seed), with its mean and confidence interval (None: not known)."""

    label: str
    values: tuple[float, ...]
    mean: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class StripChart:
    """Every value of each group side by side, the mean and its interval over them."""

    ylabel: str
    strips: tuple[Strip, ...]
    interval: str  # what the error bars are, for the legend: "95 % CI of the mean (BCa bootstrap)"


@dataclass(frozen=True)
class Bars:
    """One bar per category (None: no bar, e.g. a layer that was not aligned)."""

    label: str
    values: tuple[float | None, ...]
    style: int = 0


@dataclass(frozen=True)
class BarChart:
    """Grouped bars: per category, one bar of each :class:`Bars`."""

    ylabel: str
    categories: tuple[str, ...]
    bars: tuple[Bars, ...]
    ylim: tuple[float, float] | None = None


Chart = LineChart | DotChart | StripChart | BarChart


@dataclass(frozen=True)
class Figure:
    """One plot of a report: an id for the page, a title, what it shows, and the chart.

    Attributes:
        key: the figure's id on the page.
        title: its heading.
        caption: what it shows, and how it was measured.
        chart: what to draw.
        look: one line saying what to look at in it, shown first under the plot.
    """

    key: str
    title: str
    caption: str
    chart: Chart
    look: str = ""


def thinned(x: Sequence[float], y: Sequence[float], limit: int = MAX_POINTS) -> tuple[tuple[float, ...], ...]:
    """``x`` and ``y`` with at most ``limit`` evenly spaced points, first and last kept."""
    return evenly(x, limit), evenly(y, limit)


def align_figures(report: AlignReport) -> tuple[Figure, ...]:
    """``reprokit align``: each layer's distance before and after matching units, and its CKA."""
    layers = report.alignment.layers
    if not layers:
        return ()
    names = tuple(f"{layer.layer} ({layer.kind})" for layer in layers)
    distance = Figure(
        "align-distance",
        "Distance per layer, before and after matching units",
        "Relative L2 distance ‖A − B‖ / ‖A‖ of each layer's weights as trained, and after B's hidden units "
        "are put in A's order. No bar after: the layer's units keep their order (an output layer, or "
        "one reprokit cannot align).",
        BarChart(
            "relative L2 distance",
            names,
            (
                Bars("before matching", tuple(layer.before for layer in layers), 0),
                Bars(
                    "after matching units",
                    tuple(layer.after if layer.aligned else None for layer in layers),
                    1,
                ),
            ),
        ),
        look="Look at how much shorter each layer's second bar is: that much of the distance is only the units' order.",
    )
    cka = Figure(
        "align-cka",
        "Representation similarity per layer (linear CKA)",
        "Linear CKA of the two models' activations on the data (1: the same representation up to "
        "rotation and scale), against two untrained networks of the same shape.",
        BarChart(
            "linear CKA",
            names,
            (
                Bars("trained A vs B", tuple(layer.cka for layer in layers), 2),
                Bars("untrained pair", tuple(layer.untrained_cka for layer in layers), 7),
            ),
            (0.0, 1.0),
        ),
        look="Look at the gap between the two bars of a layer: the higher the trained pair above the untrained one, "
        "the more alike the two representations.",
    )
    found = [distance] if all(layer.cka is None for layer in layers) else [distance, cka]
    if report.barrier is not None:
        losses = report.barrier.losses
        t = tuple(i / (len(losses) - 1) for i in range(len(losses)))
        ends = tuple(losses[0] + (losses[-1] - losses[0]) * x for x in t)
        found.append(
            Figure(
                "align-barrier",
                "Loss along the straight path from A to matched B",
                f"The loss of the weights (1 − t)·A + t·B′ on the data, B′ being B with matched units. "
                f"The barrier is the largest excess over the straight line between the ends: "
                f"{report.barrier.height:.4g}.",
                LineChart(
                    "t (0: model A, 1: model B with matched units)",
                    "loss",
                    (
                        Series("loss on the path", t, tuple(losses), 0),
                        Series("straight line between the ends", t, ends, 7),
                    ),
                    whole_x=False,
                ),
                look="Look at the hump between t = 0 and t = 1: its height above the straight line is the barrier.",
            )
        )
    return tuple(found)

"""Draws the charts of :mod:`reprokit.report.charts` as inline SVG with matplotlib.

No window is ever opened: figures are made with ``matplotlib.figure.Figure``
and the SVG canvas (no pyplot, no global state). The SVG is reproducible:
no date, fixed element ids (prefixed by the figure's key so several plots
share one page), and text drawn as paths, so the page needs no font.
Colours are the Okabe–Ito palette, told apart by colour-blind readers, and
every style also has its own line dash, marker and hatch, so plots read in
black and white too.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import Any

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from reprokit.report.charts import BarChart, Chart, DotChart, Figure, LineChart, StripChart

COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999999")
DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (3, 1)), (0, (1, 1)), "-")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "//", "..", "xx", "\\\\", "++", "oo", "--")
WIDTH = 7.5  # inches
RC: dict[str, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "reprokit",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}


def svg(figure: Figure) -> str:
    """``figure`` as an ``<svg>`` element to put in an HTML page (no XML prolog, scales to its container)."""
    with rc_context(RC):  # type: ignore[arg-type]  # the keys are checked as literals
        fig = drawn(figure.chart)
        out = io.StringIO()
        fig.savefig(out, format="svg", bbox_inches="tight", metadata={"Date": None})
    return _inline(out.getvalue(), figure)


def drawn(chart: Chart) -> MplFigure:
    """``chart`` drawn on a matplotlib figure of one axes (with an SVG canvas), to save or to inspect."""
    fig = MplFigure(figsize=(WIDTH, _height(chart)))
    FigureCanvasSVG(fig)
    _draw(fig.add_subplot(), chart)
    return fig


def _height(chart: Chart) -> float:
    if isinstance(chart, DotChart):
        return 1.2 + 0.3 * len(chart.categories)
    return 3.4


def _draw(ax: Axes, chart: Chart) -> None:
    if isinstance(chart, LineChart):
        _lines(ax, chart)
    elif isinstance(chart, DotChart):
        _dots(ax, chart)
    elif isinstance(chart, StripChart):
        _strips(ax, chart)
    else:
        _bars(ax, chart)
    handles, _ = ax.get_legend_handles_labels()
    if handles:  # beside the plot, never over the data
        ax.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _lines(ax: Axes, chart: LineChart) -> None:
    for s in chart.series:
        color = COLORS[s.style % len(COLORS)]
        if s.low:
            ax.fill_between(s.x, s.low, s.high, color=color, alpha=0.18, linewidth=0)
        thin = not s.label and not s.emphasis
        ax.plot(
            s.x,
            s.y,
            color=color,
            linestyle="-" if thin else DASHES[s.style % len(DASHES)],
            linewidth=2.6 if s.emphasis else 0.8 if thin or len(s.x) > 200 else 1.6,
            alpha=0.55 if thin else 1.0,
            marker=MARKERS[s.style % len(MARKERS)] if len(s.x) <= 30 and not thin else None,
            markersize=4,
            label=s.label or None,
        )
    for mark in chart.marks:
        ax.axvline(
            mark.x, color=COLORS[mark.style % len(COLORS)], linestyle=(0, (4, 3)), linewidth=1.2, label=mark.label
        )
    if chart.whole_x:
        _step_axis(ax, chart.log_x)
    if chart.log_y:
        ax.set_yscale("log")
    elif chart.whole_y:
        _whole_numbers(ax, "y")
    ax.set_xlabel(chart.xlabel)
    ax.set_ylabel(chart.ylabel)


def _dots(ax: Axes, chart: DotChart) -> None:
    n = len(chart.categories)
    rows = list(range(n))[::-1]  # the first category on top
    for j, d in enumerate(chart.dots):
        offset = (j - (len(chart.dots) - 1) / 2) * 0.18
        points = [(v, rows[i] + offset) for i, v in enumerate(d.values) if v is not None]
        ax.scatter(
            [x for x, _ in points],
            [y for _, y in points],
            color=COLORS[d.style % len(COLORS)],
            marker=MARKERS[d.style % len(MARKERS)],
            s=36,
            label=d.label,
            zorder=3,
        )
    ax.set_yticks(rows, chart.categories)
    ax.set_ylim(-0.7, n - 0.3)
    _step_axis(ax, chart.log_x)
    ax.set_xlabel(chart.xlabel)


def _step_axis(ax: Axes, log: bool) -> None:
    """Steps: whole numbers, from 0; symmetric log (0 stays on the axis) for long runs."""
    if log:
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlim(left=-0.3)
    else:
        _whole_numbers(ax, "x")


def _whole_numbers(ax: Axes, which: str) -> None:
    """Whole-number ticks on axis ``which`` ("x" or "y"), over a span that holds at least two of them.

    MaxNLocator(integer=True) gives fractional ticks when fewer than two whole
    numbers lie in view, as around points that all lie at step 1 (0.945 … 1.055):
    such a range is widened to one whole number on either side, never below
    -0.5 when the data start at 0 or above (a step axis starts at 0).
    """
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(MaxNLocator(integer=True))
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    data = ax.dataLim.intervalx if which == "x" else ax.dataLim.intervaly
    first, last = (float(v) for v in data)
    if not (math.isfinite(first) and math.isfinite(last)) or math.floor(high) - math.ceil(low) >= 2:
        return
    left = math.floor(first) - 1
    span = (max(left, -0.5) if first >= 0 else left, math.ceil(last) + 1)
    if which == "x":
        ax.set_xlim(*span)
    else:
        ax.set_ylim(*span)


def _strips(ax: Axes, chart: StripChart) -> None:
    for i, strip in enumerate(chart.strips):
        order = sorted(range(len(strip.values)), key=lambda k: strip.values[k])
        spread = _offsets(len(order))
        xs = [0.0] * len(order)
        for rank, k in enumerate(order):
            xs[k] = i + spread[rank]
        ax.scatter(
            xs,
            strip.values,
            color=COLORS[i % len(COLORS)],
            marker=MARKERS[i % len(MARKERS)],
            s=28,
            alpha=0.8,
            label="each seed" if i == 0 else None,
            zorder=3,
        )
        if strip.mean is not None:
            low = strip.mean - strip.ci_low if strip.ci_low is not None else 0.0
            high = strip.ci_high - strip.mean if strip.ci_high is not None else 0.0
            ax.errorbar(
                [i + 0.32],
                [strip.mean],
                yerr=[[max(low, 0.0)], [max(high, 0.0)]],
                fmt="D",
                color="#000000",
                capsize=5,
                markersize=5,
                label=chart.interval if i == 0 else None,
                zorder=4,
            )
    ax.set_xticks(range(len(chart.strips)), [_short(s.label) for s in chart.strips])
    ax.set_xlim(-0.6, len(chart.strips) - 0.2)
    ax.set_ylabel(chart.ylabel)


def _offsets(n: int) -> list[float]:
    if n <= 1:
        return [0.0]
    return [-0.18 + 0.36 * k / (n - 1) for k in range(n)]


def _bars(ax: Axes, chart: BarChart) -> None:
    n, groups = len(chart.categories), len(chart.bars)
    width = 0.8 / max(groups, 1)
    for j, bars in enumerate(chart.bars):
        xs = [i + (j - (groups - 1) / 2) * width for i in range(n)]
        heights = [math.nan if v is None else v for v in bars.values]
        ax.bar(
            xs,
            heights,
            width * 0.95,
            color=COLORS[bars.style % len(COLORS)],
            hatch=HATCHES[j % len(HATCHES)],
            edgecolor="#ffffff",
            label=bars.label,
            zorder=3,
        )
    ax.set_xticks(
        range(n), [_short(c) for c in chart.categories], rotation=20 if n > 4 else 0, ha="right" if n > 4 else "center"
    )
    if chart.ylim is not None:
        ax.set_ylim(*chart.ylim)
    ax.set_ylabel(chart.ylabel)


def _short(label: str, limit: int = 40) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


_ID = re.compile(r'(id="|#)([A-Za-z_][\w.:-]*)')


def _inline(text: str, figure: Figure) -> str:
    """The ``<svg>`` element alone: ids prefixed by the figure's key, a title, sized to fit its container."""
    text = text[text.index("<svg") :]
    ids = set(re.findall(r'id="([^"]+)"', text))
    prefix = f"{figure.key}-"
    text = _ID.sub(lambda m: m.group(1) + prefix + m.group(2) if m.group(2) in ids else m.group(0), text)
    width = re.search(r'<svg[^>]*?\swidth="([\d.]+)pt"', text)
    style = f'style="width:100%;max-width:{width.group(1)}pt;height:auto"' if width else 'style="width:100%"'
    text = re.sub(r'(<svg[^>]*?)\swidth="[^"]*"\s+height="[^"]*"', r"\1", text, count=1)
    title = _escape(figure.title)
    return text.replace("<svg ", f'<svg role="img" aria-label="{title}" {style} ', 1).replace(
        ">", f"><title>{title}</title>", 1
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


__all__: Sequence[str] = ("svg",)

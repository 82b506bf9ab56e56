"""The terminal form of an alignment: the three parts of a weight difference, and the layers (rich)."""

from __future__ import annotations

from collections.abc import Iterator

from rich import box
from rich.console import RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from reprokit.aligning.result import AlignReport
from reprokit.weights.matching import Alignment, LayerAlignment
from reprokit.weights.similarity import TWIN
from reprokit.weights.words import features, function, order_and_solution, twins


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def three_parts(a: Alignment, cause: str, title: str) -> Table:
    """Why the weights differ, in three parts and their sizes: ``cause``, the order of the units, other solutions.

    Args:
        a: the alignment.
        cause: what made the two networks differ at all (the seed, two trainings).
        title: the table's title.
    """
    table = Table(title=title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, expand=True)
    table.add_column("part", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("what it means")
    table.add_row(cause, f"{a.before:.2f}", "relative L2 distance of the weights, ‖A − B‖ / ‖A‖")
    explained = a.explained
    if a.aligned_layers and explained is not None:
        units = sum(layer.units or 0 for layer in a.layers if layer.aligned)
        table.add_row(
            "order of hidden units",
            f"{explained:.0%}",
            f"of the squared distance is the order of {units} hidden units in {a.aligned_layers} layer(s): "
            "reordered, they compute the same function",
        )
    else:
        table.add_row("order of hidden units", "—", "no hidden layer could be aligned (see the layers)")
    rest = [f"the distance left once units are matched ({_num(a.after)})"]
    if a.cka is not None:
        reference = f", untrained pair {a.untrained_cka:.2f}" if a.untrained_cka is not None else ""
        rest.append(f"CKA {a.cka:.2f}{reference}: {features(a.cka, a.untrained_cka, twins(a))}")
    if a.agreement is not None:
        rest.append(f"predictions agree on {a.agreement:.0%}")
    table.add_row("other solutions", _num(a.after if a.aligned_layers else a.before), "; ".join(rest))
    return table


def layers_table(a: Alignment) -> Table:
    """Every layer: distances before and after matching, CKA, near-twin units, or why it is not aligned."""
    table = Table(title="Layers", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD, expand=True)
    table.add_column("layer")
    table.add_column("units", justify="right")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    table.add_column("CKA", justify="right")
    table.add_column(f"twins ≥{TWIN}", justify="right")
    table.add_column("note")
    for layer in a.layers:
        table.add_row(
            f"{layer.layer} ({layer.kind})",
            "—" if layer.units is None else str(layer.units),
            _num(layer.before),
            _num(layer.after),
            _cka(layer),
            "—" if layer.matched is None else f"{layer.matched.twins}/{layer.matched.units}",
            Text(layer.note or ("aligned" if layer.aligned else ""), style="dim" if layer.note else ""),
        )
    return table


def _cka(layer: LayerAlignment) -> str:
    if layer.cka is None:
        return "—"
    return f"{layer.cka:.2f}" + (f" ({layer.untrained_cka:.2f})" if layer.untrained_cka is not None else "")


def render_align(report: AlignReport) -> Iterator[RenderableType]:
    """The ``reprokit align`` report, top to bottom."""
    a = report.alignment
    body = Text(order_and_solution(a))
    more = function(a)
    if more:
        body.append("\n\n" + more)
    if report.barrier is not None:
        b = report.barrier
        connected = (
            "linearly connected (no barrier)" if b.height <= 0.01 * max(b.losses[0], b.losses[-1], 1e-12) else ""
        )
        body.append(
            f"\n\nLoss along the straight path from A to matched B: {b.losses[0]:.4g} → max "
            f"{max(b.losses):.4g} → {b.losses[-1]:.4g}; barrier {b.height:.4g}"
            + (f": {connected}." if connected else " above the line between the ends.")
        )
    data = report.data or "random inputs"
    subtitle = f"{report.rows} examples of {data} · verified: matched B = B to {report.verification:.1g}"
    yield Panel(
        body, title=Text(f"reprokit align {report.model_a} {report.model_b}"), subtitle=Text(subtitle), expand=True
    )
    yield three_parts(a, "the two trainings", "Why are the weights different?")
    yield layers_table(a)
    for warning in report.warnings:
        yield Text(f"warning: {warning}", style="yellow")

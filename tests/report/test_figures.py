"""The plots of the HTML reports, as data, built from recorded runs; and the page made of them (no browser)."""

from __future__ import annotations

import dataclasses
import html
import math
import re
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from helpers import recorded_arrays, recorded_report, recorded_trace
from reprokit.aligning.result import AlignReport, Barrier
from reprokit.checking.tracks import relative_l2
from reprokit.core.snapshots import SAMPLE, Snapshots, due, kept, positions
from reprokit.report.charts import BarChart, DotChart, Dots, LineChart, Series, StripChart, align_figures, thinned
from reprokit.report.checkfigures import check_figures
from reprokit.report.html import block
from reprokit.report.studyfigures import compare_figures, seeds_figures
from reprokit.report.svg import drawn, svg
from reprokit.study.result import MetricStats, SeedsReport, VariantResult
from reprokit.study.stats import summarize
from reprokit.study.store import RunResult
from reprokit.weights.matching import Alignment, LayerAlignment


def figures_of(report):
    return {f.key: f for f in check_figures(report)}


def test_the_loss_plot_has_one_line_per_run_with_the_losses_each_step_was_trained_on():
    report = recorded_report("ops")
    loss = figures_of(report)["check-loss-sequential"].chart
    assert isinstance(loss, LineChart) and loss.xlabel == "optimizer step"
    assert [s.label.split(" ")[0] for s in loss.series] == [r.name for r in report.runs]
    seed_run = recorded_trace("seed-1")
    recorded = [(p.step, p.loss) for p in seed_run.points if p.step > 0]
    assert list(zip(loss.series[-1].x, loss.series[-1].y)) == recorded


def test_each_differing_pair_is_marked_at_its_recorded_first_divergence_and_an_identical_one_is_not():
    report = recorded_report("ops")
    marks = figures_of(report)["check-loss-sequential"].chart.marks
    differing = [c for c in report.comparisons if not c.identical]
    assert [m.x for m in marks] == [c.divergence.step for c in differing]
    assert [m.label.split(" ")[0] for m in marks] == ["ops", "seed"]  # not the identical controlled pair


def test_the_divergence_map_places_each_variable_at_the_step_its_fingerprints_first_differ():
    report = recorded_report("seed")
    chart = figures_of(report)["check-first-difference"].chart
    assert isinstance(chart, DotChart) and [d.label for d in chart.dots] == ["seed pair"]
    a, b = recorded_trace("controlled-1"), recorded_trace("seed-1")
    expected = []
    for name in ("sequential/dense/kernel", "sequential/dense/bias", "sequential/dense_1/kernel"):
        steps = [p.step for p, q in zip(a.points, b.points) if p.weights[name] != q.weights[name]]
        expected.append(float(steps[0]))
    assert list(chart.dots[0].values[:3]) == expected == [0.0, 1.0, 0.0]  # kernels from init, biases start at 0
    assert chart.categories[:2] == ("dense/kernel", "dense/bias")


def test_the_distance_over_training_is_the_relative_l2_of_the_snapshots_then_of_the_final_weights():
    report = recorded_report("seed")
    chart = figures_of(report)["check-distance-seed"].chart
    kernel = next(s for s in chart.series if s.label == "dense/kernel")
    assert kernel.x == (0.0, 1.0, 2.0, 4.0, 8.0, 15.0)  # powers of two, then the last step
    a, b = recorded_arrays("controlled-1"), recorded_arrays("seed-1")
    at_4 = relative_l2(
        a["snapshots/sequential/4/sequential/dense/kernel"], b["snapshots/sequential/4/sequential/dense/kernel"]
    )
    final = relative_l2(
        a["weights/sequential/sequential/dense/kernel"], b["weights/sequential/sequential/dense/kernel"]
    )
    assert kernel.y[3] == at_4 and kernel.y[-1] == final
    bias = next(s for s in chart.series if s.label == "dense/bias")
    assert math.isnan(bias.y[0]) and bias.y[1] > 0  # identical at step 0: no point on a log axis
    assert [m.x for m in chart.marks] == [0]


def test_an_identical_check_has_loss_plots_and_no_divergence_map():
    keys = set(figures_of(recorded_report("none")))
    assert keys == {"check-loss-sequential"}


def test_snapshots_are_taken_at_step_0_and_the_first_step_past_each_power_of_two():
    taken, last = [], None
    for step in [0, 1, 2, 3, 4, 5, 7, 9, 17, 18, 40]:
        if due(last, step):
            taken.append(step)
            last = step
    assert taken == [0, 1, 2, 4, 9, 17, 40]  # 9: the first past 8 (steps can jump); 40: past 32


def test_a_large_variable_is_kept_as_the_same_sample_in_every_run():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 100)).astype(np.float32)
    b = a.copy()
    b[7, 3] += 1.0
    kept_a, kept_b = kept(a), kept(b)
    assert kept_a.size == SAMPLE and np.array_equal(kept_a, kept(a.copy()))
    where = positions(a.size)  # fixed by the size alone: the same positions in every run
    assert np.array_equal(where, positions(a.size)) and np.array_equal(kept_a, a.reshape(-1)[where])
    assert np.isclose(relative_l2(kept_a, kept(1.01 * a)), 0.01)  # a sample estimates the distance
    snapshots = Snapshots()
    snapshots.offer("m", 0, ["small", "large"], [np.ones(3), a])
    snapshots.offer("m", 2, ["small", "large"], [np.ones(3), a])
    snapshots.offer("m", 3, ["small", "large"], [np.ones(3), a])  # not due: no power of two between 2 and 3
    assert sorted(snapshots.arrays) == [f"snapshots/m/{s}/{n}" for s in (0, 2) for n in ("large", "small")]
    assert kept_b.size == SAMPLE


def study_variant(label, values, curves):
    runs = tuple(
        RunResult(seed=1234 + i, metrics={"accuracy": v}, curves={"accuracy": c})
        for i, (v, c) in enumerate(zip(values, curves))
    )
    finite = [v for v in values if math.isfinite(v)]
    stats = MetricStats("accuracy", "max", tuple((r.seed, v) for r, v in zip(runs, values)), summarize(finite), ())
    seeds = tuple(r.seed for r in runs)
    return VariantResult(label, "train.py", (), None, seeds, runs, (stats,), None, None, False)


def test_the_seed_plot_shows_every_finite_seed_with_the_mean_and_its_interval():
    variant = study_variant(
        "train.py", [0.9, 0.8, math.nan, 0.85], [(0.5, 0.9), (0.4, 0.8), (0.1, math.nan), (0.45, 0.85)]
    )
    report = SeedsReport(variant, "accuracy", 1234, Path("."), 1.0, 4)
    values, curves = seeds_figures(report)
    assert isinstance(values.chart, StripChart)
    strip = values.chart.strips[0]
    summary = variant.metrics[0].summary
    assert strip.values == (0.9, 0.8, 0.85) and (strip.mean, strip.ci_low, strip.ci_high) == (
        summary.mean,
        summary.ci_low,
        summary.ci_high,
    )
    assert isinstance(curves.chart, LineChart)
    mean = next(s for s in curves.chart.series if s.emphasis)
    assert len([s for s in curves.chart.series if not s.emphasis]) == 4  # one thin line per seed
    assert mean.y == (np.mean([0.5, 0.4, 0.1, 0.45]), np.mean([0.9, 0.8, 0.85]))  # NaN left out
    assert (mean.low, mean.high) == ((0.1, 0.8), (0.5, 0.9))  # lowest and highest seed per epoch


def test_a_comparison_plots_one_strip_and_one_mean_curve_per_variant():
    from reprokit.study.result import CompareReport

    a = study_variant("A", [0.9, 0.8, 0.85], [(0.5, 0.9)] * 3)
    b = study_variant("B", [0.7, 0.6, 0.65], [(0.4, 0.7)] * 3)
    report = CompareReport((a, b), (), "accuracy", "max", False, None, 1234, 3, Path("."), 1.0)
    values, curves = compare_figures(report)
    assert [s.label for s in values.chart.strips] == ["A", "B"]
    assert [s.label for s in curves.chart.series if s.emphasis] == ["A: mean of 3 seeds", "B: mean of 3 seeds"]


def align_report(barrier=True):
    layers = (
        LayerAlignment("dense", "Dense", 30, True, None, 1.3, 0.9, 0.98, None, 0.75),
        LayerAlignment("dense_1", "Dense", 10, False, "output layer: its units keep their order", 1.2, 1.0),
    )
    alignment = Alignment(layers, 1.33, 0.91, 1, 0.98, 0.91, 0.75)
    path = Barrier((0.03, 0.035, 0.036, 0.031), 0.005) if barrier else None
    return AlignReport("a.keras", "b.keras", "digits.npz", 100, alignment, 2e-7, path)


def test_the_align_plots_show_each_layer_before_and_after_and_its_cka_against_untrained():
    distance, cka, path = align_figures(align_report())
    assert isinstance(distance.chart, BarChart) and distance.chart.categories == ("dense (Dense)", "dense_1 (Dense)")
    before, after = distance.chart.bars
    assert before.values == (1.3, 1.2) and after.values == (0.9, None)  # the output layer is not aligned
    assert [b.values for b in cka.chart.bars] == [(0.98, None), (0.75, None)]
    assert path.chart.series[0].y == (0.03, 0.035, 0.036, 0.031) and not path.chart.whole_x


def test_long_lines_are_thinned_keeping_both_ends():
    x, y = thinned(list(range(10_000)), list(range(10_000)), 100)
    assert len(x) == 100 and (x[0], x[-1]) == (0, 9999) and x == y


def test_the_svg_needs_no_font_and_no_file_and_ids_are_unique_across_the_plots_of_a_page():
    pictures = [svg(f) for f in check_figures(recorded_report("ops"))]
    ids = [i for p in pictures for i in re.findall(r'id="([^"]+)"', p)]
    assert len(ids) == len(set(ids))
    for picture in pictures:
        assert picture.startswith("<svg") and "<title>" in picture
        assert "<text" not in picture and "@font-face" not in picture  # glyphs are paths
        assert not re.search(r'(href|src)="(?!#)', picture)  # only references inside the picture


def test_the_html_page_is_one_reproducible_file_with_the_verdict_every_plot_and_nothing_to_fetch():
    report = recorded_report("ops")
    page = report.to_html()
    assert page == report.to_html()  # the same report, the same bytes
    verdict = "reproducible under control — your own runs differ: the seed, nondeterministic ops"
    assert f'<p class="verdict neutral" id="verdict">{verdict}</p>' in page
    for figure in check_figures(report):
        assert f'<figure id="{figure.key}"><h3>{figure.title}</h3><svg' in page
        assert f'<figcaption><p class="look">{html.escape(figure.look)}</p>' in page
    assert "Sources of difference" in page and "seed-driven: why, and the fix" in page
    first_plot = page.index("<figure")
    assert page.index("Sources of difference") < page.index('id="panel-seed-driven-why-and-the-fix"') < first_plot
    assert first_plot < page.index("intra-op threads") < page.index("Next: ")  # the environment, the next step last
    assert not re.search(r"<(script|link|img|iframe)\b|@import|url\((?!#)", page)


def test_rich_tables_and_panels_become_html_with_every_cell():
    table = Table(title="Comparisons")
    table.add_column("pair")
    table.add_column("result")
    table.add_row("seed", Text("differs", style="red"))
    table.add_row("[bold red]layer[/]", "text from the user is never markup")
    html = block(Panel(table, title="a <panel>", border_style="red"), Console(width=100))
    assert "<h2>a &lt;panel&gt;</h2>" in html and "<caption>Comparisons</caption>" in html
    assert "<th>pair</th>" in html and re.search(r'<td><span style="color: #b00020[^"]*">differs</span></td>', html)
    assert "<td>[bold red]layer[/]</td>" in html


def test_a_long_run_keeps_the_losses_of_at_most_2000_evenly_spaced_steps():
    from reprokit.checking.reporting import MAX_STEP_LOSSES, step_losses
    from reprokit.run.trace import Point

    trace = recorded_trace("seed-1")
    points = tuple(Point("sequential", step, {}, (), float(step)) for step in range(1, 10_001))
    losses = step_losses(dataclasses.replace(trace, points=points))["sequential"]
    assert len(losses) == MAX_STEP_LOSSES and losses[0] == (1, 1.0) and losses[-1] == (10_000, 10_000.0)


def test_integer_axes_get_whole_number_ticks_even_when_every_point_lies_at_one_step():
    one_step = (
        LineChart("optimizer step", "loss", (Series("run", (1.0, 1.0), (0.5, 0.4)),)),
        DotChart("first differing step", ("dense/kernel", "dense/bias"), (Dots("seed pair", (1.0, 1.0)),)),
    )
    for chart in one_step:
        ax = drawn(chart).axes[0]
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert len(ticks) >= 2 and all(t == round(t) for t in ticks), ticks  # not 0.945 … 1.050
        assert low < 1 < high and high - low >= 2  # a sensible span around the step
    ranks = LineChart("seed", "rank (1 = best)", (Series("a", (1234.0, 1235.0), (1.0, 1.0)),), whole_y=True)
    ax = drawn(ranks).axes[0]
    low, high = ax.get_ylim()
    ticks = [t for t in ax.get_yticks() if low <= t <= high]
    assert len(ticks) >= 2 and all(t == round(t) for t in ticks), ticks

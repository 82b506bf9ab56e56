"""Runs ``reprokit tune``: every configuration of a grid, with the same seeds, ranked across them.

Every configuration is a variant of the script (:mod:`reprokit.study.grid`)
and runs the same seeds S, S + 1, … (common random numbers: seed *i* gives
every configuration the same initial draw, so their differences are the
configurations' own). The runs are those of a seed study
(:func:`reprokit.study.running.run_study`: fresh processes, every seed fixed,
op determinism on, kept in the study folder: any later study reuses them).

With ``--seeds auto`` the study adds seeds in rounds
(:mod:`reprokit.study.rounds`): every pair of configurations is one
comparison of a group-sequential design (Holm over all k(k − 1)/2 pairs, so
that which configuration leads may change from look to look without
invalidating the test), and the study stops once every comparison of the
current leader with another configuration is settled.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reprokit.core.errors import UsageError
from reprokit.run.runner import OnEvent
from reprokit.run.script import validate_script
from reprokit.study.analysis import variant_result
from reprokit.study.grid import Axis, Passing, configurations, target_of
from reprokit.study.metrics import Mode, all_names, headline, resolve_mode
from reprokit.study.ranking import Ranking, rank
from reprokit.study.rounds import SeedCount, Sequential, in_rounds
from reprokit.study.running import OnResult, StudyOptions, VariantRuns, run_study
from reprokit.study.sequential import Design, Verdict, design, judge
from reprokit.study.store import default_root
from reprokit.study.tuneresult import TuneReport

MIN_TUNE_SEEDS = 2
"""Fewer seeds per configuration cannot say whether the choice survives a new seed."""


def run_tune(
    script: Path,
    args: Sequence[str],
    axes: Sequence[Axis],
    passing: Passing,
    options: StudyOptions,
    count: SeedCount,
    metric: str | None = None,
    mode: Mode | None = None,
    min_effect: float | None = None,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
) -> TuneReport:
    """Trains every configuration of the grid with the same seeds and ranks them (see the module docstring).

    Raises:
        UsageError: a bad grid or option, or a script that cannot run (before any run).
        ScriptFailedError: the first runs failed; NoTrainingError: the script trains no Keras model.
    """
    validate_script(script)
    if metric is not None:
        resolve_mode(metric, mode)
    if min_effect is not None and min_effect < 0:
        raise UsageError(f"expected a non-negative --min-effect, received {min_effect}")
    if count.fixed is not None and count.fixed < MIN_TUNE_SEEDS:
        raise UsageError(f"expected --seeds {MIN_TUNE_SEEDS} or more for tune (or auto), received {count.fixed}")
    grid = configurations(axes)
    pairs = list(itertools.combinations(range(len(grid)), 2))
    plan = None if count.fixed is not None else _design(count, len(pairs))
    seeds = count.fixed if plan is None else count.maximum
    assert seeds is not None
    if options.seed + seeds > 2**32 - 1:
        raise UsageError(f"expected seeds within 0 … 2**32 - 1, received --seed {options.seed} with {seeds} seeds")
    targets = [target_of(script, args, c, passing) for c in grid]
    options = replace(options, paired=True, repeat=False)
    started = time.monotonic()
    latest: list[list[VariantRuns]] = []

    def run_round(n: int, first: bool) -> list[VariantRuns]:
        step = replace(options, seeds=n, fresh=options.fresh and first)  # later rounds reuse earlier ones
        latest[:] = [run_study(targets, step, on_event, on_result)]
        return latest[0]

    sequential = None
    if plan is None:
        run_round(seeds, True)
    else:

        def judge_round(n: int, before: tuple[Verdict, ...] | None) -> tuple[tuple[Verdict, ...], bool]:
            values, higher = _values(latest[0], metric, mode)
            samples = [(values[i], values[j]) for i, j in pairs]
            verdicts = judge(plan, n, samples, higher_is_better=higher, min_effect=min_effect, before=before)
            leader = _leader(values, higher)
            open_ = [v for (i, j), v in zip(pairs, verdicts) if leader in (i, j) and not v.settled]
            return verdicts, not open_

        sequential = in_rounds(plan, run_round, judge_round)
    runs = latest[0]
    labelled = [replace(r, label=c.label) for r, c in zip(runs, grid)]
    wall = time.monotonic() - started
    return tune_report(script, args, axes, passing, labelled, metric, mode, options, sequential, wall)


def _design(count: SeedCount, pairs: int) -> Design:
    try:
        return design(count.maximum, pairs, paired=True)
    except ValueError as e:
        raise UsageError(f"--seeds auto: {e} (raise --max-seeds, or give a fixed --seeds)") from None


def _values(runs: Sequence[VariantRuns], requested: str | None, mode: Mode | None) -> tuple[list[list[float]], bool]:
    """Every configuration's headline value on the seeds where all have one, and which way is better."""
    names = all_names(r.metrics for v in runs for r in v.results if r.ok)
    metric = headline(names, requested)
    higher = resolve_mode(metric, mode) == "max"
    per = [{r.seed: r.metrics.get(metric, math.nan) for r in v.results if r.ok and not r.repeat} for v in runs]
    common = sorted(s for s in set.intersection(*(set(p) for p in per)) if all(math.isfinite(p[s]) for p in per))
    return [[p[s] for s in common] for p in per], higher


def _leader(values: Sequence[Sequence[float]], higher: bool) -> int:
    means = [sum(v) / len(v) if v else math.nan for v in values]
    keyed = [(m if higher else -m) if math.isfinite(m) else -math.inf for m in means]
    return max(range(len(keyed)), key=lambda i: (keyed[i], -i))


def tune_report(
    script: Path,
    args: Sequence[str],
    axes: Sequence[Axis],
    passing: Passing,
    runs: Sequence[VariantRuns],
    requested: str | None,
    mode: Mode | None,
    options: StudyOptions,
    sequential: Sequential | None,
    wall: float,
) -> TuneReport:
    """The report of a tuning from its configurations' runs (labelled by configuration), ranked by the headline metric.

    Raises:
        UsageError: an unknown ``--metric`` or direction.
    """
    names = all_names(r.metrics for v in runs for r in v.results if r.ok)
    metric = headline(names, requested)
    chosen = resolve_mode(metric, mode)
    variants = tuple(variant_result(v, metric, chosen) for v in runs)
    return TuneReport(
        script=str(script),
        args=tuple(args),
        axes=tuple(axes),
        passing=passing,
        configurations=tuple(configurations(axes)),
        variants=variants,
        ranking=_ranking(runs, metric, chosen),
        metric=metric,
        mode=chosen,
        first_seed=options.seed,
        seeds=sequential.seeds if sequential is not None else options.seeds,
        folder=options.folder or default_root(),
        wall_seconds=wall,
        sequential=sequential,
    )


def _ranking(runs: Sequence[VariantRuns], metric: str, mode: Mode) -> Ranking | None:
    seeds = sorted({r.seed for v in runs for r in v.results if not r.repeat})
    matrix = []
    for v in runs:
        found = {r.seed: r.metrics.get(metric, math.nan) for r in v.results if r.ok and not r.repeat}
        matrix.append([found.get(s, math.nan) for s in seeds])
    labels = [v.label for v in runs]
    try:
        return rank(matrix, seeds, labels, higher_is_better=mode == "max")
    except ValueError:  # fewer than two seeds where every configuration has a value
        return None

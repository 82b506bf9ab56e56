"""The Python API of seed studies: :func:`seeds` and :func:`compare`.

``reprokit seeds`` and ``reprokit compare`` call these; they return frozen
report objects that render with rich and serialize to the documented JSON.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

from reprokit.core.backends import Backend
from reprokit.core.controls import DEFAULT_SEED
from reprokit.core.errors import UsageError
from reprokit.run.runner import OnEvent, Target
from reprokit.run.settings import RunSettings
from reprokit.study.analysis import compare_report, contrast_samples, seeds_report
from reprokit.study.metrics import Mode, resolve_mode
from reprokit.study.replay import Replay
from reprokit.study.result import CompareReport, SeedsReport
from reprokit.study.rounds import DEFAULT_MAX_SEEDS, SeedCount, Sequential, in_rounds
from reprokit.study.running import OnResult, StudyOptions, VariantRuns, run_study
from reprokit.study.sequential import Design, Verdict, design, fixed_minimum, judge
from reprokit.study.stats import ALPHA
from reprokit.study.store import default_root
from reprokit.study.variants import Variant, across_backends, against, parse_variants

DEFAULT_SEEDS = "auto"
"""``--seeds``: as many as the verdict needs (:mod:`reprokit.study.rounds`)."""


def seeds(
    script: str | os.PathLike[str],
    *,
    args: Sequence[str] = (),
    seeds: int | str = DEFAULT_SEEDS,
    seed: int = DEFAULT_SEED,
    max_seeds: int = DEFAULT_MAX_SEEDS,
    metric: str | None = None,
    mode: Mode | None = None,
    repeat: bool = True,
    jobs: int | None = None,
    timeout: float | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    folder: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    backend: str | None = None,
    fresh: bool = False,
) -> SeedsReport:
    """How much does the seed matter for a training script?

    Trains ``script`` once per seed S, S+1, … in fresh processes, every seed
    fixed and op determinism on, and runs seed S a second time to show that
    the seed pins the script.

    Args:
        script: the training script (or model file).
        args: its command-line arguments.
        seeds: how many seeds (runs, besides the repeat), or ``"auto"``: as
            many as the first look of a comparison's sequential design
            (:mod:`reprokit.study.sequential`), so that a later ``compare``
            of the same script reuses them.
        seed: the first seed S.
        max_seeds: the most seeds an automatic study runs.
        metric: the headline metric (default: see :func:`reprokit.study.metrics.headline`).
        mode: ``"max"`` or ``"min"``: which way the headline metric is better
            (default: from its name).
        repeat: run seed S twice (without it, whether the seed pins the
            script is not shown).
        jobs: how many runs may execute at once (None: what the machine can take).
        timeout: seconds one run may take.
        epochs: epochs for a model file.
        batch_size: batch size for a model file.
        folder: the study folder (default: in the user's cache). A run it
            holds, made by any study of the same script, arguments, settings
            and environment with the same seed, is reused, not trained again.
        resume: no effect (stored runs are always reused); kept so that
            existing calls work.
        on_event: called with every event of every run (progress).
        on_result: called with each run's result as it is known.
        executor: ``"local"`` (processes on this machine) or ``"ray"`` (Ray
            tasks; ``pip install "reprokit[ray]"``).
        ray_address: the Ray cluster (None: ``RAY_ADDRESS``, else a cluster
            running on this machine, else a local instance for the call).
        cpus_per_run: CPUs Ray reserves for each run.
        gpus_per_run: GPUs Ray gives each run (a fraction shares a GPU).
        backend: the Keras backend (``"tensorflow"``, ``"jax"``, ``"torch"``;
            None: the one Keras would use).
        fresh: train every run again, even those the study folder holds
            (each replaces its stored run).

    Returns:
        The report (``report.variant.metrics``, ``report.pinned``, ``report.to_dict()``).

    Raises:
        UsageError: bad options or script; ScriptFailedError: the first run
        failed; NoTrainingError: the script trains no Keras model.
    """
    settings = RunSettings.of(
        timeout=timeout,
        jobs=jobs,
        epochs=epochs,
        batch_size=batch_size,
        executor=executor,
        ray_address=ray_address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        backend=backend,
    )
    count = SeedCount.parse(seeds, max_seeds)
    del resume  # stored runs are always reused
    options = StudyOptions(count.fixed or 1, seed, True, repeat, _folder(folder), fresh, settings.one_backend())
    return run_seeds(Target(Path(script), tuple(args)), options, metric, mode, on_event, on_result, count)


def run_seeds(
    target: Target,
    options: StudyOptions,
    metric: str | None = None,
    mode: Mode | None = None,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
    count: SeedCount | None = None,
) -> SeedsReport:
    """:func:`seeds` on options already built (``reprokit seeds`` builds them where its options enter).

    ``count`` is ``--seeds``: a fixed number (None: ``options.seeds``) or automatic.

    Raises:
        UsageError: bad options or script; ScriptFailedError: the first run
        failed; NoTrainingError: the script trains no Keras model.
    """
    count = count or SeedCount(options.seeds)
    automatic = None if count.fixed is not None else _design(count, 1, True)  # a study of one variant: any number
    seeds = count.fixed if automatic is None else automatic.first
    assert seeds is not None
    _check_counts(seeds, options.seed)
    options = replace(options, seeds=seeds, settings=options.settings.one_backend())
    started = time.monotonic()
    (runs,) = run_study([target], options, on_event, on_result)
    wall = time.monotonic() - started
    folder = options.folder or default_root()
    replay = Replay.of(options, target.folder or Path.cwd(), metric, mode)
    return seeds_report(runs, metric, mode, options.seed, folder, wall, options.seeds, automatic is not None, replay)


def compare(
    *variants: str | os.PathLike[str],
    args: Sequence[str] = (),
    against_ref: str | None = None,
    seeds: int | str = DEFAULT_SEEDS,
    seed: int = DEFAULT_SEED,
    max_seeds: int = DEFAULT_MAX_SEEDS,
    metric: str | None = None,
    mode: Mode | None = None,
    paired: bool = True,
    min_effect: float | None = None,
    jobs: int | None = None,
    timeout: float | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    folder: str | os.PathLike[str] | None = None,
    resume: bool = False,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    backend: str | Sequence[str] | None = None,
    fresh: bool = False,
) -> CompareReport:
    """Did a change move the metric beyond seed noise?

    Trains every variant once per seed (the same seeds for all: a paired
    design, unless ``paired=False``) and compares each with the first.

    Args:
        variants: two or more scripts or quoted command lines
            (``"train.py --lr 0.1"``); with ``against_ref``, exactly one.
        args: arguments appended to every variant.
        against_ref: compare the one variant as it is at this git ref (first)
            with the working tree (second).
        seeds: runs per variant, or ``"auto"``: add seeds in rounds until the
            verdict is settled (:mod:`reprokit.study.rounds`). A fixed number
            too small to ever show a difference is refused.
        seed: the first seed S.
        max_seeds: the most seeds per variant an automatic study runs.
        metric: the metric to judge by (default: see :func:`reprokit.study.metrics.headline`).
        mode: ``"max"`` or ``"min"``: which way is better (default: from the name).
        paired: every variant runs the same seeds.
        min_effect: the largest difference that does not matter (for "equivalent").
        jobs, timeout, epochs, batch_size, folder, resume, on_event, on_result,
        executor, ray_address, cpus_per_run, gpus_per_run, fresh: as for
        :func:`seeds` (a run that :func:`seeds` stored is reused here, and the other way round).
        backend: the Keras backend, or several: every variant then runs on
            each (``compare("train.py", backend=["tensorflow", "jax"])``
            answers whether the result depends on the backend beyond seed noise).

    Returns:
        The report (``report.contrasts``, ``report.outcomes()``, ``report.to_dict()``).
    """
    settings = RunSettings.of(
        timeout=timeout,
        jobs=jobs,
        epochs=epochs,
        batch_size=batch_size,
        executor=executor,
        ray_address=ray_address,
        cpus_per_run=cpus_per_run,
        gpus_per_run=gpus_per_run,
        backend=backend,
    )
    count = SeedCount.parse(seeds, max_seeds)
    del resume  # stored runs are always reused
    options = StudyOptions(count.fixed or 1, seed, paired, False, _folder(folder), fresh, settings)
    specs = [str(v) for v in variants]
    return run_compare(specs, options, args, against_ref, metric, mode, min_effect, on_event, on_result, count)


def run_compare(
    variants: Sequence[str],
    options: StudyOptions,
    args: Sequence[str] = (),
    against_ref: str | None = None,
    metric: str | None = None,
    mode: Mode | None = None,
    min_effect: float | None = None,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
    count: SeedCount | None = None,
) -> CompareReport:
    """:func:`compare` on options already built (``reprokit compare`` builds them where its options enter).

    ``count`` is ``--seeds``: a fixed number (None: ``options.seeds``), or
    automatic (:mod:`reprokit.study.rounds`).

    Raises:
        UsageError: bad options, variants or scripts, or a fixed number of
            seeds too small to ever show a difference (before any run).
    """
    count = count or SeedCount(options.seeds)
    if min_effect is not None and min_effect < 0:
        raise UsageError(f"expected a non-negative --min-effect, received {min_effect}")
    if metric is not None:
        resolve_mode(metric, mode)  # an unknown direction fails before any run
    specs = list(variants)
    backends = options.settings.backends if len(options.settings.backends) > 1 else ()
    started = time.monotonic()
    with _variants(specs, args, against_ref, backends) as named:
        contrasts = len(named) - 1
        design = _design(count, contrasts, options.paired)
        seeds = count.maximum if design is not None else (count.fixed or options.seeds)
        blocks = 2 if options.paired else len(named)
        _check_counts(seeds, options.seed, blocks)
        if design is not None:
            options = replace(options, stride=count.maximum)
        targets = [Target(v.script, v.args, folder=v.folder) for v in named]
        identities = [None if v.commit is None else f"{v.commit}:{v.label}" for v in named]
        on = [v.backend for v in named if v.backend]

        def run(seeds: int, first: bool) -> list[VariantRuns]:
            step = replace(options, seeds=seeds, fresh=options.fresh and first)  # later rounds reuse earlier ones
            runs = run_study(targets, step, on_event, on_result, identities, on)
            return [replace(r, label=v.label, commit=v.commit) for r, v in zip(runs, named)]

        if design is None:
            runs, sequential = run(seeds, True), None
        else:
            runs, sequential = _in_rounds(design, run, metric, mode, options.paired, min_effect)
            seeds = sequential.seeds  # the seeds the verdicts took, not the most allowed
        folder = options.folder or default_root()
        wall = time.monotonic() - started
        return compare_report(
            runs, metric, mode, options.paired, min_effect, options.seed, folder, wall, seeds, sequential
        )


def _design(count: SeedCount, contrasts: int, paired: bool) -> Design | None:
    """The sequential design of an automatic study (None: a fixed number of seeds, checked here).

    Raises:
        UsageError: a fixed number of seeds, or ``--max-seeds``, too small to ever show a difference.
    """
    unit = "seeds" if paired else "seeds per variant"
    if count.fixed is not None:
        needed = fixed_minimum(contrasts, paired=paired)
        if count.fixed < needed:
            raise UsageError(
                f"expected --seeds {needed} or more (or --seeds auto): with {count.fixed} {unit} the exact test of "
                f"{_comparisons(contrasts)} can never reach p < {ALPHA}, so no difference could be shown"
            )
        return None
    try:
        return design(count.maximum, contrasts, paired=paired)
    except ValueError:
        needed = next(n for n in range(count.maximum, 10_000) if _designs(n, contrasts, paired))
        raise UsageError(
            f"expected --max-seeds {needed} or more: with at most {count.maximum} {unit} the sequential test of "
            f"{_comparisons(contrasts)} can never reach significance"
        ) from None


def _designs(max_seeds: int, contrasts: int, paired: bool) -> bool:
    try:
        design(max_seeds, contrasts, paired=paired)
    except ValueError:
        return False
    return True


def _comparisons(contrasts: int) -> str:
    return "one comparison" if contrasts == 1 else f"{contrasts} comparisons (Holm-corrected)"


def _in_rounds(
    design: Design,
    run: Callable[[int, bool], list[VariantRuns]],
    metric: str | None,
    mode: Mode | None,
    paired: bool,
    min_effect: float | None,
) -> tuple[list[VariantRuns], Sequential]:
    """Runs a comparison look by look (:func:`reprokit.study.rounds.in_rounds`); its runs and how it ended."""
    latest: list[list[VariantRuns]] = []

    def run_round(seeds: int, first: bool) -> list[VariantRuns]:
        latest[:] = [run(seeds, first)]
        return latest[0]

    def judge_round(seeds: int, before: tuple[Verdict, ...] | None) -> tuple[tuple[Verdict, ...], bool]:
        samples, higher = contrast_samples(latest[0], metric, mode, paired)
        verdicts = judge(design, seeds, samples, higher_is_better=higher, min_effect=min_effect, before=before)
        return verdicts, all(v.settled for v in verdicts)

    sequential = in_rounds(design, run_round, judge_round)
    return latest[0], sequential


@contextlib.contextmanager
def _variants(
    specs: list[str], args: Sequence[str], ref: str | None, backends: Sequence[Backend]
) -> Iterator[list[Variant]]:
    """The variants to compare; with several ``backends``, each of them on every backend."""
    if ref is None:
        found = parse_variants(specs, args, minimum=1 if backends else 2)
        yield across_backends(found, backends) if backends else found
        return
    with against(ref, specs, args) as found:
        yield across_backends(found, backends) if backends else found


def _check_counts(seeds: int, seed: int, blocks: int = 2) -> None:
    """Fails unless every seed the study may use (``blocks`` blocks of ``seeds`` from ``seed``) is a valid hash seed."""
    if seeds < 1:
        raise UsageError(f"expected --seeds of at least 1, received {seeds}")
    if seed < 0 or seed + blocks * seeds > 2**32 - 1:
        raise UsageError(f"expected seeds within 0 … 2**32 - 1, received --seed {seed} with --seeds {seeds}")


def _folder(folder: str | os.PathLike[str] | None) -> Path | None:
    return None if folder is None else Path(folder)

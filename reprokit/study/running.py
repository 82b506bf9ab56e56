"""Runs a seed study: every variant trained once per seed, each run in a fresh process.

Every run has every seed fixed and op determinism on (as a check's controlled
runs), so any one of them can be replayed exactly; it observes only metrics,
the final loss, final fingerprints and predictions on the probe batch
(``Target.study``), so it costs what a plain training costs. Runs execute
concurrently (as many as :func:`reprokit.run.dispatch.jobs_for` allows),
interleaved by seed so that an interrupted study holds whole pairs; each
finished run is kept at once in the study folder (:mod:`reprokit.study.store`).
A run the folder already holds, stored by any study with the same key
(:func:`variant_key`) and seed, is reused instead of trained again (unless
``StudyOptions.fresh``); ``RunResult.cached`` tells reused runs from trained ones.

A failed run is recorded with its error and the study goes on, unless the
first two runs to finish both failed (or the only one did): then the script
is most likely broken, and the study stops with the script's error (a script
that trains nothing stops it at its first run).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path

import numpy as np

from reprokit.core.backends import Backend, installed_version
from reprokit.core.controls import DEFAULT_SEED, RECORDED_ENV_VARS, Controls
from reprokit.core.errors import NoTrainingError, ScriptFailedError
from reprokit.core.fingerprint import combine
from reprokit.core.machine import cpu_model
from reprokit.run.dispatch import executing, jobs_for, runner_for
from reprokit.run.environment import CONTROLLED_ENV
from reprokit.run.runner import OnEvent, Runner, Target
from reprokit.run.script import require_training, validate_script
from reprokit.run.settings import RunSettings
from reprokit.run.trace import RunSpec, RunTrace, saved_arrays
from reprokit.run.workdirs import listing
from reprokit.study.metrics import run_curves, run_metrics
from reprokit.study.searches import search_records
from reprokit.study.store import FORMAT, RunResult, StudyStore, default_root

OnResult = Callable[[int, RunResult], None]
"""Called with a variant's index and each of its results as it is known (cached ones first)."""

ROLE = "study"


@dataclass(frozen=True)
class StudyOptions:
    """How to run a seed study.

    Attributes:
        seeds: runs per variant, one seed each.
        seed: the first seed S; the runs use S, S + 1, …
        paired: every variant runs the same seeds (else variant i runs
            S + i·seeds, …: independent samples).
        repeat: run the first seed of each variant a second time, to show that
            the seed pins the script.
        folder: the study folder (None: :func:`reprokit.study.store.default_root`).
        fresh: train every run again, even those the study folder holds
            (each replaces its stored run as it ends); without it a run that
            the study folder holds, made by any study with the same key
            (:func:`variant_key`) and seed, is reused and only missing (or
            failed) runs are trained.
        settings: how every run runs: how many at once, the model-file
            options, where they execute (on a Ray cluster runs may land on
            any node).
        stride: how far apart the first seeds of unpaired variants lie (None:
            ``seeds``; a study that adds seeds in rounds sets its maximum,
            so that a variant's seeds never reach the next one's).
    """

    seeds: int = 10
    seed: int = DEFAULT_SEED
    paired: bool = True
    repeat: bool = False
    folder: Path | None = None
    fresh: bool = False
    settings: RunSettings = field(default_factory=RunSettings)
    stride: int | None = None

    def seeds_of(self, variant: int) -> list[int]:
        """The seeds variant number ``variant`` runs."""
        first = self.seed if self.paired else self.seed + variant * (self.stride or self.seeds)
        return list(range(first, first + self.seeds))


@dataclass(frozen=True)
class VariantRuns:
    """Every run of one variant, in seed order (the repeat last), and where they are kept.

    ``label`` and ``commit`` name the variant in reports (empty: its command line).
    """

    target: Target
    results: tuple[RunResult, ...]
    store: StudyStore
    label: str = ""
    commit: str | None = None

    def predictions(self, result: RunResult) -> dict[str, np.ndarray]:
        return self.store.predictions(result)


def run_study(
    targets: Sequence[Target],
    options: StudyOptions,
    on_event: OnEvent | None = None,
    on_result: OnResult | None = None,
    identities: Sequence[str | None] = (),
    backends: Sequence[Backend] = (),
) -> list[VariantRuns]:
    """Runs every variant with every seed; returns their runs (see the module docstring).

    ``identities`` name variants whose script lies in a temporary folder (a
    git ref's worktree) for their study folder: the commit and the path in it.
    ``backends`` give each variant its own Keras backend (a cross-backend
    compare; empty: every variant trains on ``options.settings.backend``).

    Raises:
        UsageError: a script is missing or not a Python script (before any run).
        ScriptFailedError: the first two runs to finish failed (nothing had succeeded).
        NoTrainingError: the first run to finish trained no Keras model.
    """
    for target in targets:
        validate_script(target.script)
    targets = [replace(t, study=True) for t in targets]
    root = options.folder or default_root()
    named = list(identities) + [None] * (len(targets) - len(identities))
    settings = [replace(options.settings, backends=(b,)) for b in backends] or [options.settings] * len(targets)
    stores = [StudyStore(root, variant_key(t, s, where, root)) for t, s, where in zip(targets, settings, named)]
    wanted: list[list[tuple[int, bool]]] = []
    for i in range(len(targets)):
        seeds = options.seeds_of(i)
        wanted.append([(s, False) for s in seeds] + ([(seeds[0], True)] if options.repeat else []))
    done: list[dict[tuple[int, bool], RunResult]] = []
    for store, keys in zip(stores, wanted):
        stored = {} if options.fresh else store.load()
        done.append({k: r for k, r in stored.items() if k in keys and r.ok})
    for i, kept in enumerate(done):
        for key in wanted[i]:
            if key in kept and on_result is not None:
                on_result(i, kept[key])
    todo = _interleaved([[k for k in keys if k not in done[i]] for i, keys in enumerate(wanted)])
    if todo:
        with executing(options.settings.execution):
            _execute(targets, settings, stores, todo, done, options, on_event, on_result)
    return [
        VariantRuns(target, tuple(done[i][k] for k in wanted[i] if k in done[i]), stores[i])
        for i, target in enumerate(targets)
    ]


def _interleaved(per_variant: list[list[tuple[int, bool]]]) -> list[tuple[int, int, bool]]:
    """(variant, seed, repeat) in the order to start them: seed by seed across variants, repeats last."""
    order: list[tuple[int, int, bool]] = []
    longest = max((len(keys) for keys in per_variant), default=0)
    for position in range(longest):
        for variant, keys in enumerate(per_variant):
            if position < len(keys) and not keys[position][1]:
                order.append((variant, *keys[position]))
    order += [(v, seed, True) for v, keys in enumerate(per_variant) for seed, repeat in keys if repeat]
    return order


def _execute(
    targets: Sequence[Target],
    settings: Sequence[RunSettings],
    stores: Sequence[StudyStore],
    todo: Sequence[tuple[int, int, bool]],
    done: list[dict[tuple[int, bool], RunResult]],
    options: StudyOptions,
    on_event: OnEvent | None,
    on_result: OnResult | None,
) -> None:
    jobs = jobs_for(options.settings, len(todo))
    with tempfile.TemporaryDirectory(prefix="reprokit-study-") as workdir:
        runners = [
            runner_for(t, Path(workdir) / f"variant-{i}", on_event, s)
            for i, (t, s) in enumerate(zip(targets, settings))
        ]
        execution = _Execution(runners, stores, done, on_result, min(2, len(todo)))
        pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="reprokit-study")
        futures: list[Future[None]] = [
            pool.submit(execution.attempt, *key, _next_seed(todo, i)) for i, key in enumerate(todo)
        ]
        try:
            while True:
                finished, pending = wait(futures, timeout=0.2, return_when=FIRST_EXCEPTION)
                for future in finished:
                    error = future.exception()
                    if error is not None:
                        raise error
                if not pending:
                    break
        except BaseException:  # a broken script, Ctrl-C: stop every run, start no other
            execution.stop()
            for future in futures:
                future.cancel()
            for runner in runners:
                runner.kill_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _spec(seed: int, repeat: bool) -> RunSpec:
    return RunSpec(f"seed-{seed}" + ("-repeat" if repeat else ""), ROLE, Controls(seed, True))


def _next_seed(todo: Sequence[tuple[int, int, bool]], position: int) -> tuple[int, int, bool] | None:
    """The first run after ``todo[position]`` with another seed: its import can start while this seed's runs wait.

    Runs of one seed share a hash seed, so their runs fork from one import (:mod:`reprokit.run.forkserver`).
    """
    seed = todo[position][1]
    return next((key for key in todo[position + 1 :] if key[1] != seed), None)


class _Execution:
    """The runs of a study while they execute: each attempt, and when the study must stop."""

    def __init__(
        self,
        runners: Sequence[Runner],
        stores: Sequence[StudyStore],
        done: list[dict[tuple[int, bool], RunResult]],
        on_result: OnResult | None,
        broken_after: int,
    ) -> None:
        self.runners, self.stores, self.done, self.on_result = runners, stores, done, on_result
        self.broken_after = broken_after  # failures before any success that stop the study
        self.lock = threading.Lock()
        self.succeeded = any(r.ok for kept in done for r in kept.values())
        self.failed_first = 0
        self.stopping = threading.Event()  # the study ends early: runs killed then are no results
        self.recorded = threading.Condition(self.lock)  # notified whenever a result is recorded

    def attempt(self, variant: int, seed: int, repeat: bool, upcoming: tuple[int, int, bool] | None = None) -> None:
        """Runs one seed of one variant; first warms the import of ``upcoming`` (the next seed's first run)."""
        if upcoming is not None and not self.stopping.is_set():
            self.runners[upcoming[0]].warm(_spec(upcoming[1], upcoming[2]))
        spec = _spec(seed, repeat)
        runner = self.runners[variant]
        predictions: dict[str, np.ndarray] = {}
        node = self._original_node(variant, seed) if repeat and runner.settings.execution.ray else None
        try:
            trace = runner.run(spec, node)
        except ScriptFailedError as e:
            if self.stopping.is_set():
                return  # killed because the study is ending: not a failure of the script
            if self._broken():
                raise  # the first runs to finish all failed: the script is most likely broken
            result = RunResult(seed, repeat, error=e.message, details=e.details)
        else:
            require_training(trace, runner.target)
            result, predictions = _result(trace, seed, repeat)
            with self.lock:
                self.succeeded = True
        finally:
            shutil.rmtree(runner.workdir / spec.name, ignore_errors=True)  # its mirror and arrays
        if self.stopping.is_set():
            return
        self.stores[variant].save(result, predictions)
        with self.lock:
            self.done[variant][(seed, repeat)] = result
            self.recorded.notify_all()
        if self.on_result is not None:
            self.on_result(variant, result)

    def stop(self) -> None:
        """The study ends early: runs killed from now on are no results, and no run waits any longer."""
        self.stopping.set()
        with self.recorded:
            self.recorded.notify_all()

    def _original_node(self, variant: int, seed: int) -> str | None:
        """The Ray node the first run of ``seed`` ran on, once it ended: its repeat goes there too.

        The repeat is compared bitwise with it, which only means something on one machine.
        """
        with self.recorded:
            self.recorded.wait_for(lambda: (seed, False) in self.done[variant] or self.stopping.is_set())
            original = self.done[variant].get((seed, False))
        return None if original is None else original.environment.get("ray_node_id")

    def _broken(self) -> bool:
        """Counts a failure; whether the first runs to finish all failed (then the study stops)."""
        with self.lock:
            if not self.succeeded:
                self.failed_first += 1
            return not self.succeeded and self.failed_first >= self.broken_after


KEPT = ("predictions/", "activations/", "untrained/")
"""The arrays a study keeps of a run: predictions, and hidden activations (its own and an untrained copy's)."""


def _result(trace: RunTrace, seed: int, repeat: bool) -> tuple[RunResult, dict[str, np.ndarray]]:
    """The study's record of a finished run, and its predictions and activations on the probe batch."""
    with saved_arrays(trace) as arrays:
        predictions = {key: np.array(arrays[key]) for key in arrays.files if key.startswith(KEPT)}
    environment = {
        key: trace.environment.get(key)
        for key in (
            "node",
            "ray_node",
            "ray_node_id",
            "gpu_models",
            "cpu",
            "cpu_count",
            "gpus",
            "tensorflow",
            "keras",
            "python",
            "intra_op_threads",
            "inter_op_threads",
            "process",
        )
    }
    result = RunResult(
        seed=seed,
        repeat=repeat,
        metrics=run_metrics(trace),
        curves=run_curves(trace),
        steps=trace.steps,
        wall_seconds=trace.wall_seconds,
        weights={m.name: combine([f"{n}={v}" for n, v in sorted(m.weights.items())]) for m in trace.models},
        probes={m.name: m.probe for m in trace.models if m.probe is not None},
        environment=environment,
        retries=trace.retries,
        searches=search_records(trace.searches),
    )
    return result, predictions


def variant_key(target: Target, settings: RunSettings, where: str | None = None, studies: Path | None = None) -> str:
    """What decides a run's result besides its seed, hashed (the name of the variant's folder).

    The script's bytes, its arguments, the folder its runs start in, the
    variables it is given, the model-file options, the backend, the Python,
    Keras and backend versions, the variables of the environment that change
    a training's bits (:data:`KEYED_ENV`, those the user set), and the
    machine: this one's architecture and CPU model for local runs, the GPUs
    each run is given on Ray (whose runs land on any node). Every study run
    has op determinism on and its seeds fixed. Any study (``seeds``,
    ``compare``, ``tune``) of the same variant has the same key, so it reuses
    the runs another one stored. The command's own options that decide no
    result (``--jobs``, ``--timeout``: a run it kills is a failed run, never
    reused) are left out.

    The files the runs see in their folder (and in the script's, when that
    lies outside it) are keyed by their paths, sizes and modification times
    (:func:`reprokit.run.workdirs.listing`, ``studies``, the study folder,
    left out): an edited data file or module there makes a new variant, never
    a stale reuse.

    ``where`` stands for the script's and the folder's paths when they lie in
    a temporary folder (a git ref's worktree: its commit and the script's path
    in it, which also decide its files).
    """
    script = Path(target.script)
    content = hashlib.sha256(script.read_bytes()).hexdigest()
    described = {
        "format": FORMAT,
        "script": where or str(script.resolve()),
        "content": content,
        "args": list(target.args),
        "folder": where or str((target.folder or Path.cwd()).resolve()),
        "epochs": settings.model_file.epochs,
        "batch_size": settings.model_file.batch_size,
        "python": platform.python_version(),
        "keras": _version("keras"),
    }
    if where is None:
        folder = (target.folder or Path.cwd()).resolve()
        seen = [folder] + ([script.resolve().parent] if not script.resolve().is_relative_to(folder) else [])
        files = json.dumps([listing(f, studies) for f in seen])
        described["files"] = hashlib.sha256(files.encode()).hexdigest()
    if target.env:  # keys of studies made before environment-passed values stay valid
        described["env"] = dict(target.env)
    environment = dict(keyed_environment())
    if environment:
        described["environment"] = environment
    if settings.execution.ray:
        described["gpus_per_run"] = settings.execution.gpus_per_run
    else:
        described["machine"] = [platform.machine(), cpu_model()]
    backend = settings.backend
    described[backend.value] = installed_version(backend)
    if backend is not Backend.TENSORFLOW:
        described["backend"] = backend.value  # keys of TensorFlow studies made before backends stay valid
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:16]


KEYED_ENV = tuple(name for name in RECORDED_ENV_VARS if name not in CONTROLLED_ENV)
"""The environment variables a study's key holds: those that change a run's bits and reprokit does not set itself."""


def keyed_environment() -> tuple[tuple[str, str], ...]:
    """The variables of :data:`KEYED_ENV` set in this process, with their values, in that order."""
    return tuple((name, os.environ[name]) for name in KEYED_ENV if name in os.environ)


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


__all__ = ["NoTrainingError", "RunResult", "StudyOptions", "VariantRuns", "run_study"]

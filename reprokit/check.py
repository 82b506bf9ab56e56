"""The experiment behind ``reprokit check``: plan the runs, run, compare, classify."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from reprokit import __version__
from reprokit.classify import classify, verdict
from reprokit.compare import Comparison, compare_runs
from reprokit.errors import NoTrainingError, UsageError
from reprokit.report import Report, RunSummary
from reprokit.runner import OnEvent, Runner, Target
from reprokit.settings import DEFAULT_SEED, Controls
from reprokit.trace import RunSpec, RunTrace

PAIRS = (
    ("controlled", "controlled-1", "controlled-2"),
    ("ops", "ops-1", "ops-2"),
    ("seed", "controlled-1", "seed-1"),
)


@dataclass(frozen=True)
class CheckOptions:
    """How to check a script.

    Attributes:
        target: the script, its arguments and the per-run limits.
        seed: the seed S; the seed run uses S + 1.
        quick: run only the controlled pair.
        jobs: how many runs may execute at once.
    """

    target: Target
    seed: int = DEFAULT_SEED
    quick: bool = False
    jobs: int = 1


def plan(seed: int, quick: bool) -> list[RunSpec]:
    """The runs of a check, the controlled pair first."""
    specs = [
        RunSpec("controlled-1", "controlled", Controls(seed, True)),
        RunSpec("controlled-2", "controlled", Controls(seed, True)),
    ]
    if not quick:
        specs += [
            RunSpec("ops-1", "ops", Controls(seed, False)),
            RunSpec("ops-2", "ops", Controls(seed, False)),
            RunSpec("seed-1", "seed", Controls(seed + 1, True)),
        ]
    return specs


def validate_script(script: Path) -> None:
    """Raises UsageError unless ``script`` is a readable file."""
    if not script.exists():
        raise UsageError(f"script not found: {script}")
    if not script.is_file():
        raise UsageError(f"expected a Python script, received a directory: {script}")
    if not os.access(script, os.R_OK):
        raise UsageError(f"script is not readable: {script}")


def run_check(options: CheckOptions, on_event: OnEvent | None = None) -> Report:
    """Runs the experiment on ``options.target`` and returns its report.

    Raises:
        UsageError: the script does not exist or cannot be read.
        NoTrainingError: the script trained no Keras model.
        ScriptFailedError: the script failed or timed out in a run.
    """
    target = options.target
    validate_script(target.script)
    started = time.monotonic()
    specs = plan(options.seed, options.quick)
    with tempfile.TemporaryDirectory(prefix="reprokit-") as workdir:
        runner = Runner(target, Path(workdir), on_event)
        try:
            first = runner.run(specs[0])  # fail fast on a broken script
            if first.steps == 0:
                raise NoTrainingError(
                    f"no Keras training step was observed in {target.script}: it must train a Keras "
                    "model (Model.fit, a custom train_step, or a GradientTape loop that calls "
                    "optimizer.apply_gradients), or define build_model() and load_data()"
                )
            traces = {t.spec.name: t for t in [first, *runner.run_many(specs[1:], options.jobs)]}
        except BaseException:
            runner.kill_all()
            raise
        comparisons = [
            _compare(name, traces[a], traces[b]) for name, a, b in PAIRS if a in traces and b in traces
        ]
    pins = tuple(dict.fromkeys(p for t in traces.values() for p in t.pins))
    findings = classify(comparisons, options.seed, pins)
    return Report(
        script=str(target.script),
        script_args=target.args,
        seed=options.seed,
        verdict=verdict(findings),
        findings=findings,
        comparisons=tuple(comparisons),
        runs=tuple(_summary(traces[s.name]) for s in specs),
        environment=first.environment,
        pins=pins,
        reprokit_version=__version__,
        quick=options.quick,
        wall_seconds=time.monotonic() - started,
        notes=tuple(_notes(list(traces.values()), target)),
    )


def _compare(name: str, a: RunTrace, b: RunTrace) -> Comparison:
    with _arrays(a) as arrays_a, _arrays(b) as arrays_b:
        return compare_runs(name, a, b, arrays_a, arrays_b)


def _arrays(trace: RunTrace) -> Any:
    """The run's final arrays, loaded lazily (an ``NpzFile``, a context manager)."""
    assert trace.arrays_path is not None
    return np.load(trace.arrays_path, allow_pickle=False)


def _summary(trace: RunTrace) -> RunSummary:
    return RunSummary(
        name=trace.spec.name,
        role=trace.spec.role,
        seed=trace.spec.controls.seed,
        op_determinism=trace.spec.controls.op_determinism,
        steps=trace.steps,
        wall_seconds=trace.wall_seconds,
        models=tuple(m.name for m in trace.models),
        final_loss=trace.final_loss(),
        mode=trace.mode,
        op_determinism_observed=trace.environment.get("op_determinism"),
        history={m.name: m.history for m in trace.models if m.history},
    )


def _notes(traces: Sequence[RunTrace], target: Target) -> list[str]:
    notes = []
    modes = {t.mode for t in traces}
    if "model-file" in modes:
        notes.append(
            f"Model file: reprokit trained build_model() on load_data() for {target.epochs} epochs "
            f"with batch size {target.batch_size} (--epochs, --batch-size)."
        )
    elif target.explicit_model_options:
        notes.append(
            "--epochs and --batch-size only apply to model files; this script trains by itself "
            "(pass its own options after --)."
        )
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        notes.append(f"KERAS_BACKEND={backend} was overridden: reprokit checks Keras on TensorFlow.")
    forced = [
        t.spec.name
        for t in traces
        if not t.spec.controls.op_determinism and t.environment.get("op_determinism")
    ]
    if forced:
        notes.append(
            "The script turns op determinism on itself, so the default-ops runs "
            f"({', '.join(forced)}) ran with it too."
        )
    models = sorted({m.name for t in traces for m in t.models})
    if len(models) > 1:
        notes.append(f"{len(models)} models were trained and tracked: {', '.join(models)}.")
    return notes

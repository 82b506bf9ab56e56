"""The experiments behind ``reprokit check`` and ``reprokit baseline``.

``run_check`` plans the runs, runs them, compares the pairs and classifies
the differences (or, with a baseline, compares one controlled run with it);
``make_baseline`` runs the controlled pair and writes the baseline of a run
shown to be reproducible.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from reprokit import __version__, baseline, lockfile
from reprokit.baseline import DEFAULT_ATOL, DEFAULT_RTOL
from reprokit.classify import Finding, add_likely_causes, classify, verdict
from reprokit.compare import Comparison, compare_runs, first_divergence
from reprokit.early import EarlyExit
from reprokit.errors import CheckFailedError, NoTrainingError, ScriptFailedError, UsageError
from reprokit.explain import (
    Explanation,
    explain_replay,
    explain_without_replay,
    not_reproduced,
    nothing_to_explain,
)
from reprokit.lint import GPU_ONLY, LintFinding, hazards_for, lint_source
from reprokit.refusals import DeterminismRefusedError, Refusal
from reprokit.report import NotReproducibleError, Report, RunSummary
from reprokit.runner import OnEvent, Runner, Target
from reprokit.settings import DEFAULT_SEED, Controls, default_jobs
from reprokit.trace import Pin, PipelineCall, RunSpec, RunTrace
from reprokit.vocabulary import Pair, Source, Status, Verdict

REPLAY_MARGIN = 16  # steps replayed past the first divergent one
REPLAY_ATTEMPTS = 2

PAIRS = (
    (Pair.CONTROLLED, "controlled-1", "controlled-2"),
    (Pair.OPS, "ops-1", "ops-2"),
    (Pair.SEED, "controlled-1", "seed-1"),
)


@dataclass(frozen=True)
class CheckOptions:
    """How to check a script.

    Attributes:
        target: the script (or function), its arguments and the per-run limits.
        seed: the seed S; the seed run uses S + 1. A baseline brings its own.
        quick: run only the controlled pair.
        jobs: how many runs may execute at once (None: what the machine can
            take, see :func:`reprokit.settings.default_jobs`).
        full: train every run to the end, even a pair whose divergence is
            already proven (by default such runs stop early, see
            :mod:`reprokit.early`).
        baseline: compare one controlled run with this baseline file instead
            of running the pairs.
        rtol: relative tolerance for losses and metrics when a baseline comes
            from another environment.
        atol: absolute tolerance, likewise.
        explain: find where the first difference comes from (layer, op or
            dataset transformation), replaying the divergent step if needed.
    """

    target: Target
    seed: int = DEFAULT_SEED
    quick: bool = False
    jobs: int | None = None
    full: bool = False
    baseline: Path | None = None
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    explain: bool = False


def plan(seed: int, quick: bool) -> list[RunSpec]:
    """The runs of a check, the controlled pair first."""
    specs = [
        RunSpec("controlled-1", Pair.CONTROLLED, Controls(seed, True)),
        RunSpec("controlled-2", Pair.CONTROLLED, Controls(seed, True)),
    ]
    if not quick:
        specs += [
            RunSpec("ops-1", Pair.OPS, Controls(seed, False)),
            RunSpec("ops-2", Pair.OPS, Controls(seed, False)),
            RunSpec("seed-1", Pair.SEED, Controls(seed + 1, True)),
        ]
    return specs


DATA_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".json", ".jsonl", ".npy", ".npz", ".h5", ".hdf5", ".keras", ".pkl", ".pickle"}
    | {".parquet", ".png", ".jpg", ".jpeg", ".zip", ".gz", ".tar", ".tfrecord", ".pb", ".ipynb", ".md", ".yaml"}
)
"""Files that are no Python script (some would even compile: a CSV of numbers is a tuple expression)."""


def validate_script(script: Path) -> None:
    """Fails before any run unless ``script`` is a readable Python file that compiles.

    Raises:
        UsageError: missing, a folder, unreadable, or a data file (exit 2).
        ScriptFailedError: it does not compile, with the error as Python
            reports it (exit 3, as if the first run had failed on it).
    """
    if not script.exists():
        raise UsageError(f"script not found: {script}")
    if not script.is_file():
        raise UsageError(f"expected a Python script, received a directory: {script}")
    if not os.access(script, os.R_OK):
        raise UsageError(f"script is not readable: {script}")
    if script.suffix.lower() in DATA_SUFFIXES:
        raise UsageError(f"expected a Python script (train.py), received a {script.suffix} file: {script}")
    try:
        compile(script.read_bytes(), str(script), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:  # ValueError: null bytes, before Python 3.11.4
        shown = "".join(traceback.format_exception_only(type(e), e)).rstrip()
        last = shown.splitlines()[-1]
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise ScriptFailedError(f"the script does not compile: {last}{where}", "", shown) from None


def run_check(options: CheckOptions, on_event: OnEvent | None = None) -> Report:
    """Runs the experiment on ``options.target`` and returns its report.

    Raises:
        UsageError: the script does not exist or cannot be read, or the
            baseline is missing, corrupt or for another configuration.
        NoTrainingError: the script trained no Keras model.
        ScriptFailedError: the script failed or timed out in a run.
    """
    if options.baseline is not None:
        return _check_against_baseline(options, options.baseline, on_event)
    started = time.monotonic()
    specs = plan(options.seed, options.quick)
    lint = _lint(options.target)
    with _runs(options, specs, on_event, early=not options.full) as runs:
        traces = runs.traces
        comparisons = [_compare(name, traces[a], traces[b]) for name, a, b in PAIRS if a in traces and b in traces]
        gpu = any(t.environment.get("gpus") for t in traces.values())
        suspects = race_suspects(lint, [c for t in traces.values() for c in t.pipeline], gpu)
        comparisons, more = _confirm_ops(options, comparisons, traces, suspects, on_event)
        written = None if options.quick or runs.refusal else _written(traces)
        if written:
            comparisons, second = _second_training(options, comparisons, traces, on_event)
            more += second
    traces.update({t.spec.name: t for t in more})
    specs += [t.spec for t in more]
    pins = _pins(traces)
    ops_runs = 2 + sum(t.spec.role == Pair.OPS for t in more)
    findings = classify(comparisons, options.seed, pins, runs.refusal, suspects, ops_runs, written)
    findings = add_likely_causes(findings, lint)
    ran = [s for s in specs if s.name in traces]
    explanation = _explain(options, comparisons, traces, on_event) if options.explain else None
    report = _report(options, ran, traces, verdict(findings), findings, tuple(comparisons), started)
    pipeline = tuple(dict.fromkeys(c for t in traces.values() for c in t.pipeline))
    return replace(report, lint=lint, refusal=runs.refusal, explanation=explanation, pipeline=pipeline)


EXTRA_OPS_RUNS = 2
"""Default-ops runs added when the ops pair agreed but the script holds a known race (4 in all)."""


def race_suspects(lint: Sequence[LintFinding], pipeline: Sequence[PipelineCall], gpu: bool = False) -> tuple[str, ...]:
    """What in the script is known to race without op determinism, once per line (``file:line: what``).

    GPU-only hazards count only where the runs had a GPU.
    """
    found: dict[str, str] = {}
    for call in pipeline:
        found.setdefault(call.where or call.call, f"{call.where}: {call.call}" if call.where else call.call)
    for f in hazards_for(Source.NONDETERMINISTIC_OPS, lint):
        if f.code in GPU_ONLY and not gpu:
            continue
        where = f"{Path(f.path).name}:{f.line}"
        found.setdefault(where, f"{where}: {f.message} ({f.code})")
    return tuple(found.values())


def _confirm_ops(
    options: CheckOptions,
    comparisons: list[Comparison],
    traces: dict[str, RunTrace],
    suspects: Sequence[str],
    on_event: OnEvent | None,
) -> tuple[list[Comparison], list[RunTrace]]:
    """Two identical default-ops runs prove little about a known race: run more before concluding.

    Returns the comparisons (the ops pair replaced by the first extra run
    that differs from ops-1) and the extra runs. Adaptive and bounded: only
    when the ops pair agreed and the script holds a suspect, at most
    :data:`EXTRA_OPS_RUNS` more.
    """
    ops = next((c for c in comparisons if c.name == Pair.OPS), None)
    if ops is None or not ops.identical or not suspects or "ops-1" not in traces:
        return comparisons, []
    first = traces["ops-1"]
    specs = [RunSpec(f"ops-{i}", Pair.OPS, first.spec.controls) for i in range(3, 3 + EXTRA_OPS_RUNS)]
    with _runs(options, specs, on_event) as more:
        extra = [more.traces[s.name] for s in specs if s.name in more.traces]
        differing = next((c for c in (_compare(Pair.OPS, first, t) for t in extra) if not c.identical), None)
    if differing is not None:
        comparisons = [differing if c.name == Pair.OPS else c for c in comparisons]
    return comparisons, extra


def _written(traces: dict[str, RunTrace]) -> tuple[str, ...]:
    """The files any run wrote in its working folder, once each."""
    return tuple(sorted({f for t in traces.values() for f in t.files_written}))


def _second_training(
    options: CheckOptions, comparisons: list[Comparison], traces: dict[str, RunTrace], on_event: OnEvent | None
) -> tuple[list[Comparison], list[RunTrace]]:
    """Trains once more, under controlled-1's settings, in a folder holding what controlled-1 wrote.

    It answers "does a second ``python train.py`` in the same folder give the
    same model?" (a script that resumes from its own checkpoint does not).
    It stops where controlled-1 stopped, so that the two compare step by step.
    """
    first = traces.get("controlled-1")
    if first is None or not first.files_written:
        return comparisons, []
    spec = RunSpec("files-1", Pair.FILES, first.spec.controls)
    target = replace(options.target, max_steps=first.steps) if first.stopped_early else options.target
    with _runs(replace(options, target=target), [spec], on_event, carried={spec.name: first}) as more:
        second = more.traces.get(spec.name)
        if second is None:
            return comparisons, []
        return [*comparisons, _compare(Pair.FILES, first, second)], [second]


def _explain(
    options: CheckOptions, comparisons: Sequence[Comparison], traces: dict[str, RunTrace], on_event: OnEvent | None
) -> Explanation | None:
    """Where the first differing pair (controlled before ops) first went apart."""
    pair = next((c for c in comparisons if c.name in (Pair.CONTROLLED, Pair.OPS) and not c.identical), None)
    if pair is None or pair.divergence is None:
        return nothing_to_explain(comparisons)
    d = pair.divergence
    pipeline = tuple(dict.fromkeys(c for name in pair.runs for c in traces[name].pipeline))
    found = explain_without_replay(pair.name, d, pipeline)
    if found is not None:
        return found
    controls = traces[pair.runs[0]].spec.controls
    window = d.step + REPLAY_MARGIN  # a race may strike at another step in the replay
    replay_target = replace(options.target, max_steps=window, explain_step=window)
    for attempt in range(1, REPLAY_ATTEMPTS + 1):
        specs = [RunSpec(f"replay-{attempt}a", "replay", controls), RunSpec(f"replay-{attempt}b", "replay", controls)]
        with _runs(replace(options, target=replay_target), specs, on_event) as runs:
            a, b = (runs.traces.get(s.name) for s in specs)
            again = first_divergence(a.points, b.points) if a is not None and b is not None else None
            if a is not None and b is not None and again is not None:
                return explain_replay(pair.name, again, a.replay.get(again.step), b.replay.get(again.step))
    return not_reproduced(pair.name, d)


def make_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None = None) -> Report:
    """Runs the controlled pair and, if it is identical, writes its baseline to ``path``.

    Raises:
        NotReproducibleError: the two controlled runs differ; nothing is written.
    """
    started = time.monotonic()
    specs = plan(options.seed, quick=True)
    with _runs(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "no baseline was written")
        traces = runs.traces
        comparison = _compare(Pair.CONTROLLED, traces["controlled-1"], traces["controlled-2"])
    findings = classify([comparison], options.seed)
    report = _report(options, specs, traces, verdict(findings), findings, (comparison,), started)
    if not report.reproducible:
        raise NotReproducibleError(
            "no baseline was written: two controlled runs differ, so the script is not reproducible "
            "(run reprokit check to see why)",
            report,
        )
    target = options.target
    config = _baseline_config(target, traces["controlled-1"])
    document = baseline.from_trace(traces["controlled-1"], target.script, target.args, path, config)
    baseline.write(document, path)
    return report


def _check_against_baseline(options: CheckOptions, path: Path, on_event: OnEvent | None) -> Report:
    target = options.target
    validate_script(target.script)
    started = time.monotonic()
    config = {"max_steps": target.max_steps, "epochs": target.epochs, "batch_size": target.batch_size}
    given = {k: v for k, v in config.items() if k == "max_steps" or target.explicit_model_options}
    document = lockfile.load(path, target.script, target.args, config, given)
    specs = [RunSpec("controlled-1", Pair.CONTROLLED, Controls(int(document["seed"]), True))]
    with _runs(options, specs, on_event) as runs:
        _refuse_baseline(runs.refusal, "cannot compare with the baseline")
        traces = runs.traces
        update = lockfile.command("update", target.script, path, target.args, document["config"])
        result = baseline.compare(
            document, traces["controlled-1"], path, options.rtol, options.atol, target.script, update
        )
    not_checked = "Not checked (a baseline check compares one controlled run with the baseline)."
    findings = tuple(Finding(source, Status.NOT_CHECKED, not_checked, runs=0) for source in Source)
    verdict_ = Verdict.MATCHES_BASELINE if result.passed else Verdict.DIFFERS_FROM_BASELINE
    return _report(options, specs, traces, verdict_, findings, (), started, result, int(document["seed"]))


def _refuse_baseline(refusal: Refusal | None, what: str) -> None:
    """A refusal of op determinism fails a baseline command as it fails a check: exit 1."""
    if refusal is not None:
        raise CheckFailedError(f"{what}: TensorFlow refused op determinism: {refusal.error}")


@dataclass
class _Runs:
    """The completed runs of a check, and TensorFlow's refusal of op determinism if there was one."""

    traces: dict[str, RunTrace]
    refusal: Refusal | None = None


@contextmanager
def _runs(
    options: CheckOptions,
    specs: Sequence[RunSpec],
    on_event: OnEvent | None,
    early: bool = False,
    carried: Mapping[str, RunTrace] | None = None,
) -> Iterator[_Runs]:
    """Runs ``specs`` concurrently; their arrays live until the block ends.

    If TensorFlow refuses op determinism, the runs that need it and have not
    started are skipped, and the refusal is kept as a finding; the other runs
    still happen. With ``early``, the runs of a pair whose divergence is
    proven stop early (see :mod:`reprokit.early`). ``carried`` names, per run,
    an earlier run whose written files it starts among.
    """
    target = options.target
    validate_script(target.script)
    jobs = options.jobs or default_jobs(len(specs))
    with tempfile.TemporaryDirectory(prefix="reprokit-") as workdir:
        runner = Runner(target, Path(workdir), on_event)
        runner.carried = dict(carried or {})
        names = {s.name for s in specs}
        if early:
            runner.monitor = EarlyExit([p for p in PAIRS if p[1] in names and p[2] in names], runner.stop)
        done = _Runs({})

        def refused(spec: RunSpec, tolerated: Sequence[Exception]) -> bool:
            return bool(tolerated) and spec.controls.op_determinism

        # Runs linked by pairs start together, so that they can stop early together
        # (see reprokit.early): controlled-1, controlled-2 and seed-1, then the ops
        # pair. The reports list the runs in plan order.
        order = sorted(specs, key=lambda s: s.role == Pair.OPS)
        try:
            results = runner.run_many(
                order,
                jobs,
                tolerate=DeterminismRefusedError,
                skip=refused,
                require=lambda trace: _require_training(trace, target),  # fail fast, the others killed
            )
        except BaseException:
            runner.kill_all()
            raise
        for spec, result in zip(order, results):
            if isinstance(result, RunTrace):
                done.traces[spec.name] = result
            elif isinstance(result, DeterminismRefusedError):
                done.refusal = done.refusal or result.refusal
        yield done  # with no traces at all if every run needed op determinism and TensorFlow refused it


def _require_training(trace: RunTrace, target: Target) -> None:
    if trace.steps == 0:
        raise NoTrainingError(
            f"no Keras training step was observed in {target.label}: it must train a Keras "
            "model (Model.fit, a custom train_step, or a GradientTape loop that calls "
            "optimizer.apply_gradients), or define build_model() and load_data()"
        )


def _lint(target: Target) -> tuple[LintFinding, ...]:
    """The script's lint findings (none if it cannot be read or parsed: running it will say why)."""
    try:
        return tuple(lint_source(target.script.read_text(encoding="utf-8"), str(target.script)))
    except (OSError, UnicodeDecodeError, UsageError):
        return ()


def _baseline_config(target: Target, trace: RunTrace) -> dict[str, Any]:
    config: dict[str, Any] = {"max_steps": target.max_steps}
    if trace.mode == "model-file":
        config.update(epochs=target.epochs, batch_size=target.batch_size)
    return config


def _report(
    options: CheckOptions,
    specs: Sequence[RunSpec],
    traces: dict[str, RunTrace],
    verdict_: Verdict,
    findings: tuple[Finding, ...],
    comparisons: tuple[Comparison, ...],
    started: float,
    baseline_result: baseline.BaselineResult | None = None,
    seed: int | None = None,
) -> Report:
    target = options.target
    environment = traces[specs[0].name].environment if specs else {}
    return Report(
        script=target.label,
        script_args=target.args,
        seed=options.seed if seed is None else seed,
        verdict=verdict_,
        findings=findings,
        comparisons=comparisons,
        runs=tuple(_summary(traces[s.name]) for s in specs),
        environment=environment,
        pins=_pins(traces),
        reprokit_version=__version__,
        quick=options.quick,
        wall_seconds=time.monotonic() - started,
        notes=tuple(_notes(list(traces.values()), target)),
        max_steps=target.max_steps,
        baseline=baseline_result,
    )


def _pins(traces: dict[str, RunTrace]) -> tuple[Pin, ...]:
    """The script's own seed and determinism calls, once each, over all runs."""
    return tuple(dict.fromkeys(p for t in traces.values() for p in t.pins))


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
        stopped_at_max_steps=trace.stopped_at_max_steps,
        stopped_early=trace.stopped_early,
        files_written=trace.files_written,
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
    if any(t.stopped_at_max_steps for t in traces):
        notes.append(f"Every run stopped after {target.max_steps} optimizer steps (--max-steps).")
    early = [f"{t.spec.name} after step {t.steps}" for t in traces if t.stopped_early]
    if early:
        notes.append(
            f"Stopped early once their pair's divergence was proven: {', '.join(early)}; every figure "
            "of a pair compares its two runs at the same step (--full trains every run to the end)."
        )
    threads = {(t.environment.get("intra_op_threads"), t.environment.get("inter_op_threads")) for t in traces}
    if len(threads) > 1:
        notes.append(
            "The runs did not all use the same TensorFlow thread settings (the script sets them itself?): "
            "thread counts change the bits of some models."
        )
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend != "tensorflow":
        notes.append(f"KERAS_BACKEND={backend} was overridden: reprokit checks Keras on TensorFlow.")
    forced = [t.spec.name for t in traces if not t.spec.controls.op_determinism and t.environment.get("op_determinism")]
    if forced:
        notes.append(
            f"The script turns op determinism on itself, so the default-ops runs ({', '.join(forced)}) ran with it too."
        )
    written = sorted({f for t in traces for f in t.files_written})
    if written:
        shown = ", ".join(written[:8]) + (f" and {len(written) - 8} more" if len(written) > 8 else "")
        notes.append(
            f"The runs wrote {shown}, each in a private working folder deleted afterwards: runs never saw "
            "each other's files, and your folder is as it was."
        )
    for t in traces:
        if t.user_files_changed:
            notes.append(
                f"Run {t.spec.name} changed your own {', '.join(t.user_files_changed)} (too large to copy into its "
                "folder, so linked): the script writes over files it also reads."
            )
    models = sorted({m.name for t in traces for m in t.models})
    if len(models) > 1:
        notes.append(
            f"{len(models)} models were trained and tracked: {', '.join(models)}. A step is one optimizer "
            "update of any of them (a batch that updates two models, as in a GAN, counts twice); the final "
            "loss is that of the last model trained."
        )
    return notes

"""The runs of a check: what to run, a batch of runs in one temporary folder, two runs compared.

:func:`run_batch` validates the script, runs specs concurrently (TensorFlow's
refusals of op determinism tolerated, a script that trains nothing stopped at
its first run) and keeps their saved arrays until its block ends;
:func:`compare_pair` compares two of them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from reprokit.checking.baseline import DEFAULT_ATOL, DEFAULT_RTOL
from reprokit.checking.comparison import Comparison, compare_runs
from reprokit.checking.early import EarlyExit
from reprokit.checking.pairalign import align_runs
from reprokit.checking.tracks import tracks
from reprokit.core.controls import DEFAULT_SEED, Controls
from reprokit.core.errors import ScriptFailedError, UsageError
from reprokit.core.refusals import DeterminismRefusedError, Refusal
from reprokit.core.vocabulary import Pair
from reprokit.run.dispatch import jobs_for, runner_for
from reprokit.run.runner import OnEvent, Target
from reprokit.run.script import require_training, validate_script
from reprokit.run.settings import RunSettings
from reprokit.run.trace import RunSpec, RunTrace, saved_arrays

PAIRS = (
    (Pair.CONTROLLED, "controlled-1", "controlled-2"),
    (Pair.OPS, "ops-1", "ops-2"),
    (Pair.SEED, "controlled-1", "seed-1"),
)


@dataclass(frozen=True)
class ResumeAt:
    """Where a resume check stops its run: after optimizer step ``step``, or in the middle of the training (None).

    Raises:
        UsageError: ``step`` is below 1.
    """

    step: int | None = None

    def __post_init__(self) -> None:
        if self.step is not None and self.step < 1:
            raise UsageError(f"expected --resume-at to be an optimizer step of 1 or more, received {self.step}")

    @property
    def option(self) -> str:
        """How the command line says it (``--resume-at 40``, ``--resume``)."""
        return "--resume" if self.step is None else f"--resume-at {self.step}"

    @classmethod
    def of(cls, value: int | str | None) -> ResumeAt | None:
        """``resume_at`` as the API takes it: a step K, ``"middle"``, or None for no resume check.

        Raises:
            UsageError: ``value`` is none of these.
        """
        if value is None:
            return None
        if value == MIDDLE:
            return cls(None)
        if isinstance(value, bool) or not isinstance(value, int):
            raise UsageError(
                f"expected resume_at to be an optimizer step (1 or more) or {MIDDLE!r}, received {value!r}"
            )
        return cls(value)


MIDDLE = "middle"
"""``resume_at`` for a resume check that stops its run in the middle of the training (``--resume``)."""


@dataclass(frozen=True)
class CheckOptions:
    """How to check a script.

    Attributes:
        target: the script (or function), its arguments and its step limit.
        seed: the seed S; the seed run uses S + 1. A baseline brings its own.
        quick: run only the controlled pair.
        full: train every run to the end, even a pair whose divergence is
            already proven (by default such runs stop early, see
            :mod:`reprokit.checking.early`).
        baseline: compare one controlled run with this baseline file instead
            of running the pairs.
        rtol: relative tolerance for losses and metrics when a baseline comes
            from another environment.
        atol: absolute tolerance, likewise.
        explain: find where the first difference comes from (layer, op or
            dataset transformation), replaying the divergent step if needed.
        settings: how every run runs: how many at once, the model-file
            options, where they execute (on a Ray cluster every run of the
            check goes to one node).
        resume: also stop a run after a step and start it again in its
            folder (a resume check, see :mod:`reprokit.checking.resume`).
    """

    target: Target
    seed: int = DEFAULT_SEED
    quick: bool = False
    full: bool = False
    baseline: Path | None = None
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    explain: bool = False
    settings: RunSettings = field(default_factory=RunSettings)
    resume: ResumeAt | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", self.settings.one_backend())  # one, resolved where the options enter
        limit, resume = self.target.max_steps, self.resume
        if resume is not None and resume.step is not None and limit is not None and resume.step >= limit:
            raise UsageError(
                f"{resume.option} with --max-steps {limit}: every run ends after step {limit}, so the stop must "
                f"come before it (a step from 1 to {limit - 1})"
            )


CLOCK_GAP = 3.0
"""Seconds between the starts of the two controlled runs of a script that reads the clock: a seed it takes
from the clock in whole seconds (``int(time.time())``) differs between them, as it would between two
trainings (the other runs keep the cores busy meanwhile). Forked runs keep the gap exactly; fresh processes
(JAX, PyTorch, GPUs) add their import's jitter, which 1.5 s did not absorb on 2 loaded cores (one JAX check
read the same second twice): 3 s leaves 2 s for it."""


def plan(seed: int, quick: bool, clock: bool = False) -> list[RunSpec]:
    """The runs of a check, the controlled pair first; the seed pair's runs save what aligning them needs.

    With ``clock`` (the script may read the clock, :func:`~reprokit.run.script.reads_clock`), the
    second controlled run starts :data:`CLOCK_GAP` seconds after the first.
    """
    specs = [
        RunSpec("controlled-1", Pair.CONTROLLED, Controls(seed, True)),
        RunSpec("controlled-2", Pair.CONTROLLED, Controls(seed, True), start_after=CLOCK_GAP if clock else 0.0),
    ]
    if not quick:
        specs += [
            RunSpec("ops-1", Pair.OPS, Controls(seed, False)),
            RunSpec("ops-2", Pair.OPS, Controls(seed, False)),
            RunSpec("seed-1", Pair.SEED, Controls(seed + 1, True)),
        ]
    aligned = {run for pair, *runs in PAIRS if pair == Pair.SEED for run in runs}
    seed_pair = aligned <= {s.name for s in specs}
    return [replace(s, alignment=seed_pair and s.name in aligned) for s in specs]


@dataclass
class Runs:
    """The completed runs of a check, and TensorFlow's refusal of op determinism if there was one."""

    traces: dict[str, RunTrace]
    refusal: Refusal | None = None
    failed: dict[str, ScriptFailedError] = field(default_factory=dict)
    """Runs started again among another's files that failed (a resume check's resumed run), by name."""


@contextmanager
def run_batch(
    options: CheckOptions,
    specs: Sequence[RunSpec],
    on_event: OnEvent | None,
    early: bool = False,
    carried: Mapping[str, RunTrace] | None = None,
    require: bool = True,
) -> Iterator[Runs]:
    """Runs ``specs`` concurrently; their arrays live until the block ends.

    If TensorFlow refuses op determinism, the runs that need it and have not
    started are skipped, and the refusal is kept as a finding; the other runs
    still happen. With ``early``, the runs of a pair whose divergence is
    proven stop early (see :mod:`reprokit.checking.early`). ``carried`` names, per run,
    an earlier run whose written files it starts among. With ``require``, a
    run that trains nothing ends the batch (the script trains no model).
    """
    target = options.target
    validate_script(target.script)
    ray = options.settings.execution.ray
    with tempfile.TemporaryDirectory(prefix="reprokit-") as workdir:
        runner = runner_for(target, Path(workdir), on_event, options.settings)
        runner.carried = dict(carried or {})
        names = {s.name for s in specs}
        if early and not ray:  # on Ray a stop request cannot be sure to arrive before the step it names
            runner.monitor = EarlyExit([p for p in PAIRS if p[1] in names and p[2] in names], runner.stop)
        done = Runs({})

        def refused(spec: RunSpec, tolerated: Sequence[Exception]) -> bool:
            return spec.controls.op_determinism and any(isinstance(e, DeterminismRefusedError) for e in tolerated)

        def tolerate(spec: RunSpec, error: Exception) -> bool:
            # TensorFlow's refusal is a finding; so is a run started again that fails (it cannot resume)
            return isinstance(error, DeterminismRefusedError) or (
                spec.after is not None and isinstance(error, ScriptFailedError)
            )

        # Runs linked by pairs start together, so that they can stop early together
        # (see reprokit.checking.early): controlled-1, controlled-2 and seed-1, then the ops
        # pair. A run to be stopped early for a resume check goes first, and the run that
        # resumes it right after those pairs, so that it runs beside them. The reports list
        # the runs in plan order.
        def rank(spec: RunSpec) -> tuple[bool, float, int]:
            return spec.role == Pair.OPS, spec.start_after, 0 if spec.preempt_after else 2 if spec.after else 1

        def required(trace: RunTrace) -> None:
            if require and trace.spec.after is None:  # a run started again may have nothing left to train
                require_training(trace, target)

        order = sorted(specs, key=rank)
        try:
            results = runner.run_many(
                order,
                jobs_for(options.settings, len(specs)),
                tolerate=tolerate,
                skip=refused,
                require=required,  # fail fast, the others killed
            )
        except BaseException:
            runner.kill_all()
            raise
        for spec, result in zip(order, results):
            if isinstance(result, RunTrace):
                done.traces[spec.name] = result
            elif isinstance(result, DeterminismRefusedError):
                done.refusal = done.refusal or result.refusal
            elif isinstance(result, ScriptFailedError):
                done.failed[spec.name] = result
        yield done  # with no traces at all if every run needed op determinism and TensorFlow refused it


def compare_pair(name: str, a: RunTrace, b: RunTrace) -> Comparison:
    """Compares two runs; a differing pair's variables are tracked over training, the seed pair's models aligned."""
    with saved_arrays(a) as arrays_a, saved_arrays(b) as arrays_b:
        comparison = compare_runs(name, a, b, arrays_a, arrays_b)
        if not comparison.identical:
            comparison = replace(comparison, tracks=tracks(a, b, arrays_a, arrays_b))
        if name == Pair.SEED and not comparison.identical and comparison.relative_l2 is not None:
            comparison = replace(comparison, alignments=align_runs(a, b, arrays_a, arrays_b))
        return comparison

"""Attributes the differences between runs to their sources (pure logic).

The experiment isolates one factor per pair:

============  ==============================  ===================================
pair          runs                            a difference means
============  ==============================  ===================================
controlled    seed S, op determinism on (x2)  uncontrolled randomness
ops           seed S, default ops (x2)        nondeterministic ops (if controlled
                                              is identical)
seed          seed S vs S+1, determinism on   seed-driven (if controlled is
                                              identical)
files         controlled-1 vs a run started   files read back: a training depends
              among what controlled-1 wrote   on what the last one wrote
============  ==============================  ===================================

Each source gets a :class:`~reprokit.core.vocabulary.Status`: detected or none
when its pair settles it, not checked when its pair did not run (``--quick``),
not separable when uncontrolled randomness already makes every pair differ.

Attribution by time: when the controlled pair first differs at step k > 0 (of
a model), the runs were bit-identical up to step k under one seed and op
determinism. A seed or ops pair that differs strictly earlier (in the same
model: step 0 being the initial weights) shows its own source at work before
the uncontrolled randomness joined in, so that source is detected. Where the
divergences start at the same step, or in other models, they stay not
separable.

The words that findings share (what each source is, its fix, where a pair
first differs and at which stage) are in :mod:`reprokit.checking.evidence`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from reprokit.checking.comparison import Comparison
from reprokit.checking.evidence import EXPLANATIONS, FIXES, OPS_FIXES, pins_text, step_of, where, why_weights
from reprokit.core.backends import Backend
from reprokit.core.refusals import Refusal
from reprokit.core.vocabulary import Pair, Source, Status, Verdict
from reprokit.run.trace import Pin


@dataclass(frozen=True)
class Finding:
    """What the experiment says about one source of differences.

    Attributes:
        source: the source.
        status: detected, none, not checked or not separable.
        evidence: one or two sentences a user can check.
        fix: code to paste (None when there is nothing to fix).
        explanation: what this source is, in plain words (set when detected).
        fix_is_code: whether ``fix`` is code (else a list of options in words).
        runs: how many runs the conclusion rests on (0 when not checked).
    """

    source: Source
    status: Status
    evidence: str
    fix: str | None = None
    explanation: str | None = None
    fix_is_code: bool = True
    runs: int = 2

    @property
    def detected(self) -> bool | None:
        """True, False, or None when not checked or not separable (the JSON's ``detected``)."""
        return self.status.detected

    @property
    def title(self) -> str:
        return self.source.label


def classify(
    comparisons: Sequence[Comparison],
    seed: int,
    pins: Sequence[Pin] = (),
    refusal: Refusal | None = None,
    suspects: Sequence[str] = (),
    ops_runs: int = 2,
    written: Sequence[str] | None = None,
) -> tuple[Finding, ...]:
    """Returns one Finding per source, in the order of :class:`~reprokit.core.vocabulary.Source`.

    Args:
        comparisons: the pairs that were run, by name (``controlled`` is
            required unless TensorFlow refused op determinism).
        seed: the seed S of the controlled runs (used in the fixes).
        pins: calls by which the script fixes seeds or determinism itself.
        refusal: TensorFlow's refusal to run the script with op determinism.
        suspects: constructs of the script known to race without op
            determinism (``file:line: what``): identical default-ops runs are
            then "not observed", never "none".
        ops_runs: how many default-ops runs the ops conclusion rests on.
        written: the files the runs wrote in their working folders (None:
            not looked at, as in ``--quick``).
    """
    by_name = {c.name: c for c in comparisons}
    if refusal is not None:
        return (*_refused(refusal, by_name.get(Pair.OPS)), _not_run(Source.WRITTEN_FILES), _not_run(Source.RESUME))
    controlled = by_name[Pair.CONTROLLED]
    ops = _ops(by_name.get(Pair.OPS), controlled, pins, suspects, ops_runs)
    return (
        _seed(by_name.get(Pair.SEED), controlled, seed, pins),
        ops if ops.status is Status.NOT_CHECKED else replace(ops, runs=ops_runs),
        _uncontrolled(controlled, seed),
        _written_files(by_name.get(Pair.FILES), controlled, written),
        Finding(Source.RESUME, Status.NOT_CHECKED, NOT_ASKED, runs=0),
    )


NOT_ASKED = "Not checked (--resume or --resume-at K stops a run and starts it again)."
"""The resume source's evidence where no resume check was asked for."""


def add_likely_causes(findings: Sequence[Finding], causes: Mapping[Source, Sequence[str]]) -> tuple[Finding, ...]:
    """Adds the script lines that likely cause each detected source (``file:line: what``) to its evidence."""
    linked = []
    for finding in findings:
        lines = causes.get(finding.source, ()) if finding.status is Status.DETECTED else ()
        shown = "; ".join(lines[:3])
        linked.append(replace(finding, evidence=f"{finding.evidence} Likely cause: {shown}") if lines else finding)
    return tuple(linked)


def verdict(findings: Sequence[Finding]) -> Verdict:
    """Reproducible exactly when the controlled pair was shown identical (uncontrolled: none)."""
    uncontrolled = next(f for f in findings if f.source is Source.UNCONTROLLED)
    return Verdict.REPRODUCIBLE if uncontrolled.status is Status.NONE else Verdict.NOT_REPRODUCIBLE


def _refused(refusal: Refusal, ops: Comparison | None) -> tuple[Finding, ...]:
    """Findings when the runs with op determinism could not run at all."""
    where = f" at {refusal.where}" if refusal.where else ""
    op = f" (op {refusal.op})" if refusal.op else ""
    refused = Finding(
        refusal.source,
        Status.DETECTED,
        f"With op determinism on, TensorFlow refused to run the script{where}{op}: {refusal.error} "
        f"It means {refusal.meaning}.",
        refusal.options,
        EXPLANATIONS[refusal.source],
        fix_is_code=False,
        runs=1,
    )
    not_run = _not_run(Source.SEED)
    if refusal.source is Source.NONDETERMINISTIC_OPS:
        uncontrolled = replace(not_run, source=Source.UNCONTROLLED)
        return not_run, refused, uncontrolled
    if ops is None:
        ops_finding = _not_checked(Source.NONDETERMINISTIC_OPS)
    elif ops.identical:
        ops_finding = Finding(
            Source.NONDETERMINISTIC_OPS, Status.NONE, "2 runs with the same seed and default ops are bit-identical."
        )
    else:
        ops_finding = Finding(
            Source.NONDETERMINISTIC_OPS,
            Status.NOT_SEPARABLE,
            "Not separable: 2 runs with default ops differ, but the refused randomness may explain it. Fix that first.",
        )
    return not_run, ops_finding, refused


def _not_run(source: Source) -> Finding:
    return Finding(
        source,
        Status.NOT_CHECKED,
        "Not checked: the runs with op determinism could not run (TensorFlow refused, see above).",
        runs=0,
    )


def _written_files(c: Comparison | None, controlled: Comparison, written: Sequence[str] | None) -> Finding:
    if written is None:
        return _not_checked(Source.WRITTEN_FILES)
    if not written:
        return Finding(
            Source.WRITTEN_FILES,
            Status.NONE,
            "The runs wrote no files in their working folders: nothing carries over from one training to the next.",
        )
    names = ", ".join(written[:5]) + (f" and {len(written) - 5} more" if len(written) > 5 else "")
    if c is None:
        return _not_checked(Source.WRITTEN_FILES)
    if c.identical:
        return Finding(
            Source.WRITTEN_FILES,
            Status.NONE,
            f"A second training in the folder the first wrote to ({names}) is bit-identical to the first.",
        )
    if not controlled.identical:
        return Finding(
            Source.WRITTEN_FILES,
            Status.NOT_SEPARABLE,
            f"Not separable: a second training in the folder the first wrote to ({names}) differs, but so do "
            "two trainings in fresh folders.",
        )
    return Finding(
        Source.WRITTEN_FILES,
        Status.DETECTED,
        f"A second training in the folder the first wrote to ({names}) differs from the first "
        f"{where(c, 'It started from other weights: those the first training saved.')} "
        "The script reads back what it wrote: each training depends on the last one. Two trainings in fresh "
        "folders are bit-identical.",
        FIXES[Source.WRITTEN_FILES],
        EXPLANATIONS[Source.WRITTEN_FILES],
    )


def _not_checked(source: Source) -> Finding:
    return Finding(source, Status.NOT_CHECKED, "Not checked (--quick runs only the controlled pair).", runs=0)


def _earlier(pair: Comparison, controlled: Comparison) -> bool:
    """Whether ``pair`` first differs strictly before the controlled pair does, in the same model."""
    d, k = pair.divergence, controlled.divergence
    return d is not None and k is not None and d.model == k.model and d.step < k.step


def _observed(c: Comparison) -> str:
    """What an identical pair was seen to agree on: every variable at every step, or at its sampled steps."""
    steps = c.steps[0]
    if c.weight_steps is None or c.weight_steps >= steps:
        return f"{steps} steps, every variable at every step"
    return (
        f"{steps} steps: every batch and loss at every step, every variable after {c.weight_steps} sampled "
        "steps and at the end"
    )


def _uncontrolled(c: Comparison, seed: int) -> Finding:
    if c.identical:
        return Finding(
            Source.UNCONTROLLED,
            Status.NONE,
            f"2 runs with seed {seed} and op determinism on are bit-identical ({_observed(c)}).",
        )
    return Finding(
        Source.UNCONTROLLED,
        Status.DETECTED,
        f"2 runs with seed {seed} and op determinism on differ {where(c)}",
        FIXES[Source.UNCONTROLLED].format(seed=seed),
        EXPLANATIONS[Source.UNCONTROLLED],
    )


def _ops(
    c: Comparison | None, controlled: Comparison, pins: Sequence[Pin], suspects: Sequence[str], runs: int
) -> Finding:
    if c is None:
        return _not_checked(Source.NONDETERMINISTIC_OPS)
    own = pins_text(pins, "determinism")
    if c.identical and suspects and not own:
        return Finding(
            Source.NONDETERMINISTIC_OPS,
            Status.NOT_OBSERVED,
            f"Not observed in {runs} runs with the same seed and default ops (all bit-identical), but the script "
            f"holds what is known to race without op determinism: {'; '.join(suspects[:3])}. Identical runs "
            "do not rule out a rare race.",
            FIXES[Source.NONDETERMINISTIC_OPS],
            EXPLANATIONS[Source.NONDETERMINISTIC_OPS],
        )
    if c.identical:
        note = f" The script enables op determinism itself ({own})." if own else ""
        return Finding(
            Source.NONDETERMINISTIC_OPS,
            Status.NONE,
            f"{runs} runs with the same seed and default ops are bit-identical.{note}",
        )
    if not controlled.identical and not _earlier(c, controlled):
        return Finding(
            Source.NONDETERMINISTIC_OPS,
            Status.NOT_SEPARABLE,
            "Not separable: 2 runs with default ops differ, but so do the controlled "
            "runs, so uncontrolled randomness may explain it. Fix that first.",
        )
    if not controlled.identical:
        return Finding(
            Source.NONDETERMINISTIC_OPS,
            Status.DETECTED,
            f"2 runs with the same seed and default ops differ {where(c)} With op determinism on, the same "
            f"runs stayed bit-identical until {step_of(controlled)}: the ops differ before the uncontrolled "
            "randomness joins in.",
            FIXES[Source.NONDETERMINISTIC_OPS],
            EXPLANATIONS[Source.NONDETERMINISTIC_OPS],
        )
    return Finding(
        Source.NONDETERMINISTIC_OPS,
        Status.DETECTED,
        f"2 runs with the same seed and default ops differ {where(c)} "
        "With op determinism on, the same runs are bit-identical.",
        FIXES[Source.NONDETERMINISTIC_OPS],
        EXPLANATIONS[Source.NONDETERMINISTIC_OPS],
    )


def _seed(c: Comparison | None, controlled: Comparison, seed: int, pins: Sequence[Pin]) -> Finding:
    own = pins_text(pins, "seed")
    pinned = f"Your script pins its seed itself ({own}); the seed pair therefore" if own else ""
    if c is None:
        quick = _not_checked(Source.SEED)
        if not own:
            return quick
        reach = f" {pinned} would show only what that call does not reach."
        return replace(quick, evidence=quick.evidence + reach)
    if c.identical:
        if own:
            return Finding(
                Source.SEED,
                Status.NONE,
                f"{pinned} runs with your seed, not reprokit's {seed} and {seed + 1}: its runs are "
                "bit-identical, and every training of the script starts from the same random numbers.",
            )
        why = "this training does not depend on the seed"
        return Finding(Source.SEED, Status.NONE, f"Runs with seeds {seed} and {seed + 1} are bit-identical: {why}.")
    if not controlled.identical and not _earlier(c, controlled):
        return Finding(
            Source.SEED,
            Status.NOT_SEPARABLE,
            f"Not separable: runs with seeds {seed} and {seed + 1} differ, but so do runs with the same seed.",
        )
    partial = (
        f" {pinned} shows what that call leaves unseeded: something draws random numbers before it, or from a "
        "generator it does not reset."
        if own
        else ""
    )
    if not controlled.identical:
        return Finding(
            Source.SEED,
            Status.DETECTED,
            f"Runs with seeds {seed} and {seed + 1} differ {where(c)} Runs with the same seed stayed "
            f"bit-identical until {step_of(controlled)}: the seed changes the result before the uncontrolled "
            f"randomness joins in.{partial}{why_weights(c)}",
            FIXES[Source.SEED].format(seed=seed),
            EXPLANATIONS[Source.SEED],
        )
    return Finding(
        Source.SEED,
        Status.DETECTED,
        f"Runs with seeds {seed} and {seed + 1} differ {where(c)} Runs with the same seed are bit-identical."
        f"{partial}{why_weights(c)}",
        FIXES[Source.SEED].format(seed=seed),
        EXPLANATIONS[Source.SEED],
    )


def fixes_for(findings: Sequence[Finding], backend: Backend) -> tuple[Finding, ...]:
    """The findings with the nondeterministic-ops fix of ``backend`` (:data:`FIXES` are TensorFlow's)."""
    fix = OPS_FIXES.get(backend)
    if fix is None:
        return tuple(findings)
    return tuple(replace(f, fix=fix) if f.source is Source.NONDETERMINISTIC_OPS and f.fix else f for f in findings)

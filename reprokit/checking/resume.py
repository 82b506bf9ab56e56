"""Does a training that is stopped and run again end with the same model? (pure logic)

A resume check (``reprokit check --resume-at K``) runs the script with the
controlled settings (one seed, op determinism on), every run observing the
whole training state (:mod:`reprokit.worker.state`): the uninterrupted run
(the controlled pair's first), a run killed right after optimizer step K as
a preempted machine's would be, and the same command once more in the folder
the killed run left, so that the script's own resume logic picks up
whatever it saved. Any difference is then the resume's doing.

:mod:`reprokit.checking.restart` finds where the resumed run started and
numbers its steps as the uninterrupted run's; :func:`analyse` gives the
verdict and names the state the resumed run lacked
(:mod:`reprokit.checking.lost`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reprokit.checking.comparison import Comparison, first_divergence
from reprokit.checking.lost import Lost, State, lost_state
from reprokit.checking.restart import starting_points, weights_of
from reprokit.core.vocabulary import Word
from reprokit.run.trace import RunTrace


class Resumed(Word):
    """What a training stopped after step K and run again did."""

    EXACTLY = "resumes_exactly"
    REPLAYS = "replays"
    DIFFERENT_MODEL = "different_model"
    STARTS_OVER = "starts_over"
    FAILS = "fails"
    NOT_JUDGED = "not_judged"

    @property
    def words(self) -> str:
        """The verdict in plain words (``resumes with a different model``)."""
        return _WORDS[self]

    @property
    def good(self) -> bool:
        """Whether the resumed training ended with the uninterrupted training's model."""
        return self in (Resumed.EXACTLY, Resumed.REPLAYS)


_WORDS = {
    Resumed.EXACTLY: "resumes exactly",
    Resumed.REPLAYS: "replays from an earlier point",
    Resumed.DIFFERENT_MODEL: "resumes with a different model",
    Resumed.STARTS_OVER: "starts over",
    Resumed.FAILS: "fails after the restart",
    Resumed.NOT_JUDGED: "not judged",
}


@dataclass(frozen=True)
class ResumeResult:
    """What a resume check found.

    Attributes:
        verdict: resumes exactly, replays, different model, starts over, or not judged.
        stopped_after: K, the last optimizer step of the stopped run.
        steps: the uninterrupted run's optimizer steps.
        model: the model the verdict is about (the first the uninterrupted run trained).
        resumed_from: the uninterrupted run's step whose weights the resumed
            run started from (0: the initial weights; None: no step's).
        resumed_steps: the optimizer steps the resumed run made.
        first_difference: the first step (numbered as in the uninterrupted run)
            after which the resumed run's state differs (None: none does).
        first_weights_difference: the first such step at which its weights differ.
        differing: what differs at ``first_difference`` (variable and state names).
        final_identical: whether the final weights of every model are bitwise identical.
        lost: the state the resumed run did not get back, each with its evidence and fix.
        written: the files the stopped run wrote (what there was to resume from).
        evidence: the verdict's evidence, in a few sentences.
    """

    verdict: Resumed
    stopped_after: int
    steps: int
    model: str
    resumed_from: int | None
    resumed_steps: int
    first_difference: int | None
    first_weights_difference: int | None
    differing: tuple[str, ...]
    final_identical: bool
    lost: tuple[Lost, ...]
    written: tuple[str, ...]
    evidence: str

    @property
    def replayed(self) -> tuple[int, int] | None:
        """The steps the resumed run did a second time (first, last), if it resumed before the stop."""
        j, k = self.resumed_from, self.stopped_after
        return (j + 1, k) if j is not None and 0 < j < k else None


def analyse(
    uninterrupted: RunTrace,
    stopped: RunTrace,
    resumed: RunTrace,
    stopped_after: int,
    comparison: Comparison,
    controlled: Comparison | None = None,
) -> ResumeResult:
    """The verdict of a resume check, and the state the resumed run lacked.

    A difference after the restart is the resume's doing only where two
    trainings without a stop are still identical: where the controlled pair
    differs at or before it, the resume is not judged.

    Args:
        uninterrupted: the controlled run that trained to the end.
        stopped: the run killed after step ``stopped_after``.
        resumed: the run started again in the stopped run's folder.
        stopped_after: K.
        comparison: :func:`comparable`'s runs compared.
        controlled: the controlled pair compared (None: not known).
    """
    model = uninterrupted.models[0].name if uninterrupted.models else ""
    steps = next((m.steps for m in uninterrupted.models if m.name == model), uninterrupted.steps)
    base = ResumeResult(
        Resumed.NOT_JUDGED, stopped_after, steps, model, None, resumed.steps, None, None, (), False, (), (), ""
    )
    base = replace(base, written=stopped.files_written)
    before = _differs_before_stop(uninterrupted, stopped)
    if before is not None:
        return replace(
            base,
            evidence=f"Not judged: the uninterrupted run and the stopped run already differ at step {before}, "
            "before the stop, although both ran with the same seed and op determinism on: the training is not "
            "reproducible, so a difference after the restart could not be put down to the resume "
            "(reprokit check says why).",
        )
    finals = {m.name: dict(m.weights) for m in uninterrupted.models}
    final_identical = finals == {m.name: dict(m.weights) for m in resumed.models}
    base = replace(base, final_identical=final_identical)
    starts = starting_points(uninterrupted, resumed, stopped_after)
    if model not in starts:
        verdict = Resumed.EXACTLY if final_identical else Resumed.DIFFERENT_MODEL
        said = "ends with the same model" if final_identical else "ends with a different model"
        return replace(base, verdict=verdict, evidence=f"The resumed run made no optimizer step of {model} and {said}.")
    j = starts[model]
    first, first_weights, differing = _first_differences(uninterrupted, resumed, j)
    lost = lost_state(uninterrupted, resumed, model, j, first, stopped.files_written, comparison)
    base = replace(
        base,
        resumed_from=j,
        first_difference=first,
        first_weights_difference=first_weights,
        differing=differing,
        lost=lost,
    )
    apart = _controlled_apart(controlled)
    if apart is not None and (first is None or apart <= first):
        return replace(base, verdict=Resumed.NOT_JUDGED, lost=(), evidence=_apart(apart))
    if j is None:
        return replace(
            base,
            verdict=Resumed.DIFFERENT_MODEL,
            evidence=f"The resumed run started {model} from weights the uninterrupted run never had at steps "
            f"0 to {stopped_after}: it read a checkpoint of another state{_final(base)}.",
        )
    if j == 0:
        return replace(base, verdict=Resumed.STARTS_OVER, evidence=_starts_over(base))
    if comparison.identical:
        verdict = Resumed.EXACTLY if j == stopped_after else Resumed.REPLAYS
        return replace(base, verdict=verdict, evidence=_same_model(base))
    return replace(base, verdict=Resumed.DIFFERENT_MODEL, evidence=_different(base))


def failed(uninterrupted: RunTrace, stopped: RunTrace, stopped_after: int, error: str, details: str) -> ResumeResult:
    """The verdict where the script, run again among what the stopped run left, failed (it cannot resume)."""
    last = next((line.strip() for line in reversed(details.splitlines()) if line.strip()), "")
    said = f" ({last})" if last and last not in error else ""
    model = uninterrupted.models[0].name if uninterrupted.models else ""
    return ResumeResult(
        Resumed.FAILS,
        stopped_after,
        uninterrupted.steps,
        model,
        None,
        0,
        None,
        None,
        (),
        False,
        (),
        stopped.files_written,
        f"Stopped after step {stopped_after} and run again among what it left, the script failed: {error}{said}. "
        "A training that cannot start again after a preemption loses all its work; run it twice in one folder, "
        "the first time stopped, to see the traceback.",
    )


def not_judged(uninterrupted: RunTrace, stopped_after: int, controlled: Comparison) -> ResumeResult:
    """The verdict where the uninterrupted run stopped early, its pair having proven that it differs."""
    model = uninterrupted.models[0].name if uninterrupted.models else ""
    apart = _controlled_apart(controlled) or 0
    return ResumeResult(
        Resumed.NOT_JUDGED,
        stopped_after,
        uninterrupted.steps,
        model,
        None,
        0,
        None,
        None,
        (),
        False,
        (),
        (),
        _apart(apart),
    )


def _apart(step: int) -> str:
    return (
        f"Not judged: two controlled trainings without a stop already differ from step {step}, so a difference "
        "after the restart could not be put down to the resume (see the uncontrolled source)."
    )


def _controlled_apart(controlled: Comparison | None) -> int | None:
    """The step from which two trainings without a stop differ (None: they do not)."""
    if controlled is None or controlled.identical:
        return None
    return controlled.first_divergent_step or 0


def _differs_before_stop(uninterrupted: RunTrace, stopped: RunTrace) -> int | None:
    """The first step at which the stopped run differs from the uninterrupted one (None: identical up to the stop)."""
    reached = {(p.model, p.step) for p in stopped.points}
    d = first_divergence(stopped.points, [p for p in uninterrupted.points if (p.model, p.step) in reached])
    return None if d is None else d.step


def _first_differences(
    uninterrupted: RunTrace, resumed: RunTrace, start: int | None
) -> tuple[int | None, int | None, tuple[str, ...]]:
    """The first step after the restart whose state differs, the first whose weights do, and what differs first."""
    if start is None:
        return None, None, ()
    model = next(p.model for p in resumed.points if p.step == 0)
    theirs = {p.step: p for p in uninterrupted.points if p.model == model}
    first: int | None = None
    first_weights: int | None = None
    differing: tuple[str, ...] = ()
    for point in (p for p in resumed.points if p.model == model and p.step > 0):
        other = theirs.get(point.step + start)
        if other is None:
            break
        if first is None and (point.weights != other.weights or point.inputs != other.inputs):
            first = other.step
            names = sorted(point.weights.keys() | other.weights.keys())
            differing = tuple(n for n in names if point.weights.get(n) != other.weights.get(n))
        if weights_of(point) != weights_of(other):
            first_weights = other.step
            break
    return first, first_weights, differing


def _final(result: ResumeResult) -> str:
    return ", and ended with the same model" if result.final_identical else ", and ended with a different model"


def _starts_over(result: ResumeResult) -> str:
    k, n = result.stopped_after, result.steps
    if result.written:
        files = ", ".join(result.written[:3]) + (
            f" and {len(result.written) - 3} more" if len(result.written) > 3 else ""
        )
        read = f"The stopped run wrote {files}, but the run started again did not resume from it"
    else:
        read = "The stopped run wrote no file to resume from"
    return (
        f"Stopped after step {k} of {n} and run again, the training started over from its initial weights "
        f"and made {result.resumed_steps} steps again. {read}: the {k} steps done before the stop were lost"
        f"{_final(result)}."
    )


def _where(result: ResumeResult, checkpoint: str = "") -> str:
    """``resumed from step K``, or ``resumed from step j{checkpoint} and replayed steps j+1–K``."""
    replayed = result.replayed
    if replayed is None:
        return f"resumed from step {result.stopped_after}"
    return f"resumed from step {result.resumed_from}{checkpoint} and replayed steps {replayed[0]}–{replayed[1]}"


def _same_model(result: ResumeResult) -> str:
    k = result.stopped_after
    where = _where(result, " (the last checkpoint)")
    extra = [x for x in result.lost if x.state is State.CALLBACKS]
    kept = f" {extra[0].evidence} It did not change the model here." if extra else ""
    return (
        f"Stopped after step {k} of {result.steps} and run again, the training {where}: every later step and "
        f"the final weights are bit-identical to the uninterrupted run's.{kept}"
    )


def _different(result: ResumeResult) -> str:
    k, j = result.stopped_after, result.resumed_from
    where = _where(result)
    first = (
        f" Its state first differs after step {result.first_difference}"
        + (
            f" (its weights after step {result.first_weights_difference})"
            if result.first_weights_difference not in (None, result.first_difference)
            else ""
        )
        + "."
        if result.first_difference is not None
        else ""
    )
    names = "; ".join(x.state.label for x in result.lost)
    lacking = f" Not restored: {names}." if names else ""
    left = result.steps - (j or 0)
    if result.resumed_steps != left:
        lacking += f" It made {result.resumed_steps} steps after the restart where {left} were left."
    return (
        f"Stopped after step {k} of {result.steps} and run again, the training {where}, but ends with a "
        f"different model than the uninterrupted run.{first}{lacking}"
    )

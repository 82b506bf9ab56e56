"""Compares two runs step by step and variable by variable (pure logic).

Identity is decided on fingerprints alone (bitwise: NaN equals NaN at the same
position). Sizes of differences (max |Δw|, relative L2) and prediction
agreement come from the final arrays each run saved.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from reprokit.core.fingerprint import rows_of
from reprokit.run.arrays import release
from reprokit.run.trace import Point, RunTrace
from reprokit.weights.matching import ModelAlignment
from reprokit.weights.similarity import class_agreement

Arrays = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class VariableDiff:
    """How much one variable's final values differ between two runs."""

    model: str
    variable: str
    max_abs_diff: float
    relative_l2: float


@dataclass(frozen=True)
class Divergence:
    """The first point at which two runs differ.

    Attributes:
        model: the model whose weights differ first.
        step: 0 for the initial weights, k for after the k-th optimizer step.
        variables: the variables that differ there.
        inputs_differ: whether that step's input batches already differed
            (None where they were not observed).
        input_change: how the inputs differ: ``order`` (the same examples,
            in another order), ``values`` (other examples or other values),
            or None (inputs identical or not observed).
        after: where the runs fingerprinted their weights at sampled steps
            only (``Target.sampled``) and steps between the last equal sample
            and ``step`` went unfingerprinted: that last equal step (the first
            divergence lies in ``after + 1 … step``, and ``variables`` are
            those that differ at ``step``); None: ``step`` is exact.
        located: ``step`` was found by replaying the pair's training up to
            the sample it was first seen at, with every step fingerprinted
            (:mod:`reprokit.checking.locate`).
    """

    model: str
    step: int
    variables: tuple[str, ...]
    inputs_differ: bool | None
    input_change: str | None = None
    after: int | None = None
    located: bool = False

    @property
    def steps(self) -> str:
        """Where, in words: ``initial weights``, ``step 7``, or ``steps 65–128`` (between two samples)."""
        if self.after is not None:
            return f"steps {self.after + 1}–{self.step}"
        return "initial weights" if self.step == 0 else f"step {self.step}"

    @property
    def stage(self) -> str | None:
        """Where training first went apart: initialization, input pipeline or computation (None: unknown)."""
        if self.after is not None:
            return None
        if self.step == 0:
            return "initialization"
        if self.inputs_differ is None:
            return None
        return "input pipeline" if self.inputs_differ else "computation"


@dataclass(frozen=True)
class Track:
    """One variable of a pair of runs over training.

    Attributes:
        model: the model's label.
        variable: the variable's name.
        first_step: the first step at which its fingerprints differ (0: the
            initial weights; None: identical at every step observed).
        steps: the steps its distance is known at (snapshots and the end).
        relative_l2: ``‖a − b‖ / ‖a‖`` at each of ``steps``.
        sampled: the distances before the end rest on a fixed sample of the
            variable's values (it is larger than a snapshot keeps).
    """

    model: str
    variable: str
    first_step: int | None
    steps: tuple[int, ...]
    relative_l2: tuple[float, ...]
    sampled: bool = False


def short_name(model: str, variable: str) -> str:
    """``variable`` without its leading model name (``dense/kernel`` for ``sequential/dense/kernel``)."""
    prefix = model.split("#", 1)[0] + "/"
    return variable[len(prefix) :] if variable.startswith(prefix) else variable


@dataclass(frozen=True)
class Comparison:
    """The result of comparing two runs."""

    name: str
    runs: tuple[str, str]
    identical: bool
    divergence: Divergence | None
    steps: tuple[int, int]
    max_abs_diff: float | None
    relative_l2: float | None
    prediction_agreement: float | None
    final_losses: tuple[float | None, float | None]
    variables: tuple[VariableDiff, ...] = ()
    xla_steps: bool = False  # some steps were XLA-compiled: their inputs were not observed
    alignments: tuple[ModelAlignment, ...] = ()  # the seed pair: why its weights differ (reprokit.checking.pairalign)
    tracks: tuple[Track, ...] = ()  # a differing pair: each variable over training (see reprokit.checking.tracks)
    max_abs_diff_unmeasured: str = ""  # why max_abs_diff is None ("" where it was measured)
    prediction_agreement_unmeasured: str = ""  # why prediction_agreement is None
    weight_steps: int | None = None  # steps after which the first run fingerprinted its weights (sampled: fewer)

    @property
    def first_divergent_step(self) -> int | None:
        return self.divergence.step if self.divergence else None

    @property
    def first_divergent_variables(self) -> tuple[str, ...]:
        return self.divergence.variables if self.divergence else ()


def compare_runs(name: str, a: RunTrace, b: RunTrace, arrays_a: Arrays, arrays_b: Arrays) -> Comparison:
    """Compares run ``a`` with run ``b``.

    Args:
        name: the comparison's name (``controlled``, ``ops``, ``seed``).
        a: the first run.
        b: the second run.
        arrays_a: ``a``'s saved final arrays (``weights/<model>/<var>``,
            ``predictions/<model>/<i>``).
        arrays_b: the same for ``b``.

    Returns:
        The comparison; ``identical`` is True only if every fingerprint of
        every model at every step and at the end is the same in both.
    """
    divergence = first_divergence(a.points, b.points)
    finals_a = {m.name: dict(m.weights) for m in a.models}
    finals_b = {m.name: dict(m.weights) for m in b.models}
    if divergence is None and finals_a != finals_b:
        divergence = _final_divergence(finals_a, finals_b, a, b)
        last = _last_fingerprinted(a.points, b.points, divergence.model)
        if last is not None and last < divergence.step:
            divergence = replace(divergence, after=last)
    apart = ""
    if (a.stopped_early or b.stopped_early) and a.steps != b.steps:
        # Stopped early at different steps: the final arrays are not of the same moment.
        arrays_a = arrays_b = {}
        apart = f"the runs stopped early after different steps ({a.steps} and {b.steps}): no final moment in common"
    stats = _variable_diffs(arrays_a, arrays_b)  # each array is read once, in chunks
    variables = [v for v, _, _ in stats]
    unmeasured = apart or _weights_unmeasured(arrays_a, arrays_b)
    comparable = not unmeasured
    max_abs = max((v.max_abs_diff for v in variables), default=0.0) if comparable else None
    agreement, no_agreement = _prediction_agreement(a, b, arrays_a, arrays_b)
    relative_l2 = _ratio(math.sqrt(sum(s for _, s, _ in stats)), math.sqrt(sum(n for _, _, n in stats)))
    return Comparison(
        name=name,
        runs=(a.spec.name, b.spec.name),
        identical=divergence is None,
        divergence=divergence,
        steps=(a.steps, b.steps),
        max_abs_diff=max_abs,
        relative_l2=relative_l2 if comparable else None,
        prediction_agreement=agreement,
        final_losses=(a.final_loss(), b.final_loss()),
        variables=tuple(sorted((v for v in variables if v.max_abs_diff > 0), key=lambda v: -v.max_abs_diff)),
        xla_steps=a.xla_steps or b.xla_steps,
        max_abs_diff_unmeasured=unmeasured,
        prediction_agreement_unmeasured="" if agreement is not None else (apart or no_agreement),
        weight_steps=len({p.step for p in a.points if p.weights and p.step > 0}),
    )


ORDER_HORIZON = 32
"""Steps on either side of a divergent batch within which its examples are looked for in the other run."""

PENDING = "pending"
"""What :func:`input_change` says while the runs have not gone far enough to tell."""


def first_divergence(a: Sequence[Point], b: Sequence[Point], final: bool = True) -> Divergence | None:
    """The first point, in ``a``'s order, that ``b`` lacks or records differently.

    With ``final`` False the runs are still going: a divergence whose input
    change is not settled yet has ``input_change`` :data:`PENDING`.
    """
    index_b = {(p.model, p.step): p for p in b}
    index_a = {(p.model, p.step) for p in a}
    equal: dict[str, int] = {}  # per model, the last step its weights were fingerprinted equal at,
    skipped: set[str] = set()  # and whether steps after it were not fingerprinted (sampled)
    for point in a:
        other = index_b.get((point.model, point.step))
        if other is None:
            return Divergence(point.model, point.step, (), None)
        if not (point.weights and other.weights):
            skipped.add(point.model)
            continue
        if point.weights != other.weights:
            names = sorted(set(point.weights) | set(other.weights))
            changed = tuple(n for n in names if point.weights.get(n) != other.weights.get(n))
            inputs = None if not (point.inputs and other.inputs) else point.inputs != other.inputs
            change = input_change(a, b, point.model, point.step, final) if inputs else None
            after = equal.get(point.model) if point.model in skipped else None
            return Divergence(point.model, point.step, changed, inputs, change, after)
        equal[point.model] = point.step
        skipped.discard(point.model)
    for point in b:  # b went on where a stopped (more steps, or another model)
        if (point.model, point.step) not in index_a:
            return Divergence(point.model, point.step, (), None)
    return None


def input_change(a: Sequence[Point], b: Sequence[Point], model: str, step: int, final: bool = True) -> str | None:
    """``order`` if both runs fed the same examples at ``step``, only in another order; else ``values``.

    The examples (row digests) of each run's batch at ``step`` are looked for
    among the other run's batches within :data:`ORDER_HORIZON` steps of it: a
    reordering (a shuffle, a parallel interleave) moves examples by a few
    batches; augmentation or other data changes the rows themselves. The
    window is bounded so that runs stopped early decide exactly as full runs.
    None if the inputs were not observed; :data:`PENDING` if ``final`` is
    False and neither answer is certain yet.
    """
    batch_a, batch_b = _rows(a, model, step, step), _rows(b, model, step, step)
    if not batch_a or not batch_b:
        return None
    low, high = step - ORDER_HORIZON, step + ORDER_HORIZON
    if batch_a <= _rows(b, model, low, high) and batch_b <= _rows(a, model, low, high):
        return "order"
    if final or min(_last_step(a, model), _last_step(b, model)) >= high:
        return "values"
    return PENDING


def _rows(points: Sequence[Point], model: str, low: int, high: int) -> set[str]:
    steps = [p for p in points if p.model == model and low <= p.step <= high]
    return {row for p in steps for text in p.input_rows for row in rows_of(text)}


def _last_fingerprinted(a: Sequence[Point], b: Sequence[Point], model: str) -> int | None:
    """The last step both runs fingerprinted ``model``'s weights at, if a step after it went unfingerprinted."""
    steps_b = {p.step for p in b if p.model == model and p.weights}
    last = max((p.step for p in a if p.model == model and p.weights and p.step in steps_b), default=0)
    skipped = any(not p.weights and p.step > last for p in (*a, *b) if p.model == model)
    return last if skipped else None


def _last_step(points: Sequence[Point], model: str) -> int:
    return max((p.step for p in points if p.model == model), default=0)


def _final_divergence(
    finals_a: dict[str, dict[str, str]], finals_b: dict[str, dict[str, str]], a: RunTrace, b: RunTrace
) -> Divergence:
    for model in sorted(set(finals_a) | set(finals_b)):
        wa, wb = finals_a.get(model, {}), finals_b.get(model, {})
        if wa != wb:
            changed = tuple(n for n in sorted(set(wa) | set(wb)) if wa.get(n) != wb.get(n))
            steps = {m.name: m.steps for m in (*a.models, *b.models)}
            return Divergence(model, steps.get(model, 0), changed, None)
    raise ValueError("the final weights do not differ")


def _weight_keys(arrays: Arrays) -> set[str]:
    return {k for k in arrays if k.startswith("weights/")}


def _weights_unmeasured(a: Arrays, b: Arrays) -> str:
    """Why the final weights of two runs cannot be compared value by value ("": they can)."""
    keys_a, keys_b = _weight_keys(a), _weight_keys(b)
    if not keys_a or not keys_b:
        return "a run saved no final weights"
    only = sorted(keys_a ^ keys_b)
    if only:
        return f"the runs' final weights are not the same variables ({only[0].removeprefix('weights/')} is in one only)"
    shapes = sorted(k for k in keys_a if a[k].shape != b[k].shape)
    if shapes:
        k = shapes[0]
        return f"a variable has other shapes in the two runs ({k.removeprefix('weights/')}: {a[k].shape}, {b[k].shape})"
    return ""


def abs_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| in float64, where bitwise-equal NaNs count as 0 and a NaN against a number as inf."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(x - y)
    same = (x == y) | (np.isnan(x) & np.isnan(y))
    diff = np.where(same, 0.0, diff)
    return np.where(np.isnan(diff), np.inf, diff)


CHUNK = 1 << 20
"""Elements compared at a time, so that the parent's memory stays flat as models grow."""


def _variable_diffs(a: Arrays, b: Arrays) -> list[tuple[VariableDiff, float, float]]:
    """Per variable: its diff, the sum of squared differences and the sum of squares of ``a``."""
    diffs = []
    for key in sorted(_weight_keys(a) & _weight_keys(b)):
        x, y = a[key], b[key]
        if x.shape != y.shape:
            continue
        x, y = x.reshape(-1), y.reshape(-1)
        largest = squared = norm = 0.0
        for start in range(0, x.size, CHUNK):
            xs, ys = x[start : start + CHUNK], y[start : start + CHUNK]
            d = abs_diff(xs, ys)
            largest = max(largest, float(d.max()))
            squared += float(np.sum(np.square(d)))
            norm += float(np.sum(np.square(np.nan_to_num(xs.astype(np.float64)))))
            release(x)  # a mapped variable's pages go back once read: memory stays flat at any size
            release(y)
        _, model, variable = key.split("/", 2)
        diff = VariableDiff(model, variable, largest, _ratio(math.sqrt(squared), math.sqrt(norm)))
        diffs.append((diff, squared, norm))
    return diffs


def _ratio(num: float, den: float) -> float:
    if num == 0:
        return 0.0
    return num / den if den > 0 else math.inf


def _prediction_agreement(a: RunTrace, b: RunTrace, arrays_a: Arrays, arrays_b: Arrays) -> tuple[float | None, str]:
    """Share of probe examples on which both final models predict the same class, and why it is None.

    The probe is the first rows of the training inputs. Only computed when both
    runs used the very same probe; None for outputs that are not classes.
    """
    probes_a = {m.name: m.probe for m in a.models}
    agreements = []
    why = "no model was called on a probe batch"
    for model in b.models:
        if model.probe is None or probes_a.get(model.name) is None:
            continue
        if probes_a[model.name] != model.probe:
            why = "the runs trained on other inputs, so they share no probe batch to predict on"
            continue
        key = f"predictions/{model.name}/0"
        if key not in arrays_a or key not in arrays_b:
            why = "a run saved no predictions on the probe batch"
            continue
        shared = class_agreement(arrays_a[key], arrays_b[key])
        if shared is None:
            why = f"the outputs of {model.name} are not classes ({_output_words(arrays_a[key])})"
            continue
        agreements.append(shared)
    return (min(agreements), "") if agreements else (None, why)


def _output_words(pred: np.ndarray) -> str:
    """What a model's output is, where it is no class prediction: ``a single logit``, ``a regression``."""
    if pred.ndim >= 1 and pred.size and pred.reshape(pred.shape[0], -1).shape[1] == 1:
        return "one unbounded value per example: a single logit, or a regression"
    return f"output shape {tuple(pred.shape[1:])}"

"""What one run observed, rebuilt from the events its process streamed.

The events are those of :mod:`reprokit.protocol.events`; :class:`Pin` and
:class:`PipelineCall` are both events and parts of a :class:`RunTrace`. The trials
of a hyperparameter search the script ran itself become :class:`SearchTrial`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprokit.core.controls import Controls
from reprokit.core.refusals import Refusal
from reprokit.protocol import (
    CallbackStateEvent,
    EndEvent,
    ErrorEvent,
    EvaluateEvent,
    Event,
    HistoryEvent,
    InitEvent,
    ModelSummary,
    Pin,
    PipelineCall,
    PreemptedEvent,
    ReplayEvent,
    SearchTrialEvent,
    SetupErrorEvent,
    StepEvent,
)
from reprokit.run.arrays import open_arrays

__all__ = [
    "ModelResult",
    "Pin",
    "PipelineCall",
    "Point",
    "RunSpec",
    "RunTrace",
    "SearchTrial",
    "TraceBuilder",
    "point_of",
]


@dataclass(frozen=True)
class RunSpec:
    """One training run of an experiment.

    Attributes:
        name: unique within a check, e.g. ``controlled-1``.
        role: the pair it belongs to: ``controlled``, ``ops`` or ``seed``.
        controls: its seed and op-determinism setting.
        alignment: it saves what aligning its model needs (structure, hidden
            activations): the runs of the seed pair, whose weights are aligned.
        start_after: seconds after its batch of runs begins that it may start
            (the second run of the controlled pair: a seed the script takes
            from the clock in whole seconds then differs between the two).
        preempt_after: the run dies after this optimizer step, as a
            preempted machine's would (a resume check's stopped run).
        after: the run of its batch it waits for, to start in a folder
            holding what that one wrote (a resume check's resumed run).
    """

    name: str
    role: str
    controls: Controls
    alignment: bool = False
    start_after: float = 0.0
    preempt_after: int | None = None
    after: str | None = None


@dataclass(frozen=True)
class Point:
    """Variable fingerprints of one model at one moment of training.

    ``step`` 0 is the initial weights (before the first optimizer step); step
    k is after the k-th step. ``inputs`` are fingerprints of the batches the
    model was called on in that step, ``input_rows`` the digests of their
    rows (see ``fingerprint.rows_text``), ``loss`` the loss it was trained on.
    A run that observes the whole training state (a resume check) also
    fingerprints the optimizer's and the generators' state in ``weights``
    and has the optimizer's one-number variables in ``scalars``.
    """

    model: str
    step: int
    weights: Mapping[str, str]
    inputs: tuple[str, ...] = ()
    loss: float | None = None
    input_rows: tuple[str, ...] = ()
    scalars: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelResult:
    """A trained model at the end of a run."""

    name: str
    steps: int
    weights: Mapping[str, str]
    probe: str | None
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    last_loss: float | None = None

    @property
    def final_loss(self) -> float | None:
        losses = self.history.get("loss")
        return losses[-1] if losses else self.last_loss


@dataclass(frozen=True)
class SearchTrial:
    """One finished trial of a hyperparameter search the script ran itself (keras-tuner or Optuna).

    Attributes:
        library: ``keras-tuner`` or ``optuna``.
        search: the search's name in the run (see :class:`~reprokit.protocol.events.SearchTrialEvent`).
        trial: the trial's id in its search.
        params: its hyperparameters, each value as its ``repr()``.
        score: the value the search ranks trials by (None: none).
        status: the trial's end as the library names it (``COMPLETED``, ``COMPLETE``, ``FAILED``, ``PRUNED``, …).
        maximize: whether a higher score is better (None: not known).
        values: the objectives' values of a search with several objectives (empty otherwise).
    """

    library: str
    search: str
    trial: str
    params: Mapping[str, str]
    score: float | None
    status: str
    maximize: bool | None = None
    values: tuple[float, ...] = ()

    @property
    def key(self) -> tuple[str, str]:
        """Which search of the run it belongs to: its library and name."""
        return self.library, self.search

    @classmethod
    def of(cls, event: SearchTrialEvent) -> SearchTrial:
        """The trial a ``search_trial`` event reports."""
        return cls(
            event.library,
            event.search,
            event.trial,
            dict(event.params),
            event.score,
            event.status,
            event.maximize,
            event.values,
        )


COMPLETED = frozenset({"COMPLETED", "COMPLETE"})
"""How keras-tuner (``COMPLETED``) and Optuna (``COMPLETE``) name a trial that ended normally."""


def best_trial(trials: Sequence[SearchTrial]) -> SearchTrial | None:
    """The trial the search would choose: the best finite score of a completed trial (the first of equals).

    None where no completed trial has a score, or the direction is not known (several objectives).
    """
    best: SearchTrial | None = None
    for t in trials:
        if t.status not in COMPLETED or t.score is None or not math.isfinite(t.score) or t.maximize is None:
            continue
        if best is None or (t.score > best.score if t.maximize else t.score < best.score):  # type: ignore[operator]
            best = t
    return best


def params_words(trial: SearchTrial) -> str:
    """A trial's hyperparameters as ``units=16, lr=0.01`` (each value as its ``repr``)."""
    return ", ".join(f"{k}={v}" for k, v in trial.params.items()) or "no hyperparameters"


@dataclass(frozen=True)
class RunTrace:
    """Everything one completed run reported, in the order it happened.

    ``files_written`` are the files the run wrote in its private working
    folder ``folder`` (see :mod:`reprokit.run.workdirs`); ``user_files_changed``
    the user's own files it changed through a link.
    """

    spec: RunSpec
    points: tuple[Point, ...]
    models: tuple[ModelResult, ...]
    pins: tuple[Pin, ...]
    environment: Mapping[str, Any]
    mode: str
    wall_seconds: float
    arrays_path: Path | None = None
    stopped_at_max_steps: bool = False
    stopped_early: bool = False
    pipeline: tuple[PipelineCall, ...] = ()
    replay: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    files_written: tuple[str, ...] = ()
    user_files_changed: tuple[str, ...] = ()
    folder: Path | None = None
    processes_left: int = 0
    """Processes the script left running when the run ended (they were stopped)."""
    retries: tuple[str, ...] = ()
    """Why Ray lost earlier attempts of this run (each retried from the start; empty: none)."""
    xla_steps: bool = False
    evaluations: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """The results of the last ``Model.evaluate`` call of each model the script evaluated, by model label."""
    preempted: bool = False
    """The run died after ``spec.preempt_after`` steps, as a preempted machine's would (no final results)."""
    callbacks: tuple[CallbackStateEvent, ...] = ()
    """The state of the script's ``fit`` callbacks as each epoch began (runs that observe the whole state)."""
    searches: tuple[SearchTrial, ...] = ()
    """The trials of the script's own hyperparameter searches, in the order they ended (every search's)."""

    @property
    def stopped(self) -> bool:
        """Whether the run ended before its script did (``--max-steps``, an early exit, a preemption)."""
        return self.stopped_at_max_steps or self.stopped_early or self.preempted

    @property
    def steps(self) -> int:
        return sum(m.steps for m in self.models)

    def final_loss(self) -> float | None:
        """The last recorded loss of the last model trained."""
        if not self.models:
            return None
        last = self.models[-1]
        if last.final_loss is not None:
            return last.final_loss
        losses = [p.loss for p in self.points if p.model == last.name and p.loss is not None]
        return losses[-1] if losses else None


def point_of(event: InitEvent | StepEvent) -> Point:
    """The point an ``init`` or ``step`` event reports (its names are interned when it is parsed)."""
    if isinstance(event, InitEvent):
        return Point(event.model, event.step, event.weights, scalars=event.scalars)
    return Point(event.model, event.step, event.weights, event.inputs, event.loss, event.input_rows, event.scalars)


class TraceBuilder:
    """Accumulates a run's events as they stream in."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.points: list[Point] = []
        self.pins: list[Pin] = []
        self.histories: dict[str, dict[str, list[float]]] = {}
        self.end: EndEvent | None = None
        self.error: str | None = None
        self.setup_error: str | None = None
        self.refusal: Refusal | None = None
        self.pipeline: list[PipelineCall] = []
        self.replay: dict[int, dict[str, Any]] = {}
        self.evaluations: dict[str, dict[str, float]] = {}
        self.steps = 0
        self.preempted: PreemptedEvent | None = None
        self.callbacks: list[CallbackStateEvent] = []
        self.searches: list[SearchTrial] = []

    def add(self, event: Event) -> None:
        """Takes the run's next event (events that add nothing to a trace, like ``start``, are ignored)."""
        match event:
            case InitEvent() | StepEvent():
                self.points.append(point_of(event))
                if isinstance(event, StepEvent):
                    self.steps += 1
            case HistoryEvent():
                merged = self.histories.setdefault(event.model, {})
                for key, values in event.history.items():
                    merged.setdefault(key, []).extend(values)
            case EvaluateEvent():
                self.evaluations[event.model] = dict(event.results)  # the last call of a model wins
            case Pin():
                self.pins.append(event)
            case ErrorEvent():
                self.error = event.message
                if event.refusal is not None:
                    self.refusal = event.refusal
            case PipelineCall():
                if event not in self.pipeline:
                    self.pipeline.append(event)
            case ReplayEvent():
                self.replay[event.step] = event.to_dict()  # explain reads it as it was sent
            case SetupErrorEvent():
                self.setup_error = event.message
            case EndEvent():
                self.end = event
            case PreemptedEvent():
                self.preempted = event
            case CallbackStateEvent():
                self.callbacks.append(event)
            case SearchTrialEvent():
                self.searches.append(SearchTrial.of(event))

    def build(self, wall_seconds: float, arrays_path: Path | None) -> RunTrace:
        end = self.end or EndEvent("script", (), {})
        if self.preempted is not None and self.end is None:  # died with its steps counted, nothing else
            counted = [ModelSummary(label, steps, {}, None) for label, steps in self.preempted.models.items()]
            end = EndEvent("script", tuple(counted), {})
        models = tuple(
            ModelResult(
                m.model,
                m.steps,
                dict(m.weights),
                m.probe,
                {k: tuple(v) for k, v in self.histories.get(m.model, {}).items()},
                m.last_loss,
            )
            for m in end.models
        )
        return RunTrace(
            spec=self.spec,
            points=tuple(self.points),
            models=models,
            pins=tuple(self.pins),
            environment=dict(end.environment),
            mode=end.mode,
            wall_seconds=wall_seconds,
            arrays_path=arrays_path,
            stopped_at_max_steps=end.stopped_at_max_steps,
            stopped_early=end.stopped_early,
            xla_steps=end.xla_steps,
            pipeline=tuple(self.pipeline),
            replay=self.replay,
            evaluations=self.evaluations,
            preempted=self.preempted is not None,
            callbacks=tuple(self.callbacks),
            searches=tuple(self.searches),
        )


def saved_arrays(trace: RunTrace) -> Any:
    """The run's final arrays, memory-mapped as they are used (a context manager; see :mod:`reprokit.run.arrays`)."""
    assert trace.arrays_path is not None
    return open_arrays(trace.arrays_path)

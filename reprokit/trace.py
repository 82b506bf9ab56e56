"""What one run observed, rebuilt from the events its process streamed."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reprokit.refusals import Refusal
from reprokit.settings import Controls


@dataclass(frozen=True)
class RunSpec:
    """One training run of an experiment.

    Attributes:
        name: unique within a check, e.g. ``controlled-1``.
        role: the pair it belongs to: ``controlled``, ``ops`` or ``seed``.
        controls: its seed and op-determinism setting.
    """

    name: str
    role: str
    controls: Controls


@dataclass(frozen=True)
class Point:
    """Variable fingerprints of one model at one moment of training.

    ``step`` 0 is the initial weights (before the first optimizer step); step
    k is after the k-th step. ``inputs`` are fingerprints of the batches the
    model was called on in that step, ``input_rows`` the digests of their
    rows (see ``fingerprint.rows_text``), ``loss`` the loss it was trained on.
    """

    model: str
    step: int
    weights: Mapping[str, str]
    inputs: tuple[str, ...] = ()
    loss: float | None = None
    input_rows: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModelResult:
    """A trained model at the end of a run."""

    name: str
    steps: int
    weights: Mapping[str, str]
    probe: str | None
    history: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    @property
    def final_loss(self) -> float | None:
        losses = self.history.get("loss")
        return losses[-1] if losses else None


@dataclass(frozen=True)
class PipelineCall:
    """A tf.data call of the script that gives up element order."""

    call: str
    file: str | None = None
    line: int | None = None

    @property
    def where(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}" if self.file else ""


@dataclass(frozen=True)
class Pin:
    """A call by which the script fixes a seed or op determinism itself."""

    call: str
    kind: str  # "seed" or "determinism"
    file: str
    line: int


@dataclass(frozen=True)
class RunTrace:
    """Everything one completed run reported, in the order it happened."""

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


def point_of(event: Mapping[str, Any]) -> Point:
    """The point an ``init`` or ``step`` event reports (variable names interned: they repeat every step)."""
    return Point(
        sys.intern(event["model"]),
        int(event["step"]),
        {sys.intern(name): fp for name, fp in event["weights"].items()},
        tuple(event.get("inputs", ())),
        event.get("loss"),
        tuple(event.get("input_rows", ())),
    )


class TraceBuilder:
    """Accumulates a run's events as they stream in."""

    def __init__(self, spec: RunSpec) -> None:
        self.spec = spec
        self.points: list[Point] = []
        self.pins: list[Pin] = []
        self.histories: dict[str, dict[str, list[float]]] = {}
        self.end: dict[str, Any] | None = None
        self.error: str | None = None
        self.setup_error: str | None = None
        self.refusal: Refusal | None = None
        self.pipeline: list[PipelineCall] = []
        self.replay: dict[int, dict[str, Any]] = {}
        self.steps = 0

    def add(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if kind in ("init", "step"):
            self.points.append(point_of(event))
            if kind == "step":
                self.steps += 1
        elif kind == "history":
            merged = self.histories.setdefault(event["model"], {})
            for key, values in event["history"].items():
                merged.setdefault(key, []).extend(values)
        elif kind == "pin":
            self.pins.append(Pin(event["call"], event["kind"], event["file"], int(event["line"])))
        elif kind == "error":
            self.error = str(event["message"])
            if event.get("refusal"):
                self.refusal = Refusal(**event["refusal"])
        elif kind == "pipeline":
            call = PipelineCall(str(event["call"]), event.get("file"), event.get("line"))
            if call not in self.pipeline:
                self.pipeline.append(call)
        elif kind == "replay":
            self.replay[int(event["step"])] = dict(event)
        elif kind == "setup_error":
            self.setup_error = str(event["message"])
        elif kind == "end":
            self.end = dict(event)

    def build(self, wall_seconds: float, arrays_path: Path | None) -> RunTrace:
        end = self.end or {}
        models = tuple(
            ModelResult(
                m["model"],
                int(m["steps"]),
                dict(m["weights"]),
                m.get("probe"),
                {k: tuple(v) for k, v in self.histories.get(m["model"], {}).items()},
            )
            for m in end.get("models", ())
        )
        return RunTrace(
            spec=self.spec,
            points=tuple(self.points),
            models=models,
            pins=tuple(self.pins),
            environment=dict(end.get("environment", {})),
            mode=str(end.get("mode", "script")),
            wall_seconds=wall_seconds,
            arrays_path=arrays_path,
            stopped_at_max_steps=bool(end.get("stopped_at_max_steps", False)),
            stopped_early=bool(end.get("stopped_early", False)),
            pipeline=tuple(self.pipeline),
            replay=self.replay,
        )

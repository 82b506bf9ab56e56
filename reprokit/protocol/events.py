"""What a run process reports to the parent: every event, and the registry that reads any of them by its type."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias, get_args

from reprokit.core.refusals import Refusal
from reprokit.protocol.codec import Message, array, wire


def _interned(name: Any) -> str:
    """A name a run repeats in every event, kept once in the parent."""
    return sys.intern(name)


def _names_interned(weights: Any) -> dict[str, str]:
    """Fingerprints by variable name, the names interned, the fingerprints as they are (the parent's hot path)."""
    if not isinstance(weights, Mapping):
        raise TypeError(f"expected a JSON object, received {type(weights).__name__}")
    return {sys.intern(name): fp for name, fp in weights.items()}


@dataclass(frozen=True)
class LaunchedEvent(Message):
    """The parent started the run process ``pid`` (parent-side only, never on the wire)."""

    TYPE: ClassVar[str] = "launched"
    pid: int


@dataclass(frozen=True)
class SetupErrorEvent(Message):
    """The worker could not prepare the run (TensorFlow or Keras missing or broken)."""

    TYPE: ClassVar[str] = "setup_error"
    message: str


@dataclass(frozen=True)
class StartEvent(Message):
    """The hooks are installed and the script starts, in process ``pid``."""

    TYPE: ClassVar[str] = "start"
    pid: int


@dataclass(frozen=True)
class InitEvent(Message):
    """A model's initial weights, before its first optimizer step.

    Attributes:
        model: the model's label (its Keras name, ``#2`` appended for a
            second model of that name; ``variables:<optimizer>`` for bare
            variables trained without a model).
        step: the optimizer steps the model made before (0).
        weights: a fingerprint of every variable, by its Keras path (with
            ``WorkerConfig.whole_state``, of the whole training state:
            see :mod:`reprokit.worker.state`).
        scalars: the values of the state's scalars (the optimizer's
            iterations and learning rate), by name (whole state only).
    """

    TYPE: ClassVar[str] = "init"
    model: str = field(metadata=wire(read=_interned))
    step: int
    weights: Mapping[str, str] = field(metadata=wire(read=_names_interned))
    scalars: Mapping[str, float] = field(default_factory=dict, metadata=wire(omit_default=True))


@dataclass(frozen=True)
class StepEvent(Message):
    """A model after optimizer step ``step``: what it saw and what it became.

    Attributes:
        model: the model's label (see :class:`InitEvent`).
        step: the model's optimizer steps so far.
        weights: a per-step fingerprint (CRC-32) of every variable.
        inputs: a fingerprint of each batch the model was called on in this step.
        input_rows: the digests of those batches' rows (``fingerprint.rows_text``;
            none in a step recorded before rows were observed).
        loss: the loss the gradient was taken of, where it was seen.
        scalars: the values of the state's scalars after the step (whole state only, see :class:`InitEvent`).
    """

    TYPE: ClassVar[str] = "step"
    model: str = field(metadata=wire(read=_interned))
    step: int
    weights: Mapping[str, str] = field(metadata=wire(read=_names_interned))
    inputs: tuple[str, ...] = field(default=(), metadata=wire(read=array))
    input_rows: tuple[str, ...] = field(default=(), metadata=wire(read=array))
    loss: float | None = None
    scalars: Mapping[str, float] = field(default_factory=dict, metadata=wire(omit_default=True))


@dataclass(frozen=True)
class CallbackStateEvent(Message):
    """The state of the script's ``fit`` callbacks as epoch ``epoch`` of a ``fit`` begins (whole state only).

    Attributes:
        model: the model's label.
        epoch: the epoch's index in ``fit`` (a resumed ``fit`` starts at its ``initial_epoch``).
        step: the optimizer steps the model made before the epoch.
        state: each callback's public attributes that hold one plain value
            (``EarlyStopping.wait``), as ``repr`` text.
    """

    TYPE: ClassVar[str] = "callbacks"
    model: str
    epoch: int
    step: int
    state: Mapping[str, str]


@dataclass(frozen=True)
class PreemptedEvent(Message):
    """The run dies now, as a preempted machine's would: optimizer step ``step`` was its last.

    Attributes:
        step: the optimizer steps the run made (of all its models).
        models: the steps each model made, by label.
    """

    TYPE: ClassVar[str] = "preempted"
    step: int
    models: Mapping[str, int]


@dataclass(frozen=True)
class HistoryEvent(Message):
    """The per-epoch logs of one ``Model.fit`` call, when it returns."""

    TYPE: ClassVar[str] = "history"
    model: str
    history: Mapping[str, tuple[float, ...]]


@dataclass(frozen=True)
class EvaluateEvent(Message):
    """The results of one ``Model.evaluate`` call the script made (not ``fit``'s validation), when it returns."""

    TYPE: ClassVar[str] = "evaluate"
    model: str
    results: Mapping[str, float]


@dataclass(frozen=True)
class Pin(Message):
    """A call by which the script fixes a seed or op determinism itself.

    Attributes:
        call: the call as written, e.g. ``tf.random.set_seed(0)``.
        kind: ``seed`` or ``determinism``.
        file: the script file that made it.
        line: its line.
    """

    TYPE: ClassVar[str] = "pin"
    call: str
    kind: str  # "seed" or "determinism"
    file: str
    line: int


def _nowhere(call: PipelineCall) -> bool:
    return call.file is None and call.line is None


@dataclass(frozen=True)
class PipelineCall(Message):
    """A tf.data call of the script that gives up element order (and where, if in the user's code)."""

    TYPE: ClassVar[str] = "pipeline"
    call: str
    file: str | None = field(default=None, metadata=wire(omit_when=_nowhere))  # the file and line go together
    line: int | None = field(default=None, metadata=wire(omit_when=_nowhere))
    random: bool = field(default=False, metadata=wire(omit_default=True))
    """A parallel map whose function draws random numbers from shared state."""

    @property
    def where(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}" if self.file else ""

    @property
    def described(self) -> str:
        """``train.py:13: Dataset.map(...)``, or the call alone where the line is not known."""
        return f"{self.where}: {self.call}" if self.where else self.call


@dataclass(frozen=True)
class LayerProbe:
    """One Keras layer call in a replayed step (``call``: its n-th call in the step)."""

    layer: str
    layer_class: str = field(metadata=wire(key="class"))
    call: int
    inputs: str
    outputs: str


@dataclass(frozen=True)
class GradientProbe:
    """The gradient of one trained variable in a replayed step."""

    fingerprint: str
    sparse: bool


@dataclass(frozen=True)
class ReplayEvent(Message):
    """Every layer call (in execution order) and gradient of optimizer step ``step`` (``explain`` runs)."""

    TYPE: ClassVar[str] = "replay"
    step: int
    layers: tuple[LayerProbe, ...]
    gradients: Mapping[str, GradientProbe]


@dataclass(frozen=True)
class SearchTrialEvent(Message):
    """A trial of a hyperparameter search the script runs itself ended (a keras-tuner tuner's, an Optuna study's).

    Attributes:
        library: ``keras-tuner`` or ``optuna``.
        search: the search's name: the tuner's ``project_name``, the study's
            ``study_name`` (an unnamed study is ``study``, the next ``study #2``).
        trial: the trial's id in its search (keras-tuner's ``trial_id``, Optuna's trial number).
        params: its hyperparameters, each value as its ``repr()`` (floats compare exactly).
        score: the value the search ranks trials by (None: none, as for a failed trial
            or a search with several objectives).
        status: the trial's end as the library names it (``COMPLETED``, ``FAILED``;
            ``COMPLETE``, ``PRUNED``, ``FAIL``).
        maximize: whether a higher score is better (None: not known, or several objectives).
        values: the objectives' values of a search with several objectives (empty otherwise).
    """

    TYPE: ClassVar[str] = "search_trial"
    library: str
    search: str
    trial: str
    params: Mapping[str, str]
    score: float | None
    status: str
    maximize: bool | None
    values: tuple[float, ...] = field(default=(), metadata=wire(omit_default=True))


@dataclass(frozen=True)
class ErrorEvent(Message):
    """The script failed: the error's last line, and TensorFlow's refusal of op determinism if it is one."""

    TYPE: ClassVar[str] = "error"
    message: str
    refusal: Refusal | None = field(default=None, metadata=wire(omit_default=True))


@dataclass(frozen=True)
class ModelSummary:
    """A trained model at the end of a run.

    Attributes:
        model: its label (see :class:`InitEvent`).
        steps: the optimizer steps it made.
        weights: a full fingerprint of every final variable.
        probe: a fingerprint of the batch its predictions were taken on
            (saved in the arrays file), or None if it could not be called.
        last_loss: the loss of its last observed step (study runs only, where
            no ``step`` event carries it; NaN when it was NaN).
    """

    model: str
    steps: int
    weights: Mapping[str, str]
    probe: str | None = field(metadata=wire(missing=None))
    last_loss: float | None = field(default=None, metadata=wire(omit_default=True))


@dataclass(frozen=True)
class EndEvent(Message):
    """The script finished; its final weights and predictions are in ``WorkerConfig.arrays_path``.

    Attributes:
        mode: ``script``, ``model-file`` or ``function``: how it trained.
        models: a summary of every trained model.
        environment: what besides the seed and op determinism can change
            the bits (versions, CPU, threads, environment variables).
        stopped_at_max_steps: ``--max-steps`` ended the run.
        stopped_early: a :class:`~reprokit.protocol.config.StopRequest` ended the run.
        xla_steps: some steps were XLA-compiled (their input batches and
            losses could not be observed).
    """

    TYPE: ClassVar[str] = "end"
    mode: str = field(metadata=wire(missing="script"))
    models: tuple[ModelSummary, ...] = field(metadata=wire(missing=()))
    environment: Mapping[str, Any] = field(metadata=wire(missing={}))
    stopped_at_max_steps: bool = False
    stopped_early: bool = False
    xla_steps: bool = field(default=False, metadata=wire(omit_default=True))


Event: TypeAlias = (
    LaunchedEvent
    | SetupErrorEvent
    | StartEvent
    | InitEvent
    | StepEvent
    | HistoryEvent
    | EvaluateEvent
    | Pin
    | PipelineCall
    | ReplayEvent
    | ErrorEvent
    | EndEvent
    | CallbackStateEvent
    | PreemptedEvent
    | SearchTrialEvent
)
"""Any event a run reports (and :class:`LaunchedEvent`, which the parent adds): the one list of them."""


def _by_type(kinds: tuple[type[Event], ...]) -> dict[str, type[Event]]:
    registry = {kind.TYPE: kind for kind in kinds}
    if len(registry) < len(kinds):
        raise TypeError(f"two events share a wire type: {sorted(kind.TYPE for kind in kinds)}")
    return registry


EVENT_TYPES: Mapping[str, type[Event]] = _by_type(get_args(Event))
"""Every event's class, by its ``"type"`` on the wire."""


def parse_event(line: str) -> Event | None:
    """The event on a wire line, or None if the line holds none (it is then skipped)."""
    try:
        data = json.loads(line)
        kind = data.get("type") if isinstance(data, dict) else None
        cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
        return None if cls is None else cls.from_dict(data)
    except (KeyError, TypeError, ValueError):  # JSONDecodeError is a ValueError
        return None

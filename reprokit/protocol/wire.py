"""The protocol between a run process (the worker) and the parent: every message, typed.

A check trains the user's script in fresh processes (``python -m
reprokit.worker.main``, started by :mod:`reprokit.run.runner`). They talk over three
channels, and this module defines everything that crosses them, in the
role keras' ``Callback`` plays for training: one documented place for the
hooks a run reports through. A distributed executor carries exactly these
messages across machines.

1. **Configuration**, parent → worker, once: a :class:`WorkerConfig` as JSON
   in the environment variable :data:`CONFIG_VAR` (the worker removes it
   before the script runs).
2. **Events**, worker → parent: one JSON object per line, in the order they
   happen, on the pipe ``WorkerConfig.events_fd`` (the script keeps stdout
   and stderr for itself). The ``"type"`` key names the event:

   ===============  ========================  ===========================================================
   ``type``         class                     sent
   ===============  ========================  ===========================================================
   ``setup_error``  :class:`SetupErrorEvent`  the worker could not prepare the run; nothing follows
   ``start``        :class:`StartEvent`       the hooks are installed; the script starts now
   ``init``         :class:`InitEvent`        a model's initial weights, before its first optimizer step
   ``step``         :class:`StepEvent`        after every optimizer step, once per model it trains
   ``history``      :class:`HistoryEvent`     when ``Model.fit`` returns: its per-epoch logs
   ``evaluate``     :class:`EvaluateEvent`    when the script's ``Model.evaluate`` returns: its results
   ``pin``          :class:`Pin`              the script fixed a seed or op determinism itself
   ``pipeline``     :class:`PipelineCall`     the script asked tf.data to give up element order
   ``replay``       :class:`ReplayEvent`      ``explain`` runs only, after each step up to
                                              ``WorkerConfig.explain_step``: every layer call and gradient
   ``error``        :class:`ErrorEvent`       the script failed (with a :class:`~reprokit.core.refusals.Refusal`
                                              if TensorFlow refused op determinism); nothing follows
   ``end``          :class:`EndEvent`         the script finished: a summary of every trained model (its
                                              final weights and predictions are in
                                              ``WorkerConfig.arrays_path``); nothing follows
   ===============  ========================  ===========================================================

   ``start`` precedes every other event but ``setup_error``, and a model's
   ``init`` precedes its ``step`` events. A study run (``WorkerConfig.study``)
   sends no ``init`` or ``step`` events. :mod:`reprokit.worker.main` itself sends
   ``setup_error``, ``start``, ``error`` and ``end``; its
   :class:`~reprokit.worker.recorder.Recorder` sends ``init`` and ``step``; the hooks
   of :mod:`reprokit.worker.instrument` send ``history``, ``evaluate`` and ``pin``, those of
   :mod:`reprokit.worker.diagnose` ``pipeline`` and ``replay``. In the parent,
   :mod:`reprokit.run.runner` parses them into a :class:`~reprokit.run.trace.TraceBuilder`
   and hands each to its ``on_event`` callback (:mod:`reprokit.cli.progress`).
   :class:`LaunchedEvent` (``launched``) never crosses the pipe: the parent
   hands it to ``on_event`` when it has started a run process.
3. **Control**, parent → worker: :class:`StopRequest` lines (``stop <step>``)
   on the pipe ``WorkerConfig.control_fd``, when the run's pairs have proven
   their divergence (early exit). The run ends after that optimizer step, as
   if ``--max-steps`` had ended it.

Every message is a frozen dataclass. The configuration's and each event's
``to_json()`` gives its JSON text, one line (the sender adds the newline),
and the classmethod ``from_json()`` reads it back; a stop request has
``to_line()`` and ``parse()``. :func:`parse_event` reads an event of any
type, and returns None for a line that holds none (the parent skips it).
The wire format is what the recorded runs in ``tests/data`` hold: change it
only together with them.

This module imports neither TensorFlow nor NumPy: the parent never does.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias, TypeVar

from reprokit.core.refusals import Refusal

CONFIG_VAR = "REPROKIT_WORKER_CONFIG"
"""The environment variable that carries a run's :class:`WorkerConfig`."""

_M = TypeVar("_M", bound="_Message")


class ProtocolError(ValueError):
    """A line that is not the message it should be."""


class _Message:
    """A JSON message: ``to_dict``/``from_dict`` per class, the JSON text here."""

    TYPE: ClassVar[str] = ""
    """The event's ``"type"`` on the wire ("" for the configuration, which has none)."""

    def to_dict(self) -> dict[str, Any]:
        """The message as a JSON-ready object (tuples stand for JSON arrays)."""
        raise NotImplementedError

    def to_json(self) -> str:
        """The message's wire line, without the newline."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls: type[_M], data: Mapping[str, Any]) -> _M:
        """Reads the message from its JSON object; raises KeyError, TypeError or ValueError if malformed."""
        raise NotImplementedError

    @classmethod
    def from_json(cls: type[_M], line: str) -> _M:
        """Reads the message from its wire line.

        Raises:
            ProtocolError: the line is not JSON, or not a message of this class.
        """
        name = cls.TYPE or cls.__name__
        try:
            data = json.loads(line)
        except ValueError as e:
            raise ProtocolError(f"not JSON: {line[:80]!r}") from e
        if not isinstance(data, dict) or data.get("type") != (cls.TYPE or None):
            raise ProtocolError(f"not a {name} message: {line[:80]!r}")
        try:
            return cls.from_dict(data)
        except (KeyError, TypeError, ValueError) as e:
            raise ProtocolError(f"malformed {name} message ({type(e).__name__}: {e}): {line[:80]!r}") from e


# -- configuration ----------------------------------------------------------


@dataclass(frozen=True)
class FunctionTarget:
    """A training function the worker calls instead of running the script.

    Attributes:
        module: the function's module (``__main__`` for a function of the
            script, which the worker loads from ``WorkerConfig.script``).
        qualname: its qualified name in the module.
        call_path: a pickle of the ``(args, kwargs)`` to call it with,
            written by the parent.
        sys_path: entries to put on ``sys.path`` so that the module imports.
    """

    module: str
    qualname: str
    call_path: str
    sys_path: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "module": self.module,
            "qualname": self.qualname,
            "call_path": self.call_path,
            "sys_path": self.sys_path,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FunctionTarget:
        return cls(str(data["module"]), str(data["qualname"]), str(data["call_path"]), _strings(data["sys_path"]))


@dataclass(frozen=True)
class WorkerConfig(_Message):
    """Everything a run process needs to know, sent once in :data:`CONFIG_VAR`.

    Attributes:
        script: absolute path of the training script (or model file).
        args: the script's own command-line arguments.
        seed: the seed of every random generator.
        op_determinism: whether TensorFlow's op determinism is on.
        events_fd: the pipe the worker writes its events to.
        control_fd: the pipe it reads :class:`StopRequest` lines from, if any.
        arrays_path: where the worker saves final weights and predictions (``.npz``).
        epochs: epochs to train a model file for.
        batch_size: batch size for a model file.
        max_steps: end the run after this many optimizer steps (None: all).
        sequential_maps: run every ``Dataset.map`` without parallel calls
            (an explain replay testing whether a parallel map is the cause).
        study: observe only what a seed study needs (metrics, the final loss,
            predictions on the probe batch): no per-step fingerprints, no
            ``init`` or ``step`` events, no saved weights, so a run costs
            what a plain training costs.
        explain_step: probe every layer call and gradient up to this step
            (:class:`ReplayEvent` events; None or 0: no probes).
        function: a training function to call instead of running the script.
        alignment: save the model's structure and hidden activations on the
            probe batch (:func:`reprokit.worker.anatomy.record`).
    """

    script: str
    args: tuple[str, ...]
    seed: int
    op_determinism: bool
    events_fd: int
    arrays_path: str
    control_fd: int | None = None
    epochs: int = 5
    batch_size: int = 32
    max_steps: int | None = None
    explain_step: int | None = None
    function: FunctionTarget | None = None
    sequential_maps: bool = False
    study: bool = False
    alignment: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "script": self.script,
            "args": self.args,
            "seed": self.seed,
            "op_determinism": self.op_determinism,
            "events_fd": self.events_fd,
            "control_fd": self.control_fd,
            "arrays_path": self.arrays_path,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "max_steps": self.max_steps,
            "explain_step": self.explain_step,
            "function": None if self.function is None else self.function.to_dict(),
            "sequential_maps": self.sequential_maps,
            "study": self.study,
            "alignment": self.alignment,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkerConfig:
        function = data.get("function")
        return cls(
            script=str(data["script"]),
            args=_strings(data.get("args", ())),
            seed=int(data["seed"]),
            op_determinism=bool(data["op_determinism"]),
            events_fd=int(data["events_fd"]),
            arrays_path=str(data["arrays_path"]),
            control_fd=_optional_int(data.get("control_fd")),
            epochs=int(data.get("epochs", 5)),
            batch_size=int(data.get("batch_size", 32)),
            max_steps=_optional_int(data.get("max_steps")),
            explain_step=_optional_int(data.get("explain_step")),
            sequential_maps=bool(data.get("sequential_maps", False)),
            study=bool(data.get("study", False)),
            alignment=bool(data.get("alignment", False)),
            function=FunctionTarget.from_dict(function) if function else None,
        )


# -- control ----------------------------------------------------------------


@dataclass(frozen=True)
class StopRequest:
    """The parent asks a run to end after optimizer step ``step`` (wire: ``stop <step>``)."""

    step: int

    def to_line(self) -> str:
        """The request's control line, without the newline."""
        return f"stop {self.step}"

    @classmethod
    def parse(cls, line: str) -> StopRequest | None:
        """The request on a control line, or None if the line is none."""
        kind, _, step = line.partition(" ")
        step = step.strip()
        return cls(int(step)) if kind == "stop" and step.isdigit() else None


# -- events -----------------------------------------------------------------


@dataclass(frozen=True)
class LaunchedEvent(_Message):
    """The parent started the run process ``pid`` (parent-side only, never on the wire)."""

    TYPE: ClassVar[str] = "launched"
    pid: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "pid": self.pid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LaunchedEvent:
        return cls(int(data["pid"]))


@dataclass(frozen=True)
class SetupErrorEvent(_Message):
    """The worker could not prepare the run (TensorFlow or Keras missing or broken)."""

    TYPE: ClassVar[str] = "setup_error"
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "message": self.message}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SetupErrorEvent:
        return cls(str(data["message"]))


@dataclass(frozen=True)
class StartEvent(_Message):
    """The hooks are installed and the script starts, in process ``pid``."""

    TYPE: ClassVar[str] = "start"
    pid: int

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "pid": self.pid}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StartEvent:
        return cls(int(data["pid"]))


@dataclass(frozen=True)
class InitEvent(_Message):
    """A model's initial weights, before its first optimizer step.

    Attributes:
        model: the model's label (its Keras name, ``#2`` appended for a
            second model of that name; ``variables:<optimizer>`` for bare
            variables trained without a model).
        step: the optimizer steps the model made before (0).
        weights: a fingerprint of every variable, by its Keras path.
    """

    TYPE: ClassVar[str] = "init"
    model: str
    step: int
    weights: Mapping[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "model": self.model, "step": self.step, "weights": self.weights}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InitEvent:
        return cls(sys.intern(data["model"]), int(data["step"]), _names_interned(data["weights"]))


@dataclass(frozen=True)
class StepEvent(_Message):
    """A model after optimizer step ``step``: what it saw and what it became.

    Attributes:
        model: the model's label (see :class:`InitEvent`).
        step: the model's optimizer steps so far.
        weights: a per-step fingerprint (CRC-32) of every variable.
        inputs: a fingerprint of each batch the model was called on in this step.
        input_rows: the digests of those batches' rows (``fingerprint.rows_text``).
        loss: the loss the gradient was taken of, where it was seen.
    """

    TYPE: ClassVar[str] = "step"
    model: str
    step: int
    weights: Mapping[str, str]
    inputs: tuple[str, ...] = ()
    input_rows: tuple[str, ...] = ()
    loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "model": self.model,
            "step": self.step,
            "weights": self.weights,
            "inputs": self.inputs,
            "input_rows": self.input_rows,
            "loss": self.loss,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepEvent:
        loss = data.get("loss")
        return cls(
            sys.intern(data["model"]),
            int(data["step"]),
            _names_interned(data["weights"]),
            _array(data.get("inputs", ())),
            _array(data.get("input_rows", ())),  # recorded before rows were observed: none
            None if loss is None else float(loss),
        )


@dataclass(frozen=True)
class HistoryEvent(_Message):
    """The per-epoch logs of one ``Model.fit`` call, when it returns."""

    TYPE: ClassVar[str] = "history"
    model: str
    history: Mapping[str, tuple[float, ...]]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "model": self.model, "history": self.history}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEvent:
        logs = _mapping(data["history"])
        return cls(str(data["model"]), {str(k): tuple(float(v) for v in values) for k, values in logs.items()})


@dataclass(frozen=True)
class EvaluateEvent(_Message):
    """The results of one ``Model.evaluate`` call the script made (not ``fit``'s validation), when it returns."""

    TYPE: ClassVar[str] = "evaluate"
    model: str
    results: Mapping[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "model": self.model, "results": self.results}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluateEvent:
        results = _mapping(data["results"])
        return cls(str(data["model"]), {str(k): float(v) for k, v in results.items()})


@dataclass(frozen=True)
class Pin(_Message):
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

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.TYPE, "call": self.call, "kind": self.kind, "file": self.file, "line": self.line}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Pin:
        return cls(str(data["call"]), str(data["kind"]), str(data["file"]), int(data["line"]))


@dataclass(frozen=True)
class PipelineCall(_Message):
    """A tf.data call of the script that gives up element order (and where, if in the user's code)."""

    TYPE: ClassVar[str] = "pipeline"
    call: str
    file: str | None = None
    line: int | None = None
    random: bool = False  # a parallel map whose function draws random numbers from shared state

    @property
    def where(self) -> str:
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}" if self.file else ""

    @property
    def described(self) -> str:
        """``train.py:13: Dataset.map(...)``, or the call alone where the line is not known."""
        return f"{self.where}: {self.call}" if self.where else self.call

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.TYPE, "call": self.call}
        if self.file is not None or self.line is not None:
            data.update(file=self.file, line=self.line)
        if self.random:
            data["random"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineCall:
        return cls(str(data["call"]), data.get("file"), _optional_int(data.get("line")), bool(data.get("random")))


@dataclass(frozen=True)
class LayerProbe:
    """One Keras layer call in a replayed step (``call``: its n-th call in the step)."""

    layer: str
    layer_class: str
    call: int
    inputs: str
    outputs: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.layer,
            "class": self.layer_class,
            "call": self.call,
            "inputs": self.inputs,
            "outputs": self.outputs,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LayerProbe:
        return cls(str(data["layer"]), str(data["class"]), int(data["call"]), str(data["inputs"]), str(data["outputs"]))


@dataclass(frozen=True)
class GradientProbe:
    """The gradient of one trained variable in a replayed step."""

    fingerprint: str
    sparse: bool

    def to_dict(self) -> dict[str, Any]:
        return {"fingerprint": self.fingerprint, "sparse": self.sparse}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GradientProbe:
        return cls(str(data["fingerprint"]), bool(data["sparse"]))


@dataclass(frozen=True)
class ReplayEvent(_Message):
    """Every layer call (in execution order) and gradient of optimizer step ``step`` (``explain`` runs)."""

    TYPE: ClassVar[str] = "replay"
    step: int
    layers: tuple[LayerProbe, ...]
    gradients: Mapping[str, GradientProbe]

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.TYPE,
            "step": self.step,
            "layers": [layer.to_dict() for layer in self.layers],
            "gradients": {name: gradient.to_dict() for name, gradient in self.gradients.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplayEvent:
        return cls(
            int(data["step"]),
            tuple(LayerProbe.from_dict(layer) for layer in data["layers"]),
            {str(name): GradientProbe.from_dict(g) for name, g in _mapping(data["gradients"]).items()},
        )


@dataclass(frozen=True)
class ErrorEvent(_Message):
    """The script failed: the error's last line, and TensorFlow's refusal of op determinism if it is one."""

    TYPE: ClassVar[str] = "error"
    message: str
    refusal: Refusal | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.TYPE, "message": self.message}
        if self.refusal is not None:
            data["refusal"] = dataclasses.asdict(self.refusal)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ErrorEvent:
        refusal = data.get("refusal")
        return cls(str(data["message"]), Refusal(**refusal) if refusal else None)


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
    probe: str | None
    last_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {"model": self.model, "steps": self.steps, "weights": self.weights, "probe": self.probe}
        if self.last_loss is not None:
            data["last_loss"] = self.last_loss
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSummary:
        probe, loss = data.get("probe"), data.get("last_loss")
        return cls(
            str(data["model"]),
            int(data["steps"]),
            _mapping(data["weights"]),
            None if probe is None else str(probe),
            None if loss is None else float(loss),
        )


@dataclass(frozen=True)
class EndEvent(_Message):
    """The script finished; its final weights and predictions are in ``WorkerConfig.arrays_path``.

    Attributes:
        mode: ``script``, ``model-file`` or ``function``: how it trained.
        models: a summary of every trained model.
        environment: what besides the seed and op determinism can change
            the bits (versions, CPU, threads, environment variables).
        stopped_at_max_steps: ``--max-steps`` ended the run.
        stopped_early: a :class:`StopRequest` ended the run.
        xla_steps: some steps were XLA-compiled (their input batches and
            losses could not be observed).
    """

    TYPE: ClassVar[str] = "end"
    mode: str
    models: tuple[ModelSummary, ...]
    environment: Mapping[str, Any]
    stopped_at_max_steps: bool = False
    stopped_early: bool = False
    xla_steps: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {
            "type": self.TYPE,
            "mode": self.mode,
            "models": [m.to_dict() for m in self.models],
            "environment": self.environment,
            "stopped_at_max_steps": self.stopped_at_max_steps,
            "stopped_early": self.stopped_early,
        }
        if self.xla_steps:
            data["xla_steps"] = True
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EndEvent:
        return cls(
            str(data.get("mode", "script")),
            tuple(ModelSummary.from_dict(m) for m in data.get("models", ())),
            _mapping(data.get("environment", {})),
            bool(data.get("stopped_at_max_steps", False)),
            bool(data.get("stopped_early", False)),
            bool(data.get("xla_steps", False)),
        )


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
)
"""Any event a run reports (and :class:`LaunchedEvent`, which the parent adds)."""

_READERS: dict[str, Callable[[Mapping[str, Any]], Event]] = {
    cls.TYPE: cls.from_dict
    for cls in (
        LaunchedEvent,
        SetupErrorEvent,
        StartEvent,
        InitEvent,
        StepEvent,
        HistoryEvent,
        EvaluateEvent,
        Pin,
        PipelineCall,
        ReplayEvent,
        ErrorEvent,
        EndEvent,
    )
}


def parse_event(line: str) -> Event | None:
    """The event on a wire line, or None if the line holds none (it is then skipped)."""
    try:
        data = json.loads(line)
        kind = data.get("type") if isinstance(data, dict) else None
        read = _READERS.get(kind) if isinstance(kind, str) else None
        return None if read is None else read(data)
    except (KeyError, TypeError, ValueError):  # JSONDecodeError is a ValueError
        return None


def _mapping(value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, received {type(value).__name__}")
    return value


def _names_interned(weights: Any) -> dict[str, str]:
    """Fingerprints by variable name, the names interned: a run repeats them in every event."""
    return {sys.intern(name): fp for name, fp in _mapping(weights).items()}


def _array(value: Any) -> tuple[Any, ...]:
    """A JSON array as a tuple (the parent's hot path: elements as they are)."""
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a JSON array, received {type(value).__name__}")
    return tuple(value)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, (str, Mapping)):
        raise TypeError(f"expected a JSON array, received {type(value).__name__}")
    return tuple(str(v) for v in value)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)

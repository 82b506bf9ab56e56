"""The wire between a run process (the worker) and the parent: every message, typed, as JSON lines.

A check trains the user's script in fresh processes (``python -m
reprokit.worker.main``, started by :mod:`reprokit.run.runner`). They talk over three
channels, and this package defines everything that crosses them, in the
role keras' ``Callback`` plays for training: one documented place for the
hooks a run reports through. A distributed executor carries exactly these
messages across machines.

1. **Configuration**, parent → worker, once: a :class:`WorkerConfig` as JSON
   in the environment variable :data:`CONFIG_VAR` (the worker removes it
   before the script runs).
2. **Events**, worker → parent: one JSON object per line, in the order they
   happen, on the pipe ``WorkerConfig.events_fd`` (the script keeps stdout
   and stderr for itself). The ``"type"`` key names the event:

   ================  =========================  ===========================================================
   ``type``          class                      sent
   ================  =========================  ===========================================================
   ``setup_error``   :class:`SetupErrorEvent`   the worker could not prepare the run; nothing follows
   ``start``         :class:`StartEvent`        the hooks are installed; the script starts now
   ``init``          :class:`InitEvent`         a model's initial weights, before its first optimizer step
   ``step``          :class:`StepEvent`         after every optimizer step, once per model it trains
   ``history``       :class:`HistoryEvent`      when ``Model.fit`` returns: its per-epoch logs
   ``evaluate``      :class:`EvaluateEvent`     when the script's ``Model.evaluate`` returns: its results
   ``pin``           :class:`Pin`               the script fixed a seed or op determinism itself
   ``pipeline``      :class:`PipelineCall`      the script asked tf.data to give up element order
   ``replay``        :class:`ReplayEvent`       ``explain`` runs only, after each step up to
                                                ``WorkerConfig.explain_step``: every layer call and gradient
   ``search_trial``  :class:`SearchTrialEvent`  a trial of the script's own hyperparameter search ended
                                                (keras-tuner or Optuna): its hyperparameters and score
   ``error``         :class:`ErrorEvent`        the script failed (with a :class:`~reprokit.core.refusals.Refusal`
                                                if TensorFlow refused op determinism); nothing follows
   ``end``           :class:`EndEvent`          the script finished: a summary of every trained model (its
                                                final weights and predictions are in
                                                ``WorkerConfig.arrays_path``); nothing follows
   ================  =========================  ===========================================================

   ``start`` precedes every other event but ``setup_error``, and a model's
   ``init`` precedes its ``step`` events. A study run (``WorkerConfig.study``)
   sends no ``init`` or ``step`` events. :mod:`reprokit.worker.main` itself sends
   ``setup_error``, ``start``, ``error`` and ``end``; its
   :class:`~reprokit.worker.recorder.Recorder` sends ``init`` and ``step``; the hooks
   of :mod:`reprokit.worker.instrument` send ``history``, ``evaluate`` and ``pin``, those of
   :mod:`reprokit.worker.diagnose` ``pipeline`` and ``replay``, those of :mod:`reprokit.worker.search`
   ``search_trial``. In the parent,
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
The wire format is what the recorded runs in ``tests/data`` hold (and
``tests/protocol/test_wire_format.py`` pins): change it only together with them.

The modules: :mod:`~reprokit.protocol.config` (the configuration and the stop
request), :mod:`~reprokit.protocol.events` (every event, and
:data:`~reprokit.protocol.events.EVENT_TYPES`, the one registry of their
types), and :mod:`~reprokit.protocol.codec`, which writes and reads each
message from its fields and type hints. Import their names from here.

The package imports neither TensorFlow nor NumPy: the parent never does.

May import: :mod:`reprokit.core`.
"""

from reprokit.protocol.codec import ProtocolError
from reprokit.protocol.config import CONFIG_VAR, FunctionTarget, StopRequest, WorkerConfig
from reprokit.protocol.events import (
    EVENT_TYPES,
    CallbackStateEvent,
    EndEvent,
    ErrorEvent,
    EvaluateEvent,
    Event,
    GradientProbe,
    HistoryEvent,
    InitEvent,
    LaunchedEvent,
    LayerProbe,
    ModelSummary,
    Pin,
    PipelineCall,
    PreemptedEvent,
    ReplayEvent,
    SearchTrialEvent,
    SetupErrorEvent,
    StartEvent,
    StepEvent,
    parse_event,
)

__all__ = [
    "CONFIG_VAR",
    "EVENT_TYPES",
    "CallbackStateEvent",
    "EndEvent",
    "ErrorEvent",
    "EvaluateEvent",
    "Event",
    "FunctionTarget",
    "GradientProbe",
    "HistoryEvent",
    "InitEvent",
    "LaunchedEvent",
    "LayerProbe",
    "ModelSummary",
    "Pin",
    "PipelineCall",
    "PreemptedEvent",
    "ProtocolError",
    "ReplayEvent",
    "SearchTrialEvent",
    "SetupErrorEvent",
    "StartEvent",
    "StepEvent",
    "StopRequest",
    "WorkerConfig",
    "parse_event",
]

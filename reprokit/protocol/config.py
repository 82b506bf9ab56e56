"""What the parent tells a run process: its configuration, once, and requests to stop early."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from reprokit.protocol.codec import Message, wire

CONFIG_VAR = "REPROKIT_WORKER_CONFIG"
"""The environment variable that carries a run's :class:`WorkerConfig`."""


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


@dataclass(frozen=True)
class WorkerConfig(Message):
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
            (:class:`~reprokit.protocol.events.ReplayEvent` events; None or 0: no probes).
        function: a training function to call instead of running the script.
        alignment: save the model's structure and hidden activations on the
            probe batch (:func:`reprokit.worker.anatomy.record`).
        whole_state: every ``init`` and ``step`` event fingerprints the whole
            training state, not only the weights: the optimizer's variables,
            the layers' random generators and the global ones, each on the
            host with one hash (a resume check compares a resumed run's start
            with any step of another run).
        preempt_after: the run dies as a preempted machine's would, once
            optimizer step ``preempt_after`` is done and the next one runs
            (killed: no ``finally``, no ``atexit``, no ``on_train_end``).
        script_copy: the copy of ``script`` in the run's private folder, which
            runs as ``__file__`` and ``sys.argv[0]`` (files written next to it
            land there, not beside the user's script); tracebacks and the
            lines reprokit reports still name ``script`` (None: run ``script``).
        sampled: a ``step`` event fingerprints the weights only at the steps
            :func:`reprokit.core.snapshots.sampled_step` names (its ``weights``
            are empty at the others); its batches and loss at every step
            (ignored with ``whole_state``, which fingerprints every step).
    """

    WIRE_ORDER: ClassVar[tuple[str, ...]] = (
        "script",
        "args",
        "seed",
        "op_determinism",
        "events_fd",
        "control_fd",  # written before arrays_path, which comes first among the fields (it has no default)
        "arrays_path",
        "epochs",
        "batch_size",
        "max_steps",
        "explain_step",
        "function",
        "sequential_maps",
        "study",
        "alignment",
        "whole_state",
        "preempt_after",
        "script_copy",
        "sampled",
    )

    script: str
    args: tuple[str, ...] = field(metadata=wire(missing=()))
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
    whole_state: bool = False
    preempt_after: int | None = None
    script_copy: str | None = None
    sampled: bool = False


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

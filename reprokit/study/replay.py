"""The command that replays one run of a seed study exactly: every option it was run with that decides its result.

A study's runs are pinned by their seed, the script's bytes and arguments,
the folder they start in and the run options (:func:`reprokit.study.running.variant_key`).
:class:`Replay` keeps what the study ran with, converted once where the study
starts, and :meth:`Replay.command` writes it back as one shell command:
``cd`` into the folder the runs started in (it is part of the key, and the
script's path may be relative to it), then ``reprokit seeds SCRIPT --seed S
--seeds 1 --no-repeat --fresh`` with the backend, the study folder and every
run option that was not its default, and the script's arguments after ``--``,
each word quoted for the shell (:func:`shlex.join`); the environment
variables of the key that were set (``TF_ENABLE_ONEDNN_OPTS=0``, thread
counts, ``XLA_FLAGS``) come first, as assignments. ``--fresh`` makes it
train the run again (it is stored: without it the replay would only read it
back), and the run it trains replaces the stored one in the same study
folder, under the same key.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from reprokit.core.backends import Backend
from reprokit.run.execution import Execution
from reprokit.run.settings import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, ModelFileOptions
from reprokit.study.metrics import Mode
from reprokit.study.running import StudyOptions, keyed_environment
from reprokit.study.store import default_root


@dataclass(frozen=True)
class Replay:
    """What a study ran with, as far as one of its runs depends on it.

    Attributes:
        folder: the study folder (absolute).
        cwd: the folder the runs started in (None: unknown, no ``cd``).
        backend: the Keras backend the runs trained on (None: not named).
        model_file: the epochs and batch size of a model file.
        timeout: the seconds a run was allowed (None: no limit).
        execution: where the runs executed (Ray's placement decides which
            GPUs a run sees).
        metric: ``--metric`` as given (None: chosen by the report).
        mode: ``--mode`` as given.
        environment: the variables of :data:`~reprokit.study.running.KEYED_ENV` that were set, and their values.
    """

    folder: Path
    cwd: Path | None = None
    backend: Backend | None = None
    model_file: ModelFileOptions = field(default_factory=ModelFileOptions)
    timeout: float | None = None
    execution: Execution = field(default_factory=Execution)
    metric: str | None = None
    mode: Mode | None = None
    environment: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, options: StudyOptions, cwd: Path | None, metric: str | None = None, mode: Mode | None = None) -> Replay:
        """What a study run with ``options`` from ``cwd`` (the runs' folder) repeats in a replay.

        ``options.settings`` must name its one backend (:meth:`~reprokit.run.settings.RunSettings.one_backend`).
        """
        settings = options.settings
        return cls(
            folder=Path(os.path.abspath(options.folder or default_root())),
            cwd=None if cwd is None else Path(os.path.abspath(cwd)),
            backend=settings.backends[0] if settings.backends else None,
            model_file=settings.model_file,
            timeout=settings.timeout,
            execution=settings.execution,
            metric=metric,
            mode=mode,
            environment=keyed_environment(),
        )

    def words(self, script: str, args: Sequence[str], seed: int) -> list[str]:
        """``reprokit seeds …`` that trains ``script`` with ``args`` and seed ``seed`` again, as words."""
        words = ["reprokit", "seeds", script, "--seed", str(seed), "--seeds", "1", "--no-repeat", "--fresh"]
        if self.backend is not None:
            words += ["--backend", self.backend.value]
        mf = self.model_file
        if mf.explicit or (mf.epochs, mf.batch_size) != (DEFAULT_EPOCHS, DEFAULT_BATCH_SIZE):
            words += ["--epochs", str(mf.epochs), "--batch-size", str(mf.batch_size)]
        if self.timeout is not None:
            words += ["--timeout", repr(self.timeout)]
        ex = self.execution
        if ex.ray:
            words += ["--executor", ex.executor.value]
            words += [] if ex.address is None else ["--ray-address", ex.address]
            words += ["--cpus-per-run", repr(ex.cpus_per_run), "--gpus-per-run", repr(ex.gpus_per_run)]
        words += [] if self.metric is None else ["--metric", self.metric]
        words += [] if self.mode is None else ["--mode", self.mode]
        words += ["--study-dir", str(self.folder)]
        return [*words, "--", *args] if args else words

    def command(self, script: str, args: Sequence[str], seed: int) -> str:
        """The shell command that trains seed ``seed`` again exactly (see the module docstring)."""
        command = shlex.join(self.words(script, args, seed))
        if self.environment:  # assignments: NAME=value, the value alone quoted
            command = " ".join(f"{name}={shlex.quote(value)}" for name, value in self.environment) + " " + command
        return command if self.cwd is None else f"cd {shlex.quote(str(self.cwd))} && {command}"

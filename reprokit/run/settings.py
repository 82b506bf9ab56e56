"""The run settings of one command: built once where the options enter, passed down whole to the runners.

A command (``reprokit check``, ``explain``, ``baseline``, ``seeds``,
``compare``) or an API function (:func:`reprokit.check`,
:func:`reprokit.seeds`, :func:`reprokit.compare`) turns its run options into
one frozen :class:`RunSettings`, checked as it is built; the options of a
check or a study carry it whole, and the runners read from it what they
enforce.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from reprokit.core.backends import Backend, default_backend, require_installed
from reprokit.core.errors import UsageError
from reprokit.run.execution import Execution
from reprokit.run.execution import executor as to_executor

DEFAULT_EPOCHS = 5
DEFAULT_BATCH_SIZE = 32


@dataclass(frozen=True)
class ModelFileOptions:
    """How reprokit trains a model file (a script that defines ``build_model()`` and ``load_data()``).

    Scripts that train by themselves ignore these.

    Attributes:
        epochs: epochs to train the model for.
        batch_size: the batch size.
        explicit: whether ``--epochs`` or ``--batch-size`` was given (the
            report notes it when the script trains by itself, and a baseline
            check then compares them with the baseline's).
    """

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    explicit: bool = False

    @classmethod
    def given(cls, epochs: int | None, batch_size: int | None) -> ModelFileOptions:
        """From ``--epochs`` and ``--batch-size``, None where an option was not given."""
        return cls(
            epochs=DEFAULT_EPOCHS if epochs is None else epochs,
            batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size,
            explicit=epochs is not None or batch_size is not None,
        )


@dataclass(frozen=True)
class RunSettings:
    """How every run of one command runs.

    Attributes:
        timeout: seconds one run may take before it is killed (None: no limit).
        jobs: how many runs may execute at once (None: see :func:`reprokit.run.dispatch.jobs_for`).
        model_file: epochs and batch size for a model file.
        execution: where the runs execute: this machine, or a Ray cluster
            (checked as it is built, see :class:`~reprokit.run.execution.Execution`).
        backends: the Keras backends the runs train on (``--backend``,
            repeatable for ``compare`` only); empty: the one Keras would
            use (:func:`~reprokit.core.backends.default_backend`).
    """

    timeout: float | None = None
    jobs: int | None = None
    model_file: ModelFileOptions = field(default_factory=ModelFileOptions)
    execution: Execution = field(default_factory=Execution)
    backends: tuple[Backend, ...] = ()

    @property
    def backend(self) -> Backend:
        """The backend the runs train on: the first one named, else the one Keras would use."""
        return self.backends[0] if self.backends else default_backend()

    def one_backend(self) -> RunSettings:
        """These settings, checked to name at most one backend, with the backend resolved.

        Raises:
            UsageError: several backends (only ``compare`` runs several), or
                ``KERAS_BACKEND`` names one that cannot train.
        """
        if len(self.backends) > 1:
            named = " ".join(f"--backend {b.value}" for b in self.backends)
            raise UsageError(f"expected one --backend, received {named}; only compare runs several backends")
        return RunSettings(self.timeout, self.jobs, self.model_file, self.execution, (self.backend,))

    @classmethod
    def of(
        cls,
        *,
        timeout: float | None = None,
        jobs: int | None = None,
        epochs: int = DEFAULT_EPOCHS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        executor: str = "local",
        ray_address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        backend: str | Sequence[str] | None = None,
    ) -> RunSettings:
        """The settings of the Python API's keyword arguments (:func:`reprokit.check`, ``seeds``, ``compare``).

        Raises:
            UsageError: an unknown executor or backend, or bad Ray options
                (one line, as the command line says it).
        """
        return cls(
            timeout=timeout,
            jobs=jobs,
            model_file=ModelFileOptions(epochs, batch_size),
            execution=Execution(to_executor(executor), ray_address, cpus_per_run, gpus_per_run),
            backends=backends_of(backend),
        )


def backends_of(named: str | Sequence[str] | None) -> tuple[Backend, ...]:
    """The backends ``--backend`` (or ``backend=``) names, in order, each once; none: the one Keras would use.

    Raises:
        UsageError: an unknown backend, a default one that cannot train, or one not installed here.
    """
    names = [named] if isinstance(named, str) else list(named or ())
    parsed = [Backend.parse(name) for name in names]
    return tuple(require_installed(b) for b in dict.fromkeys(parsed)) or (require_installed(default_backend()),)

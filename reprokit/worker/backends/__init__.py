"""Everything a run process does that depends on the Keras backend: one module per backend.

A run process trains on one backend (``KERAS_BACKEND``, set by the parent from
:class:`~reprokit.core.controls.Controls`). :func:`load` imports that
backend's module, and only that one: a JAX run never imports TensorFlow.
Each module provides one :class:`Framework`:

* :meth:`Framework.apply` seeds the run and switches op determinism on, as the
  backend's :class:`~reprokit.core.backends.Profile` says;
* :meth:`Framework.install` installs the hooks that see compiled train steps
  (``tf.function``, ``jax.jit``), the losses gradients are taken of, and the
  script's own pins;
* :meth:`Framework.environment` says what can change the bits besides the
  seed (framework versions, devices, threads, determinism state);
* :attr:`Framework.tensors` reads the backend's values for the backend-free
  :class:`~reprokit.worker.recorder.Recorder`.

May import: ``reprokit.core``, ``reprokit.protocol`` and the rest of ``reprokit.worker``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Protocol

from reprokit.core.backends import Backend
from reprokit.worker.recorder import Recorder, Tensors

if TYPE_CHECKING:
    from reprokit.core.controls import Controls
    from reprokit.protocol import WorkerConfig
    from reprokit.worker.registry import OptimizerRecord


class Framework(Protocol):
    """The run process's side of one backend."""

    backend: Backend
    tensors: Tensors

    def apply(self, controls: Controls) -> None:
        """Seeds every global generator and, if ``controls`` says so, switches op determinism on."""

    def install(self, recorder: Recorder, config: WorkerConfig) -> None:
        """Installs the backend's hooks (before the script runs)."""

    def traced_step(self, recorder: Recorder, state: OptimizerRecord) -> None:
        """An optimizer's ``apply`` runs in code being compiled: records the step when it runs."""

    def recording(self) -> bool:
        """Whether a gradient may be taken of what a model computes now (its inputs are training batches)."""

    def environment(self) -> dict[str, Any]:
        """The backend's part of the run's environment (versions, devices, threads, determinism)."""


def load(backend: Backend) -> Framework:
    """The :class:`Framework` of ``backend`` (imports that backend, and only it)."""
    module = importlib.import_module(f"reprokit.worker.backends.{backend.value}")
    framework: Framework = module.FRAMEWORK
    return framework


__all__ = ["Framework", "Recorder", "Tensors", "load"]

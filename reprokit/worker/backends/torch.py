"""The run process on PyTorch: seeds, deterministic algorithms, eager steps (imports PyTorch).

Keras runs PyTorch eagerly: every optimizer ``apply`` is seen as it happens
(:mod:`reprokit.worker.instrument`), and the loss where ``backward`` is
called on it. Op determinism is ``torch.use_deterministic_algorithms(True)``,
with ``CUBLAS_WORKSPACE_CONFIG`` set before CUDA starts (see
:data:`reprokit.core.backends.PROFILES`).
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import torch

from reprokit.core.backends import Backend
from reprokit.worker.backends.common import KerasTree

if TYPE_CHECKING:
    from reprokit.core.controls import Controls
    from reprokit.protocol import WorkerConfig
    from reprokit.worker.recorder import Recorder
    from reprokit.worker.registry import OptimizerRecord, TrackedModel


def _numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


class TorchTensors(KerasTree):
    """Reads PyTorch's values (always concrete: Keras runs PyTorch eagerly)."""

    def concrete(self, structure: Any) -> bool:
        return True

    def numpy(self, value: Any) -> np.ndarray:
        return _numpy(value)

    def observe_traced_input(self, recorder: Recorder, tracked: TrackedModel, inputs: Any) -> None:
        return  # nothing is traced

    def observe_traced_loss(self, recorder: Recorder, loss: Any) -> None:
        return


class Torch:
    """The run process's side of PyTorch (see :class:`reprokit.worker.backends.Framework`)."""

    backend = Backend.TORCH

    def __init__(self) -> None:
        self.tensors = TorchTensors()

    def apply(self, controls: Controls) -> None:
        keras.utils.set_random_seed(controls.seed)  # seeds torch too
        if controls.op_determinism:
            torch.use_deterministic_algorithms(True)

    def install(self, recorder: Recorder, config: WorkerConfig) -> None:
        backward = torch.Tensor.backward

        @functools.wraps(backward)
        def hooked(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            if self.dim() == 0 and not recorder.finalizing:
                recorder.observe_loss(self.detach())
            return backward(self, *args, **kwargs)  # type: ignore[no-untyped-call]

        torch.Tensor.backward = hooked  # type: ignore[method-assign]

    def traced_step(self, recorder: Recorder, state: OptimizerRecord) -> None:
        recorder.after_step(state)  # torch.compile'd code still calls Python

    def recording(self) -> bool:
        return bool(torch.is_grad_enabled())

    def environment(self) -> dict[str, Any]:
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return {
            "torch": torch.__version__,
            "gpus": [f"cuda:{i}" for i in range(len(gpus))],
            "gpu_models": gpus,
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "op_determinism": torch.are_deterministic_algorithms_enabled(),
            "cublas_workspace": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        }


FRAMEWORK = Torch()

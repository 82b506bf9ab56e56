"""The controlled settings: every seed and TensorFlow op determinism.

Two halves, because ``PYTHONHASHSEED`` only works if it is set before Python
starts: :func:`child_environment` prepares the environment of a fresh run
process; the run's backend (:mod:`reprokit.worker.backends`) seeds everything
else inside it. The same in the user's own process: :mod:`reprokit.inprocess`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass

from reprokit.core.backends import PROFILES, Backend, determinism_environment

DEFAULT_SEED = 1234
"""The seed used when ``--seed`` is not given (printed in every report)."""

IN_WORKER_VAR = "REPROKIT_IN_WORKER"
"""Set in a run process while the script runs: decorated functions must not verify themselves again."""

RUN_MEMORY_BYTES = 2 * 1024**3
"""Memory set aside per concurrent run when choosing how many to start."""


def default_jobs(runs: int) -> int:
    """How many runs of a check to execute at once on this machine.

    One more than the CPU cores: on 2 cores, 3 concurrent trainings of the
    digits MLP took 10.6 s, 2 took 7.3 s, 5 took 19.5 s and one alone 8.0 s
    (importing TensorFlow is partly serial, so a third run fills the gaps).
    Capped by available memory (2 GiB a run). With NVIDIA GPUs the runs
    share them: every run grows its GPU memory as it needs it
    (:func:`child_environment`) instead of TensorFlow's default of taking
    all of it in the first process.
    Thread settings are left alone: every run keeps TensorFlow's defaults,
    identical in all runs, because one intra-op thread would serialize (and
    hide) nondeterministic kernels.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    jobs = cores + 1
    with contextlib.suppress(ValueError, OSError, AttributeError):
        jobs = min(jobs, max(1, os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // RUN_MEMORY_BYTES))
    return max(1, min(runs, jobs))


def visible_gpus(environ: Mapping[str, str] | None = None) -> list[str]:
    """The NVIDIA GPUs runs may use, as ``CUDA_VISIBLE_DEVICES`` entries ([]: none).

    Only GPUs of one model are offered for spreading runs: two models of GPU
    compute different bits, and runs that are compared must not differ by
    the device they ran on. A mixed machine keeps every run on its first GPU.
    """
    environ = os.environ if environ is None else environ
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    root = "/proc/driver/nvidia/gpus"
    try:
        found = sorted(os.listdir(root))
        models = {_gpu_model(os.path.join(root, bus)) for bus in found}
    except OSError:
        return []
    entries = [e.strip() for e in visible.split(",")] if visible else [str(i) for i in range(len(found))]
    return entries if len(models) == 1 else entries[:1]


def _gpu_model(folder: str) -> str:
    with open(os.path.join(folder, "information"), encoding="utf-8", errors="replace") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("Model:")), "")


GPU_OF_PAIR = {"controlled": 0, "seed": 0, "files": 0, "ops": 1}
"""Which GPU (by index among those visible, modulo their number) each role's runs use.

The runs of one compared pair always share a device: controlled-1 is compared
with controlled-2 and with seed-1, so those share the first GPU; the ops pair
takes the next one.
"""


RECORDED_ENV_VARS = (
    "PYTHONHASHSEED",
    *dict.fromkeys(name for profile in PROFILES.values() for name, _ in profile.environment),
    "JAX_ENABLE_X64",
    "JAX_DEFAULT_PRNG_IMPL",
    "TF_ENABLE_ONEDNN_OPTS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "OMP_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "TF_XLA_FLAGS",
    "KERAS_BACKEND",
)
"""Environment variables that can change the bits of a training run."""


@dataclass(frozen=True)
class Controls:
    """The settings one training run is started with.

    Attributes:
        seed: the seed for ``PYTHONHASHSEED``, ``random``, NumPy, TensorFlow
            and Keras.
        op_determinism: whether op determinism is enabled (what that sets on
            each backend: :data:`reprokit.core.backends.PROFILES`).
        backend: the Keras backend the run trains on.
    """

    seed: int
    op_determinism: bool
    backend: Backend = Backend.TENSORFLOW


def child_environment(controls: Controls, base: Mapping[str, str], gpu: str | None = None) -> dict[str, str]:
    """Returns the environment for a fresh run process.

    Args:
        controls: the settings of the run.
        base: the environment to start from (usually ``os.environ``).
        gpu: the one GPU the run may see (a ``CUDA_VISIBLE_DEVICES`` entry;
            None: those of ``base``).

    Returns:
        A copy of ``base`` with the hash seed pinned, ``KERAS_BACKEND`` set to
        the run's backend, the op-determinism switches of every backend set or
        removed so that they match ``controls`` whatever the caller's
        environment says, and GPU memory grown as needed instead of taken
        whole by the first process (``TF_FORCE_GPU_ALLOW_GROWTH=true``,
        ``XLA_PYTHON_CLIENT_PREALLOCATE=false``, unless set) so that runs
        share a GPU.
    """
    env = determinism_environment(controls.backend, controls.op_determinism, base)
    env.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    env["PYTHONHASHSEED"] = str(controls.seed)
    env["KERAS_BACKEND"] = controls.backend.value
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's banner out of the user's log
    return env

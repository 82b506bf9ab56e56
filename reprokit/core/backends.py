"""The Keras backends reprokit runs on, and what each one's determinism profile sets and why.

Keras 3 trains on TensorFlow, JAX or PyTorch. What differs between them for
reproducibility is small and lives here, as data: how a run process is told
its backend, which switches make its ops deterministic (environment
variables that must be set before the framework starts, and a call in the
process), and what a check can observe there. The run process's side of it
(seeding, the training hooks, the environment it records) lives in
:mod:`reprokit.worker.backends`, one module per backend; nothing else in
reprokit knows which framework runs.
"""

from __future__ import annotations

import importlib.util
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from importlib import metadata
from pathlib import Path

from reprokit.core.errors import UsageError


class Backend(str, Enum):
    """A Keras backend (the value is what ``KERAS_BACKEND`` says)."""

    TENSORFLOW = "tensorflow"
    JAX = "jax"
    TORCH = "torch"

    @classmethod
    def parse(cls, name: str) -> Backend:
        """The backend ``name`` names (``pytorch`` is ``torch``, as Keras reads it).

        Raises:
            UsageError: no such backend.
        """
        wanted = name.strip().lower()
        wanted = "torch" if wanted == "pytorch" else wanted
        for backend in cls:
            if backend.value == wanted:
                return backend
        choices = ", ".join(b.value for b in cls)
        raise UsageError(f"expected a Keras backend among {choices}, received {name!r}")


def default_backend(environ: Mapping[str, str] | None = None) -> Backend:
    """The backend Keras itself would use: ``KERAS_BACKEND``, else ``keras.json``'s, else TensorFlow.

    ``keras.json`` is read from ``$KERAS_HOME`` (default ``~/.keras``), as Keras
    reads it. A backend reprokit does not know (numpy, openvino: they cannot
    train) is a usage error.

    Raises:
        UsageError: ``KERAS_BACKEND`` or ``keras.json`` names a backend that cannot train.
    """
    environ = os.environ if environ is None else environ
    named = environ.get("KERAS_BACKEND")
    if named:
        return _trainable(named, "KERAS_BACKEND")
    home = Path(environ.get("KERAS_HOME") or Path(environ.get("HOME", "~")).expanduser() / ".keras")
    try:
        config = json.loads((home / "keras.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return Backend.TENSORFLOW
    named = config.get("backend") if isinstance(config, dict) else None
    return _trainable(named, str(home / "keras.json")) if isinstance(named, str) else Backend.TENSORFLOW


DISTRIBUTIONS: Mapping[Backend, str] = {Backend.TENSORFLOW: "tensorflow", Backend.JAX: "jax", Backend.TORCH: "torch"}
"""The framework each backend needs: its import name and its distribution (the same for all three)."""
_INSTALL = {
    Backend.TENSORFLOW: "pip install tensorflow",
    Backend.JAX: 'pip install "reprokit[jax]"',
    Backend.TORCH: 'pip install "reprokit[torch]"',
}


def require_installed(backend: Backend) -> Backend:
    """``backend``, checked to be importable here (before any run is started; nothing is imported).

    Raises:
        UsageError: its framework is not installed, with the command that installs it.
    """
    if importlib.util.find_spec(DISTRIBUTIONS[backend]) is None:
        raise UsageError(
            f"the Keras backend {backend.value} is not installed here; install it with: {_INSTALL[backend]}"
        )
    return backend


def installed_version(backend: Backend) -> str | None:
    """The installed version of ``backend``'s framework (None: not installed)."""
    try:
        return metadata.version(DISTRIBUTIONS[backend])
    except metadata.PackageNotFoundError:
        return None


def _trainable(name: str, where: str) -> Backend:
    try:
        return Backend.parse(name)
    except UsageError:
        raise UsageError(
            f"{where} names the Keras backend {name!r}, which cannot train; pass --backend tensorflow, jax or torch"
        ) from None


@dataclass(frozen=True)
class Switch:
    """One setting of a determinism profile: what is set, and why.

    Attributes:
        setting: as a user would write it (``TF_DETERMINISTIC_OPS=1``,
            ``torch.use_deterministic_algorithms(True)``).
        why: what it does, in one line.
    """

    setting: str
    why: str


@dataclass(frozen=True)
class Profile:
    """What reprokit sets on one backend, and what a check can observe there.

    Attributes:
        backend: the backend.
        seeds: what the seed reaches (every run, op determinism on or off).
        determinism: what "op determinism on" sets (the controlled and seed
            runs); the ops pair runs without these.
        environment: the environment variables of ``determinism``, set in a
            run process before the framework starts.
        notes: what else bears on reproducibility on this backend.
        op_explain: whether ``reprokit explain`` can replay a step op by op.
        pipeline_findings: whether tf.data pipeline calls are reported.
    """

    backend: Backend
    seeds: tuple[Switch, ...]
    determinism: tuple[Switch, ...]
    environment: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    op_explain: bool
    pipeline_findings: bool


_SEED_ALL = Switch(
    "keras.utils.set_random_seed(seed)",
    "seeds Python's random, NumPy's global generator and Keras' seed generator (and the framework's own seed)",
)
_HASH_SEED = Switch("PYTHONHASHSEED=seed", "fixes the order of sets and dicts of strings (set before Python starts)")

XLA_DETERMINISM_FLAG = "--xla_gpu_deterministic_ops=true"
"""The XLA flag that makes JAX's GPU kernels deterministic (and turns off their autotuning)."""

PROFILES: Mapping[Backend, Profile] = {
    Backend.TENSORFLOW: Profile(
        Backend.TENSORFLOW,
        (_HASH_SEED, _SEED_ALL),
        (
            Switch(
                "tf.config.experimental.enable_op_determinism()",
                "deterministic kernels; refuses ops that have none (GPU) and random ops without a seed",
            ),
            Switch("TF_DETERMINISTIC_OPS=1", "the same switch, read by TensorFlow as it starts"),
        ),
        (("TF_DETERMINISTIC_OPS", "1"), ("TF_CUDNN_DETERMINISTIC", "1")),
        (
            "Keras turns XLA jit_compile off under op determinism: never compare bits across the two settings.",
            "The intra-op thread count changes the bits of some models; every run keeps TensorFlow's default.",
        ),
        op_explain=True,
        pipeline_findings=True,
    ),
    Backend.JAX: Profile(
        Backend.JAX,
        (_HASH_SEED, _SEED_ALL),
        (
            Switch(
                f"XLA_FLAGS={XLA_DETERMINISM_FLAG}",
                "deterministic XLA kernels on GPU (scatter, reductions), autotuning off; "
                "XLA on CPU computes in a fixed order without it",
            ),
        ),
        (("XLA_FLAGS", XLA_DETERMINISM_FLAG),),
        (
            "JAX's PRNG is functional: a key made from the clock or os.urandom is uncontrolled whatever Keras seeds.",
            "Keras jit-compiles train steps on JAX; steps are observed by jax.debug.callback inside the compiled "
            "step (per-step losses are not observed).",
            "The PRNG implementation (jax_default_prng_impl) changes every random number; it is recorded.",
        ),
        op_explain=False,
        pipeline_findings=False,
    ),
    Backend.TORCH: Profile(
        Backend.TORCH,
        (_HASH_SEED, _SEED_ALL),
        (
            Switch(
                "torch.use_deterministic_algorithms(True)",
                "deterministic kernels; raises for ops that have none",
            ),
            Switch(
                "CUBLAS_WORKSPACE_CONFIG=:4096:8",
                "needed by cuBLAS for deterministic matrix products on CUDA ≥ 10.2 (no effect on CPU)",
            ),
        ),
        (("CUBLAS_WORKSPACE_CONFIG", ":4096:8"),),
        ("Keras runs PyTorch eagerly: every optimizer step is observed as it happens.",),
        op_explain=False,
        pipeline_findings=False,
    ),
}
"""The determinism profile of every backend."""


def profile(backend: Backend) -> Profile:
    """The determinism profile of ``backend``."""
    return PROFILES[backend]


def determinism_environment(
    backend: Backend, on: bool, base: Mapping[str, str], others: Sequence[Backend] = tuple(Backend)
) -> dict[str, str]:
    """``base`` with the determinism switches of ``backend`` set (``on``) or cleared, and every other backend's cleared.

    ``XLA_FLAGS`` keeps the user's own flags: only the determinism flag is
    added or removed. ``CUBLAS_WORKSPACE_CONFIG`` is left as the user set it
    when determinism is off (it does not by itself make anything deterministic).
    """
    env = dict(base)
    for other in others:
        for name, value in PROFILES[other].environment:
            wanted = on and other is backend
            if name == "XLA_FLAGS":
                flags = [f for f in env.get(name, "").split() if not f.startswith("--xla_gpu_deterministic_ops")]
                flags += [value] if wanted else []
                if flags:
                    env[name] = " ".join(flags)
                else:
                    env.pop(name, None)
            elif wanted:
                env[name] = value
            elif name != "CUBLAS_WORKSPACE_CONFIG":
                env.pop(name, None)
    return env


def without_determinism_flag(xla_flags: str) -> str:
    """``XLA_FLAGS`` without reprokit's determinism flag (the user's own flags, which can change the bits)."""
    return " ".join(f for f in xla_flags.split() if not f.startswith("--xla_gpu_deterministic_ops"))


def framework_line(environment: Mapping[str, object]) -> str:
    """The framework a run's recorded environment ran (``TensorFlow 2.21.0``, ``JAX 0.10.2 (threefry2x32)``)."""
    if environment.get("jax"):
        prng = environment.get("prng_impl")
        return f"JAX {environment['jax']}" + (f" ({prng} PRNG)" if prng else "")
    if environment.get("torch"):
        return f"PyTorch {environment['torch']}"
    return f"TensorFlow {environment.get('tensorflow', '?')}"


def profile_line(backend: Backend) -> str:
    """What op determinism sets on ``backend``, in one line (reports name it)."""
    return f"op determinism on {backend.value}: " + ", ".join(s.setting for s in PROFILES[backend].determinism)

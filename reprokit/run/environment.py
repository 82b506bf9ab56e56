"""A run's environment signature: which of its fields must be equal before two runs' bits can be compared.

Bits compare only across runs with the same Keras backend and its version
(TensorFlow, JAX, PyTorch), Keras, CPU, thread settings and op determinism, on one machine (one node, one GPU model): a
baseline and a check, or a study's repeat and its original, are first held
to this.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reprokit.core.backends import PROFILES, without_determinism_flag

SIGNATURE_FIELDS = (
    "python",
    "backend",
    "tensorflow",
    "jax",
    "jaxlib",
    "torch",
    "keras",
    "prng_impl",
    "x64",
    "machine",
    "cpu",
    "cpu_flags",
    "cpu_count",
    "gpus",
    "intra_op_threads",
    "inter_op_threads",
    "op_determinism",
    "env",
)
"""Environment fields that must be equal for a bitwise comparison."""

CONTROLLED_ENV = (
    "PYTHONHASHSEED",
    "KERAS_BACKEND",
    *(name for profile in PROFILES.values() for name, _ in profile.environment if name != "XLA_FLAGS"),
)  # set by reprokit itself; XLA_FLAGS also holds the user's own flags, so only reprokit's flag is left out


def signature(environment: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a run's environment that decide whether bits can match.

    The switches reprokit sets itself are left out (the seed, the backend's
    determinism switches, the backend, which is a field of its own);
    ``XLA_FLAGS`` counts without reprokit's determinism flag.
    """
    found = {name: environment.get(name) for name in SIGNATURE_FIELDS}
    env = {k: v for k, v in (environment.get("env") or {}).items() if k not in CONTROLLED_ENV}
    if "XLA_FLAGS" in env:
        env["XLA_FLAGS"] = without_determinism_flag(env["XLA_FLAGS"])
        if not env["XLA_FLAGS"]:
            del env["XLA_FLAGS"]
    found["env"] = env
    return found


RUN_PLACE_FIELDS = ("node", "ray_node", "gpu_models")
"""Where a run ran: two runs of a check compare bitwise only on one machine (and one node, one GPU model)."""

_ASSIGNED_ENV = ("CUDA_VISIBLE_DEVICES",)  # which GPU of a machine a run got: the same model computes the same bits


def environment_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, ...]:
    """The fields in which two runs' environments differ so that their bits cannot be compared.

    The environment signature (:data:`SIGNATURE_FIELDS`, the controls
    aside) and where the runs ran (:data:`RUN_PLACE_FIELDS`); the GPU a run
    was assigned on one machine does not count, its model does.
    """
    found = []
    sig_a, sig_b = signature(a), signature(b)
    for name in SIGNATURE_FIELDS:
        if name == "env":
            env_a = {k: v for k, v in sig_a["env"].items() if k not in _ASSIGNED_ENV}
            env_b = {k: v for k, v in sig_b["env"].items() if k not in _ASSIGNED_ENV}
            found += [f"env {k}" for k in sorted(set(env_a) | set(env_b)) if env_a.get(k) != env_b.get(k)]
        elif sig_a.get(name) != sig_b.get(name):
            found.append(name)
    found += [name for name in RUN_PLACE_FIELDS if a.get(name) != b.get(name)]
    return tuple(found)

"""The controlled settings: every seed and TensorFlow op determinism.

Two halves, because ``PYTHONHASHSEED`` only works if it is set before Python
starts: :func:`child_environment` prepares the environment of a fresh run
process, :func:`apply_in_process` seeds everything else inside it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_SEED = 1234
"""The seed used when ``--seed`` is not given (printed in every report)."""

DETERMINISM_ENV_VARS = ("TF_DETERMINISTIC_OPS", "TF_CUDNN_DETERMINISTIC")
"""Environment switches TensorFlow reads for op determinism (the second one
only matters to older TensorFlow on GPU; both are set or cleared together)."""

RECORDED_ENV_VARS = (
    "PYTHONHASHSEED",
    *DETERMINISM_ENV_VARS,
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
        op_determinism: whether TensorFlow op determinism is enabled.
    """

    seed: int
    op_determinism: bool


def child_environment(controls: Controls, base: Mapping[str, str]) -> dict[str, str]:
    """Returns the environment for a fresh run process.

    Args:
        controls: the settings of the run.
        base: the environment to start from (usually ``os.environ``).

    Returns:
        A copy of ``base`` with the hash seed pinned, the Keras backend set to
        TensorFlow and the op-determinism switches set or removed so that they
        match ``controls`` whatever the caller's environment says.
    """
    env = dict(base)
    env["PYTHONHASHSEED"] = str(controls.seed)
    env["KERAS_BACKEND"] = "tensorflow"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's banner out of the user's log
    for name in DETERMINISM_ENV_VARS:
        if controls.op_determinism:
            env[name] = "1"
        else:
            env.pop(name, None)
    return env


def apply_in_process(controls: Controls) -> None:
    """Seeds every global generator and sets op determinism in this process.

    Seeds Python's ``random``, NumPy's global generator, TensorFlow's global
    seed and Keras' global seed generator (``keras.utils.set_random_seed``),
    then enables TensorFlow op determinism if ``controls`` asks for it. Op
    determinism is never switched off here: TensorFlow offers no public way to
    do so reliably, which is why every run gets its own process.
    """
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(controls.seed)
    if controls.op_determinism:
        tf.config.experimental.enable_op_determinism()

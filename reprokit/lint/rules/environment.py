"""Environment rules (RK107, RK109): thread and environment settings that do not take effect."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from reprokit.lint.astutil import dotted_name, environment_writes
from reprokit.lint.registry import Detection, Family, Rule


def thread_settings_assigned(tree: ast.Module) -> Iterator[Detection]:
    """RK107: ``tf.config.threading.set_*_threads = n``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and re.fullmatch(r"set_\w+_threads", target.attr):
                    yield (
                        target,
                        f"assigning to {target.attr} replaces TensorFlow's function instead of setting the threads.",
                        f"{dotted_name(target)}({ast.unparse(node.value)})",
                    )


def late_environment(tree: ast.Module) -> Iterator[Detection]:
    """RK109: ``PYTHONHASHSEED`` set in the script; ``TF_DETERMINISTIC_OPS`` set after TensorFlow's import."""
    first_tf_import = min(
        (
            n.lineno
            for n in ast.walk(tree)
            if (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "tensorflow" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "tensorflow")
        ),
        default=None,
    )
    for node, variable, _ in environment_writes(tree):
        if variable == "PYTHONHASHSEED":
            yield (
                node,
                "PYTHONHASHSEED set inside the script has no effect: Python reads it only at start-up.",
                "set it in the environment before Python starts: PYTHONHASHSEED=0 python train.py",
            )
        elif variable == "TF_DETERMINISTIC_OPS" and first_tf_import is not None and node.lineno > first_tf_import:
            yield (
                node,
                "TF_DETERMINISTIC_OPS set after TensorFlow was imported may not take effect.",
                "call tf.config.experimental.enable_op_determinism() instead",
            )


RULES = (
    Rule(
        code="RK107",
        name="thread-setting-assigned",
        family=Family.ENVIRONMENT,
        message="`tf.config.threading.set_*_threads = n` (assigned instead of called)",
        fix="call it: `tf.config.threading.set_intra_op_parallelism_threads(n)`",
        rationale="Assigning a number to the setter replaces TensorFlow's function instead of calling it, so "
        "the thread count stays what it was. The intra-op thread count changes the bits for some models: "
        "measured (TensorFlow 2.21, CPU), a wide MLP, a conv net and a `reduce_sum` of 1e7 elements gave other "
        "results with other counts, so runs are reproducible only with the same thread configuration.",
        source=None,
        gpu_only=False,
        detect=thread_settings_assigned,
    ),
    Rule(
        code="RK109",
        name="environment-set-too-late",
        family=Family.ENVIRONMENT,
        message="`PYTHONHASHSEED` set inside the script (too late), `TF_DETERMINISTIC_OPS` set after TensorFlow "
        "is imported",
        fix="set `PYTHONHASHSEED` before Python starts (`PYTHONHASHSEED=0 python train.py`); call "
        "`tf.config.experimental.enable_op_determinism()` instead of setting `TF_DETERMINISTIC_OPS`",
        rationale="Python reads `PYTHONHASHSEED` only at start-up, so setting it in `os.environ` leaves this "
        "process's string hashing, and the order of its sets of strings, random: measured, pinned before start-up "
        "the runs were identical, set to 1, 2 and 3 they gave 3 different results. `TF_DETERMINISTIC_OPS=1` is "
        "equivalent to `tf.config.experimental.enable_op_determinism()`, but set after TensorFlow was imported "
        "it may not take effect.",
        source=None,
        gpu_only=False,
        detect=late_environment,
    ),
)

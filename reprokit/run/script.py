"""The user's script: checked before any run, and required to have trained once a run ends."""

from __future__ import annotations

import ast
import re
import traceback
from pathlib import Path

from reprokit.core.errors import NoTrainingError, ScriptFailedError, UsageError
from reprokit.core.paths import require_file
from reprokit.run.runner import Target
from reprokit.run.trace import RunTrace

DATA_SUFFIXES = frozenset(
    {".csv", ".tsv", ".txt", ".json", ".jsonl", ".npy", ".npz", ".h5", ".hdf5", ".keras", ".pkl", ".pickle"}
    | {".parquet", ".png", ".jpg", ".jpeg", ".zip", ".gz", ".tar", ".tfrecord", ".pb", ".ipynb", ".md", ".yaml"}
)
"""Files that are no Python script (some would even compile: a CSV of numbers is a tuple expression)."""


def validate_script(script: Path) -> None:
    """Fails before any run unless ``script`` is a readable Python file that compiles.

    Raises:
        UsageError: missing, a folder or other non-regular file (a FIFO), unreadable, or a data file (exit 2).
        ScriptFailedError: it does not compile, with the error as Python
            reports it (exit 3, as if the first run had failed on it).
    """
    require_file(script, "script")  # before any read: a FIFO would block it
    if script.suffix.lower() in DATA_SUFFIXES:
        raise UsageError(f"expected a Python script (train.py), received a {script.suffix} file: {script}")
    try:
        compile(script.read_bytes(), str(script), "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as e:  # ValueError: null bytes, before Python 3.11.4
        shown = "".join(traceback.format_exception_only(type(e), e)).rstrip()
        last = shown.splitlines()[-1]
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        raise ScriptFailedError(f"the script does not compile: {last}{where}", "", shown) from None


def require_training(trace: RunTrace, target: Target) -> None:
    if trace.steps == 0:
        raise NoTrainingError(
            f"no Keras training step was observed in {target.label}: it must train a Keras "
            "model (Model.fit, a custom train_step, or a GradientTape loop that calls "
            "optimizer.apply_gradients), or define build_model() and load_data()"
        )


_CLOCK_IMPORT = re.compile(
    r"^\s*(?:import\s+(?:[\w.]+(?:\s+as\s+\w+)?\s*,\s*)*(?:time|datetime)\b|from\s+(?:time|datetime)\s+import\b)",
    re.MULTILINE,
)


def reads_clock(script: Path) -> bool:
    """Whether the script, or a module of its own folder that it imports, imports ``time`` or ``datetime``.

    A static look, for what a check's run plan costs: the two controlled runs
    of such a script start apart, so that a seed taken from the clock in whole
    seconds differs between them (see :data:`reprokit.checking.runs.CLOCK_GAP`).
    """
    try:
        source = script.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if _CLOCK_IMPORT.search(source):
        return True
    for name in _imported(source):
        module = script.parent / f"{name}.py"
        try:
            if module.is_file() and _CLOCK_IMPORT.search(module.read_text(encoding="utf-8", errors="replace")):
                return True
        except OSError:
            continue
    return False


def _imported(source: str) -> list[str]:
    """The top-level names of the modules ``source`` imports (none if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module.split(".")[0])
    return list(dict.fromkeys(names))

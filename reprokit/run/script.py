"""The user's script: checked before any run, and required to have trained once a run ends."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from reprokit.core.errors import NoTrainingError, ScriptFailedError, UsageError
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
        UsageError: missing, a folder, unreadable, or a data file (exit 2).
        ScriptFailedError: it does not compile, with the error as Python
            reports it (exit 3, as if the first run had failed on it).
    """
    if not script.exists():
        raise UsageError(f"script not found: {script}")
    if not script.is_file():
        raise UsageError(f"expected a Python script, received a directory: {script}")
    if not os.access(script, os.R_OK):
        raise UsageError(f"script is not readable: {script}")
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

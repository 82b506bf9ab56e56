"""``reprokit align``: why are the weights of two saved models different? (the parent side).

Checks the input, runs :mod:`reprokit.worker.alignrun` in a fresh process (which
imports Keras; this module never does), and reads its arrays back into an
:class:`AlignReport` with :func:`reprokit.weights.matching.compare`, the same code
that answers the question for the seed pair of ``reprokit check``.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from reprokit.core import views
from reprokit.core.errors import InternalError, UsageError
from reprokit.core.paths import kind, require_file
from reprokit.run.process import kill_group
from reprokit.weights.matching import Alignment, compare
from reprokit.weights.similarity import class_agreement, loss_barrier
from reprokit.weights.structure import Structure, under

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")
DATA_SUFFIXES = (".npz", ".npy")
EXIT_BAD_INPUT = 2  # alignrun's exit codes
EXIT_BUG = 4


@dataclass(frozen=True)
class Barrier:
    """The loss along the straight path from A to B with matched units.

    Attributes:
        losses: the loss at t = 0, 0.1, …, 1 (A at 0, matched B at 1).
        height: the largest excess over the straight line between the ends
            (0 or less: the two solutions are linearly connected).
    """

    losses: tuple[float, ...]
    height: float


@dataclass(frozen=True)
class AlignReport(views.Shown):
    """Two saved models compared after matching B's hidden units to A's.

    Attributes:
        model_a: the first model's path.
        model_b: the second's.
        data: the data file, or None (random inputs).
        rows: examples the functional measures were taken on.
        alignment: the figures, layer by layer.
        verification: the largest output difference of matched B against B,
            relative to the outputs' scale (a permutation keeps the function:
            at most 1e-5).
        barrier: the loss barrier (with labels and a compiled loss).
        warnings: what the figures must be read with.
    """

    model_a: str
    model_b: str
    data: str | None
    rows: int
    alignment: Alignment
    verification: float
    barrier: Barrier | None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "data": self.data,
            "rows": self.rows,
            **self.alignment.to_dict(),
            "verification_max_output_difference": self.verification,
            "loss_barrier": None
            if self.barrier is None
            else {"height": self.barrier.height, "losses": list(self.barrier.losses)},
            "warnings": list(self.warnings),
        }


def check_inputs(model_a: Path, model_b: Path, data: Path | None) -> None:
    """Raises :class:`UsageError` for a missing or unknown file, before any process starts."""
    for path in (model_a, model_b):
        if kind(path) == "missing":
            raise UsageError(f"no such model file: {path}")
        require_file(path, "model file")
        if path.suffix not in MODEL_SUFFIXES:
            raise UsageError(f"expected a saved Keras model ({', '.join(MODEL_SUFFIXES)}); received {path}")
    if data is not None:
        if kind(data) == "missing":
            raise UsageError(f"no such data file: {data}")
        require_file(data, "data file")
        if data.suffix not in DATA_SUFFIXES:
            raise UsageError(f"expected --data as .npz (x, and y for the loss barrier) or .npy (x); received {data}")
        _check_numbers(data)


def _check_numbers(data: Path) -> None:
    """Raises :class:`UsageError` unless every array in ``data`` reads without pickle and holds numbers."""
    try:
        loaded = np.load(data, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            arrays = {"": loaded}
        else:
            with loaded:
                arrays = {key: loaded[key] for key in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"cannot read --data {data}: {reason}") from None
    for key, array in arrays.items():
        if array.dtype.kind not in "biuf":
            name = f" {key}" if key else ""
            raise UsageError(f"expected numbers in --data {data}; received an array{name} of dtype {array.dtype}")


def align_files(model_a: Path, model_b: Path, data: Path | None = None, timeout: float | None = None) -> AlignReport:
    """Aligns two saved Keras models of one architecture (see the module docstring)."""
    check_inputs(model_a, model_b, data)
    with tempfile.TemporaryDirectory(prefix="reprokit-align-") as tmp:
        config = Path(tmp) / "config.json"
        out = Path(tmp) / "result.npz"
        config.write_text(
            json.dumps(
                {"a": str(model_a.resolve()), "b": str(model_b.resolve()), "data": data and str(data), "out": str(out)}
            ),
            encoding="utf-8",
        )
        code, stderr = _run(config, timeout)
        if code == EXIT_BAD_INPUT:
            raise UsageError(_last_line(stderr))
        if code not in (0, EXIT_BUG) or not out.exists():
            raise InternalError(f"the alignment process failed (exit status {code}): {_last_line(stderr)}")
        with np.load(out, allow_pickle=False) as arrays:
            report = _report(arrays, str(model_a), str(model_b), None if data is None else str(data))
    if code == EXIT_BUG:
        raise InternalError(
            f"matching the hidden units changed what {model_b} computes (max relative output difference "
            f"{report.verification:.2g}): a bug in reprokit's reading of this architecture"
        )
    return report


def _run(config: Path, timeout: float | None) -> tuple[int, str]:
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reprokit.worker.alignrun", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise UsageError(f"aligning took longer than the time limit of {timeout:g} s and was stopped") from None
        except BaseException:
            kill_group(proc)
            raise
        err.seek(0)
        return code, err.read().decode("utf-8", "replace")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _report(arrays: Any, model_a: str, model_b: str, data: str | None) -> AlignReport:
    structure = Structure.from_json(str(arrays["structure"]))
    keys = list(arrays.files)
    group = functools.partial(under, {key: np.asarray(arrays[key]) for key in keys})
    perms = group("perm/")
    agreement = class_agreement(arrays["predictions/a"], arrays["predictions/b"])
    untrained = (group("untrained/a/"), group("untrained/b/"))
    alignment = compare(
        structure,
        group("weights/a/"),
        group("weights/b/"),
        group("activations/a/"),
        group("activations/b/"),
        agreement,
        perms,
        untrained if untrained[0] else None,
    )
    alignment = replace(alignment, rounds=int(arrays["rounds"]))
    barrier = None
    if "path_losses" in keys:
        losses = tuple(float(v) for v in arrays["path_losses"])
        barrier = Barrier(losses, loss_barrier(losses))
    return AlignReport(
        model_a,
        model_b,
        data,
        int(arrays["rows"]),
        alignment,
        float(arrays["verification"]),
        barrier,
        tuple(json.loads(str(arrays["warnings"]))),
    )

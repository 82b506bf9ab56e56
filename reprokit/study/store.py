"""The study folder: every finished run of a seed study, kept so that a study resumes.

One folder per variant of a study, named by a key of everything that decides
a run's result besides its seed (:func:`reprokit.study.running.variant_key`:
the script's bytes, its arguments, the folder it starts in, how a model file
is trained, the backend, the Python, backend and Keras versions, the
environment variables and the machine). Each finished run is one JSON file
(``seed-1234.json``, its metrics, error, fingerprints) and the predictions
of its final model on the probe batch (``seed-1234.npz``), both written
atomically once the run has ended: an interrupted study leaves only whole
runs behind, and any later study of the same variant (``seeds``,
``compare``, ``tune``) reuses them and trains only what is missing (failed
runs are run again). The default folder is in the user's cache
(``$XDG_CACHE_HOME/reprokit/studies``), never in the project.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reprokit.core.errors import ReprokitWarning
from reprokit.core.files import atomic_file, finite, write_atomic
from reprokit.core.paths import kind

FORMAT = 1
"""The layout of a stored run; a stored run of another format is run again."""


def default_root() -> Path:
    """``$XDG_CACHE_HOME/reprokit/studies`` (``~/.cache/reprokit/studies`` by default)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "reprokit" / "studies"


@dataclass(frozen=True)
class SearchRecord:
    """What one run's own hyperparameter search (keras-tuner, Optuna) chose, kept with the run.

    Attributes:
        library: ``keras-tuner`` or ``optuna``.
        name: the search's name in the run (the tuner's project, the study's name).
        trials: how many trials ended.
        best: the best trial's hyperparameters as ``units=32, learning_rate=0.01``
            (None: no completed trial with a score).
        digest: a fingerprint of every trial (hyperparameters, score, end, order):
            two runs with the same digest ran the same search.
    """

    library: str
    name: str
    trials: int
    best: str | None
    digest: str

    @property
    def label(self) -> str:
        """``keras-tuner search digits``."""
        return f"{self.library} search {self.name}"


@dataclass(frozen=True)
class RunResult:
    """One run of a seed study: a variant trained with one seed, every seed fixed and op determinism on.

    Attributes:
        seed: the seed of every generator (``PYTHONHASHSEED`` included).
        repeat: the second run of a seed, made to show that the seed pins the script.
        metrics: every metric the run reported, by name (NaN stays NaN; see
            :mod:`reprokit.study.metrics`).
        error: why the run failed (the script raised, exited non-zero, timed
            out), or None.
        details: the script's last error output when it failed.
        steps: optimizer steps it made.
        wall_seconds: how long the run took.
        weights: a fingerprint of each trained model's final weights.
        probes: a fingerprint of the batch each model's predictions were taken on.
        environment: what ran it (CPU, versions, threads, GPUs).
        cached: the result was read from the study folder (a stored run reused, not trained).
        retries: why Ray lost earlier attempts of this run (each retried
            from the start, exactly: every seed is fixed).
        curves: the learning curves of its ``fit`` histories, by metric
            name (one value per epoch).
        searches: what the script's own hyperparameter searches chose.
    """

    seed: int
    repeat: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)
    error: str | None = None
    details: str = ""
    steps: int = 0
    wall_seconds: float = 0.0
    weights: Mapping[str, str] = field(default_factory=dict)
    probes: Mapping[str, str] = field(default_factory=dict)
    environment: Mapping[str, Any] = field(default_factory=dict)
    cached: bool = False
    retries: tuple[str, ...] = ()
    curves: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    searches: tuple[SearchRecord, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def name(self) -> str:
        """``seed 1234``, or ``seed 1234 (repeat)``."""
        return f"seed {self.seed}" + (" (repeat)" if self.repeat else "")

    @property
    def file_stem(self) -> str:
        return f"seed-{self.seed}" + ("-repeat" if self.repeat else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "seed": self.seed,
            "repeat": self.repeat,
            "metrics": {k: _number(v) for k, v in self.metrics.items()},
            "error": self.error,
            "details": self.details,
            "steps": self.steps,
            "wall_seconds": self.wall_seconds,
            "weights": dict(self.weights),
            "probes": dict(self.probes),
            "environment": finite(dict(self.environment)),
            "retries": list(self.retries),
            "curves": {k: [_number(v) for v in values] for k, values in self.curves.items()},
            "searches": [asdict(r) for r in self.searches],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], cached: bool = False) -> RunResult:
        if data.get("format") != FORMAT:
            raise ValueError(f"a stored run of format {data.get('format')!r}, not {FORMAT}")
        return cls(
            seed=int(data["seed"]),
            repeat=bool(data["repeat"]),
            metrics={str(k): float("nan") if v is None else float(v) for k, v in data["metrics"].items()},
            error=None if data.get("error") is None else str(data["error"]),
            details=str(data.get("details", "")),
            steps=int(data["steps"]),
            wall_seconds=float(data["wall_seconds"]),
            weights={str(k): str(v) for k, v in data["weights"].items()},
            probes={str(k): str(v) for k, v in data["probes"].items()},
            environment=dict(data.get("environment", {})),
            cached=cached,
            retries=tuple(str(r) for r in data.get("retries", ())),
            curves={str(k): tuple(float(v) for v in values) for k, values in data.get("curves", {}).items()},
            searches=tuple(
                SearchRecord(str(r["library"]), str(r["name"]), int(r["trials"]), r["best"], str(r["digest"]))
                for r in data.get("searches", ())
            ),
        )


def _read_predictions(path: Path, arrays: bool = True) -> dict[str, np.ndarray]:
    """A run's stored predictions; raises (OSError, BadZipFile, ValueError) when the file is missing or damaged.

    ``arrays=False`` only opens the archive (its directory, at its end: a truncated file fails here) and
    reads no array, for checking every stored run cheaply.
    """
    if kind(path) not in (None, "missing"):
        raise ValueError(f"{path.name} is not a regular file")
    with np.load(path, allow_pickle=False) as stored:
        return {key: stored[key] for key in stored.files} if arrays else {}


def _number(value: float) -> float | str:
    """JSON has no NaN: stored as the string ``"nan"`` (``inf`` likewise) so it is read back as it was."""
    return value if np.isfinite(value) else str(value)


class StudyStore:
    """The stored runs of one variant of a study, in ``root / key``."""

    def __init__(self, root: Path, key: str) -> None:
        self.folder = root / key

    def load(self) -> dict[tuple[int, bool], RunResult]:
        """Every whole run stored, by (seed, repeat).

        A damaged run (a record that is not a run's, predictions that do
        not read back) is moved to ``damaged/`` beside the records, kept for
        inspection, and reported with a :class:`ReprokitWarning`: its run is
        missing, so the next study trains it again. Records of an older
        format and files that are not regular files are left alone.
        """
        found: dict[tuple[int, bool], RunResult] = {}
        if not self.folder.is_dir():
            return found
        for path in sorted(self.folder.glob("seed-*.json")):
            if kind(path) is not None:
                continue  # a FIFO or folder named like a record: never opened
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(data, dict) and data.get("format") != FORMAT:
                    continue  # another version's record: not ours to judge
                if not isinstance(data, dict):
                    raise ValueError(f"expected a JSON object, received {type(data).__name__}")
                result = RunResult.from_dict(data, cached=True)
                if result.ok:
                    _read_predictions(self._npz(result), arrays=False)  # read whole only when analysed
            except FileNotFoundError:
                continue  # its predictions are missing (saved first, so it never finished): run it again
            except Exception as e:  # noqa: BLE001 - any damage: set aside, run again
                self._set_aside(path, e)
                continue
            found[(result.seed, result.repeat)] = result
        return found

    def _set_aside(self, record: Path, error: Exception) -> None:
        aside = self.folder / "damaged"
        aside.mkdir(exist_ok=True)
        for path in (record, record.with_suffix(".npz")):
            with contextlib.suppress(OSError):
                os.replace(path, aside / path.name)
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        warnings.warn(
            ReprokitWarning(f"a damaged stored run ({reason}) was set aside in {aside}; it is trained again"),
            stacklevel=2,
        )

    def clear(self) -> None:
        """Forgets every stored run (a study started afresh)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def save(self, result: RunResult, predictions: Mapping[str, np.ndarray]) -> None:
        """Keeps a finished run: its predictions first, then its record (so a record always has them)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if result.ok:
            with atomic_file(self._npz(result)) as f:
                np.savez(f, **dict(predictions))  # type: ignore[arg-type]
        write_atomic(self.folder / f"{result.file_stem}.json", json.dumps(result.to_dict(), indent=1) + "\n")

    def predictions(self, result: RunResult) -> dict[str, np.ndarray]:
        """The run's final predictions on its probe batch, by ``model/output``."""
        try:
            return _read_predictions(self._npz(result))
        except (OSError, ValueError, zipfile.BadZipFile):
            return {}

    def _npz(self, result: RunResult) -> Path:
        return self.folder / f"{result.file_stem}.npz"

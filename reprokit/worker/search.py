"""Hooks on the hyperparameter searches a script runs itself: every trial of a keras-tuner tuner or an Optuna study.

Neither library is imported here: both are slow to import, and either may be
absent. :func:`install` puts a post-import hook on ``sys.meta_path``
(:class:`_PatchOnImport`) that waits for the script to import ``keras_tuner``
or ``optuna`` and patches the package right after its ``__init__`` has run
(at once if it is imported already). Then each trial that ends is sent to
the parent as a :class:`~reprokit.protocol.events.SearchTrialEvent`:

* keras-tuner: ``Oracle.end_trial`` (every tuner's oracle: ``RandomSearch``,
  ``Hyperband``, ``BayesianOptimization``, ``GridSearch``), once the trial is
  scored, unless it is sent to be retried;
* Optuna: the trials of ``Study.optimize`` (through a callback it adds, so
  each trial is seen as Optuna hands it to the script's own callbacks) and
  those a script tells itself (``Study.tell``, the ask-and-tell interface;
  ``optimize`` does not go through ``tell``). A trial is sent once.

Nothing here changes what the search computes, and a failure to observe a
trial never reaches the script. Backend-free (pure Python).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.abc
import inspect
import math
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from reprokit.protocol import Event, SearchTrialEvent

__all__ = ["KERAS_TUNER", "OPTUNA", "install", "trial_event"]

KERAS_TUNER = "keras-tuner"
OPTUNA = "optuna"

Emit = Callable[[Event], None]
Patch = Callable[[ModuleType], None]

_WRAPPED = "__reprokit_search__"
"""Set on a method this module wrapped, so that it is never wrapped twice."""


def install(emit: Emit) -> None:
    """Reports the trials of every keras-tuner or Optuna search the script runs to ``emit``; call once.

    Args:
        emit: sends an event to the parent (called from any thread the search runs trials in).
    """
    names = _Names()
    patches: dict[str, Patch] = {
        "keras_tuner": lambda _: _patch_keras_tuner(emit, names),
        "optuna": lambda _: _patch_optuna(emit, names),
    }
    pending = {}
    for name, patch in patches.items():
        module = sys.modules.get(name)
        if module is not None:
            _quietly(patch, module)
        else:
            pending[name] = patch
    if pending:
        sys.meta_path.insert(0, _PatchOnImport(pending))


def trial_event(
    library: str,
    search: str,
    trial: object,
    params: Mapping[str, Any],
    values: Sequence[Any] | None,
    status: str,
    maximize: Sequence[bool | None],
) -> SearchTrialEvent:
    """The event of one ended trial, from what the library holds.

    Args:
        library: :data:`KERAS_TUNER` or :data:`OPTUNA`.
        search: the search's name.
        trial: the trial's id or number.
        params: its hyperparameters (each value is sent as its ``repr()``).
        values: its objectives' values (one for a search with one objective; None: none).
        status: how it ended, as the library names it.
        maximize: per objective, whether a higher value is better (None: not known).
    """
    numbers = tuple(_number(v) for v in values) if values is not None else ()
    single = len(maximize) == 1 and len(numbers) <= 1  # one objective: its value is the score
    return SearchTrialEvent(
        library=library,
        search=search,
        trial=str(trial),
        params={str(k): repr(_plain(v)) for k, v in params.items()},
        score=numbers[0] if single and numbers else None,
        status=status,
        maximize=maximize[0] if single else None,
        values=() if single else numbers,
    )


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """A post-import hook: patches a top-level package once its ``__init__`` has run.

    It finds the package's spec through the other finders and wraps that
    spec's loader's ``exec_module`` (once: the wrapper puts the loader's own
    back as it runs); it leaves ``sys.meta_path`` when every package is patched.
    """

    def __init__(self, patches: Mapping[str, Patch]) -> None:
        self._patches = dict(patches)
        self._lock = threading.Lock()

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        patch = self._patches.get(fullname)
        if patch is None:
            return None
        try:
            spec = self._others_spec(fullname, path, target)
        except Exception:  # noqa: BLE001 - the import then goes on as if this finder were not there
            return None
        loader = spec.loader if spec is not None else None
        if spec is None or loader is None or not hasattr(loader, "exec_module"):
            return spec
        own = vars(loader).get("exec_module") if hasattr(loader, "__dict__") else None
        exec_module = loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            _put_back(loader, own)
            exec_module(module)  # a failing import raises here, and nothing is patched
            if module.__name__ == fullname:
                self._done(fullname)
                _quietly(patch, module)

        try:
            loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        except (AttributeError, TypeError):  # a loader that takes no attributes
            return spec
        return spec

    def _others_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None) -> ModuleSpec | None:
        """The spec the finders after this one give (as the import system would without it)."""
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec: ModuleSpec | None = find(fullname, path, target)
            if spec is not None:
                return spec
        return None

    def _done(self, fullname: str) -> None:
        with self._lock:
            self._patches.pop(fullname, None)
            if not self._patches and self in sys.meta_path:
                sys.meta_path.remove(self)


def _put_back(loader: Any, own: Any) -> None:
    """Gives ``loader`` its own ``exec_module`` back (an attribute of its own, or its class's)."""
    try:
        if own is not None:
            loader.exec_module = own
        else:
            del loader.exec_module
    except (AttributeError, TypeError):
        pass


def _quietly(patch: Patch, module: ModuleType) -> None:
    """Patches ``module``; a library whose insides differ from those known here is left as it is."""
    with contextlib.suppress(Exception):  # never break the script's import: its search is then not observed
        patch(module)


class _Names:
    """The names under which the runs report each search, the same in every run of a script.

    keras-tuner: the tuner's ``project_name``; Optuna: the study's name. A study
    created without a name (Optuna names it ``no-name-`` and a random UUID) is
    ``study``, the next one ``study #2``; a second search of the same name that
    is another object (two tuners of one project name) gets ``#2`` too.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_object: dict[int, str] = {}
        self._kept: list[object] = []  # the named objects stay alive, so that their ids are never reused
        self._unnamed: dict[str, str] = {}
        self._taken: set[tuple[str, str]] = set()
        self._sent: set[tuple[str, str, str]] = set()

    def of_oracle(self, oracle: object) -> str:
        """A keras-tuner oracle's search name."""
        with self._lock:
            name = self._by_object.get(id(oracle))
            if name is None:
                project = getattr(oracle, "_project_name", None) or getattr(oracle, "project_name", None)
                name = self._free(KERAS_TUNER, str(project) if project else "search")
                self._by_object[id(oracle)] = name
                self._kept.append(oracle)
            return name

    def of_study(self, study_name: str) -> str:
        """An Optuna study's search name (a study loaded again under its name is the same search)."""
        if not study_name.startswith("no-name-"):
            return study_name
        with self._lock:
            name = self._unnamed.get(study_name)
            if name is None:
                name = self._free(OPTUNA, "study")
                self._unnamed[study_name] = name
            return name

    def first_time(self, event: SearchTrialEvent) -> bool:
        """Whether ``event``'s trial is reported for the first time (each trial is sent once)."""
        key = (event.library, event.search, event.trial)
        with self._lock:
            if key in self._sent:
                return False
            self._sent.add(key)
            return True

    def _free(self, library: str, name: str) -> str:
        candidate, n = name, 1
        while (library, candidate) in self._taken:
            n += 1
            candidate = f"{name} #{n}"
        self._taken.add((library, candidate))
        return candidate


def _patch_keras_tuner(emit: Emit, names: _Names) -> None:
    """Reports each trial an oracle ends (``Oracle.end_trial``, which every oracle's own calls)."""
    oracle_class: Any = importlib.import_module("keras_tuner.src.engine.oracle").Oracle
    end_trial = oracle_class.end_trial
    if getattr(end_trial, _WRAPPED, False):
        return

    @functools.wraps(end_trial)
    def ended(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = end_trial(self, *args, **kwargs)
        trial = args[0] if args else kwargs.get("trial", kwargs.get("trial_id"))
        trial_id = getattr(trial, "trial_id", trial)  # also the old signature: (self, trial_id, status)
        try:
            event = _keras_tuner_trial(self, str(trial_id), names)
            if event is not None and names.first_time(event):
                emit(event)
        except Exception:  # noqa: BLE001 - an oracle unlike keras-tuner's own: the trial is not observed
            pass
        return result

    setattr(ended, _WRAPPED, True)
    oracle_class.end_trial = ended


def _keras_tuner_trial(oracle: Any, trial_id: str, names: _Names) -> SearchTrialEvent | None:
    """The event of trial ``trial_id`` as ``oracle`` holds it once ended (None: it is to be retried)."""
    trial = oracle.trials.get(trial_id)
    if trial is None or trial_id in (getattr(oracle, "_retry_queue", None) or ()):
        return None
    direction = getattr(getattr(oracle, "objective", None), "direction", None)
    score = getattr(trial, "score", None)
    return trial_event(
        KERAS_TUNER,
        names.of_oracle(oracle),
        trial_id,
        dict(trial.hyperparameters.values),
        None if score is None else [score],
        str(trial.status),
        [None if direction not in ("max", "min") else direction == "max"],
    )


def _patch_optuna(emit: Emit, names: _Names) -> None:
    """Reports each trial of ``Study.optimize`` (by a callback) and each one told by ``Study.tell``."""
    study_class: Any = importlib.import_module("optuna.study").Study
    optimize, tell = study_class.optimize, study_class.tell
    if getattr(optimize, _WRAPPED, False):
        return
    signature = inspect.signature(optimize)

    def report(study: Any, frozen: Any) -> None:
        try:
            event = _optuna_trial(study, frozen, names)
            if names.first_time(event):
                emit(event)
        except Exception:  # noqa: BLE001 - a study unlike Optuna's own: the trial is not observed
            pass

    @functools.wraps(optimize)
    def optimized(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        callbacks = bound.arguments.get("callbacks")
        bound.arguments["callbacks"] = [report, *(callbacks or ())]
        return optimize(*bound.args, **bound.kwargs)

    @functools.wraps(tell)
    def told(self: Any, *args: Any, **kwargs: Any) -> Any:
        frozen = tell(self, *args, **kwargs)
        report(self, frozen)
        return frozen

    for wrapper in (optimized, told):
        setattr(wrapper, _WRAPPED, True)
    study_class.optimize, study_class.tell = optimized, told


def _optuna_trial(study: Any, frozen: Any, names: _Names) -> SearchTrialEvent:
    """The event of an Optuna ``FrozenTrial`` of ``study``."""
    directions = [getattr(d, "name", str(d)) for d in study.directions]
    return trial_event(
        OPTUNA,
        names.of_study(str(study.study_name)),
        frozen.number,
        dict(frozen.params),
        frozen.values,
        getattr(frozen.state, "name", str(frozen.state)),
        [None if d not in ("MAXIMIZE", "MINIMIZE") else d == "MAXIMIZE" for d in directions],
    )


def _plain(value: Any) -> Any:
    """A NumPy scalar as the Python number it holds (so that ``repr`` is the same either way)."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        try:
            return item()
        except (TypeError, ValueError):
            return value
    return value


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

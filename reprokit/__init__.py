"""reprokit: is your Keras training reproducible, and if not, why?

The command line (``reprokit check train.py``) is the main entry point. From
Python: :func:`check` a script or a training function, decorate training
functions with :func:`reproducible`, run code under :class:`controlled`
settings, measure the seed's effect with :func:`seeds` and :func:`compare`,
ask why two networks' weights differ with :func:`align`,
and use the pytest plugin (``reprokit_check`` fixture,
``@pytest.mark.reproducible``).

The names below are imported on first use, so ``import reprokit`` (and the
pytest plugin, and every run process) stays cheap. The packages below it,
one per job, are mapped in the README ("How reprokit is built").

May import: every package (its exports, on first use).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reprokit.core.version import __version__

_EXPORTS = {
    "align": "reprokit.api",
    "AlignReport": "reprokit.aligning.result",
    "Alignment": "reprokit.weights.matching",
    "assert_reproducible": "reprokit.api",
    "check": "reprokit.api",
    "CheckOptions": "reprokit.checking.experiment",
    "run_check": "reprokit.checking.experiment",
    "Finding": "reprokit.checking.classify",
    "Comparison": "reprokit.checking.comparison",
    "reproducible": "reprokit.decorator",
    "NoTrainingError": "reprokit.core.errors",
    "NotReproducibleError": "reprokit.checking.result",
    "ReprokitError": "reprokit.core.errors",
    "ScriptFailedError": "reprokit.core.errors",
    "UsageError": "reprokit.core.errors",
    "Report": "reprokit.checking.result",
    "Target": "reprokit.run.runner",
    "RunSettings": "reprokit.run.settings",
    "DEFAULT_SEED": "reprokit.core.controls",
    "Controls": "reprokit.core.controls",
    "ReprokitWarning": "reprokit.inprocess",
    "controlled": "reprokit.inprocess",
    "seeds": "reprokit.study.api",
    "compare": "reprokit.study.api",
    "SeedsReport": "reprokit.study.result",
    "CompareReport": "reprokit.study.result",
}

__all__ = [
    "DEFAULT_SEED",
    "AlignReport",
    "Alignment",
    "CheckOptions",
    "CompareReport",
    "Comparison",
    "Controls",
    "Finding",
    "NoTrainingError",
    "NotReproducibleError",
    "Report",
    "ReprokitError",
    "ReprokitWarning",
    "RunSettings",
    "ScriptFailedError",
    "SeedsReport",
    "Target",
    "UsageError",
    "__version__",
    "align",
    "assert_reproducible",
    "check",
    "compare",
    "controlled",
    "reproducible",
    "run_check",
    "seeds",
]

if TYPE_CHECKING:
    from reprokit.aligning.result import AlignReport
    from reprokit.api import align, assert_reproducible, check
    from reprokit.checking.classify import Finding
    from reprokit.checking.comparison import Comparison
    from reprokit.checking.experiment import CheckOptions, run_check
    from reprokit.checking.result import NotReproducibleError, Report
    from reprokit.core.controls import DEFAULT_SEED, Controls
    from reprokit.core.errors import NoTrainingError, ReprokitError, ScriptFailedError, UsageError
    from reprokit.decorator import reproducible
    from reprokit.inprocess import ReprokitWarning, controlled
    from reprokit.run.runner import Target
    from reprokit.run.settings import RunSettings
    from reprokit.study.api import compare, seeds
    from reprokit.study.result import CompareReport, SeedsReport
    from reprokit.weights.matching import Alignment


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reprokit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

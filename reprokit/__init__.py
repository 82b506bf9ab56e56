"""reprokit: is your Keras training reproducible, and if not, why?

The command line (``reprokit check train.py``) is the main entry point. From
Python: :func:`check` a script or a training function, decorate training
functions with :func:`reproducible`, run code under :class:`controlled`
settings, measure the seed's effect with :func:`seeds` and :func:`compare`,
ask why two networks' weights differ with :func:`align`,
and use the pytest plugin (``reprokit_check`` fixture,
``@pytest.mark.reproducible``).

The names below are imported on first use, so ``import reprokit`` (and the
pytest plugin, and every run process) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0.dev0"

_EXPORTS = {
    "align": "reprokit.api",
    "AlignReport": "reprokit.aligning",
    "Alignment": "reprokit.alignment",
    "assert_reproducible": "reprokit.api",
    "check": "reprokit.api",
    "CheckOptions": "reprokit.experiment",
    "run_check": "reprokit.experiment",
    "Finding": "reprokit.classify",
    "Comparison": "reprokit.comparison",
    "reproducible": "reprokit.decorator",
    "NoTrainingError": "reprokit.errors",
    "NotReproducibleError": "reprokit.report",
    "ReprokitError": "reprokit.errors",
    "ScriptFailedError": "reprokit.errors",
    "UsageError": "reprokit.errors",
    "Report": "reprokit.report",
    "Target": "reprokit.runner",
    "DEFAULT_SEED": "reprokit.settings",
    "Controls": "reprokit.settings",
    "ReprokitWarning": "reprokit.settings",
    "controlled": "reprokit.settings",
    "seeds": "reprokit.studies",
    "compare": "reprokit.studies",
    "SeedsReport": "reprokit.studyreport",
    "CompareReport": "reprokit.studyreport",
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
    from reprokit.aligning import AlignReport
    from reprokit.alignment import Alignment
    from reprokit.api import align, assert_reproducible, check
    from reprokit.classify import Finding
    from reprokit.comparison import Comparison
    from reprokit.decorator import reproducible
    from reprokit.errors import NoTrainingError, ReprokitError, ScriptFailedError, UsageError
    from reprokit.experiment import CheckOptions, run_check
    from reprokit.report import NotReproducibleError, Report
    from reprokit.runner import Target
    from reprokit.settings import DEFAULT_SEED, Controls, ReprokitWarning, controlled
    from reprokit.studies import compare, seeds
    from reprokit.studyreport import CompareReport, SeedsReport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reprokit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

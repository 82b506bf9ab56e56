"""reprokit: is your Keras training reproducible, and if not, why?

The command line (``reprokit check train.py``) is the main entry point; the
same experiment is available from Python through :func:`run_check`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from reprokit.check import CheckOptions, run_check
from reprokit.classify import Finding
from reprokit.compare import Comparison
from reprokit.errors import NoTrainingError, ReprokitError, ScriptFailedError, UsageError
from reprokit.report import Report
from reprokit.runner import Target
from reprokit.settings import DEFAULT_SEED, Controls

__all__ = [
    "DEFAULT_SEED",
    "CheckOptions",
    "Comparison",
    "Controls",
    "Finding",
    "NoTrainingError",
    "Report",
    "ReprokitError",
    "ScriptFailedError",
    "Target",
    "UsageError",
    "__version__",
    "run_check",
]

"""The machine a process runs on, as far as it decides the bits of a training: its architecture and CPU model.

Read without importing a framework, so that the commands (a study's keys) and
the run process (its recorded environment) name a machine alike.
"""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()

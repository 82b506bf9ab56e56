"""Where runs execute: this machine (the default) or a Ray cluster.

:class:`Execution` is converted from ``--executor``, ``--ray-address``,
``--cpus-per-run`` and ``--gpus-per-run`` where they enter, and checked
there; :mod:`reprokit.run.dispatch` opens what a command's runs need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Word


class Executor(Word):
    """What executes the runs."""

    LOCAL = "local"
    RAY = "ray"


@dataclass(frozen=True)
class Execution:
    """How a command's runs execute.

    Attributes:
        executor: this machine's processes, or Ray tasks.
        address: the Ray cluster (None: ``RAY_ADDRESS``, else a cluster
            running on this machine, else a local instance for the command).
        cpus_per_run: CPUs Ray reserves for each run (fractions allowed).
        gpus_per_run: GPUs Ray gives each run (a fraction shares a GPU: the
            runs then grow their GPU memory as needed).
    """

    executor: Executor = Executor.LOCAL
    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "executor", executor(self.executor))
        object.__setattr__(self, "cpus_per_run", float(self.cpus_per_run))
        object.__setattr__(self, "gpus_per_run", float(self.gpus_per_run))
        if not (math.isfinite(self.cpus_per_run) and self.cpus_per_run > 0):
            raise UsageError(f"expected --cpus-per-run above 0, received {self.cpus_per_run:g}")
        if not (math.isfinite(self.gpus_per_run) and self.gpus_per_run >= 0):
            raise UsageError(f"expected --gpus-per-run of 0 or more, received {self.gpus_per_run:g}")
        if self.gpus_per_run > 1 and not self.gpus_per_run.is_integer():
            raise UsageError(
                f"expected --gpus-per-run as a fraction of one GPU or a whole number, received {self.gpus_per_run:g}"
            )
        if self.executor is Executor.LOCAL:
            given = [
                name
                for name, value, default in (
                    ("--ray-address", self.address, None),
                    ("--cpus-per-run", self.cpus_per_run, 1.0),
                    ("--gpus-per-run", self.gpus_per_run, 0.0),
                )
                if value != default
            ]
            if given:
                raise UsageError(f"{', '.join(given)} only apply with --executor ray")

    @property
    def ray(self) -> bool:
        return self.executor is Executor.RAY


def executor(value: str) -> Executor:
    """Converts ``--executor`` (or the API's ``executor=``) where it enters.

    Raises:
        UsageError: neither ``local`` nor ``ray``.
    """
    try:
        return Executor(str(value))
    except ValueError:
        raise UsageError(f"expected executor local or ray, received {value!r}") from None

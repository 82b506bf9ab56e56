"""Dispatch: the runner and the connection that the chosen executor needs (this machine, or Ray).

The one place that picks between :class:`~reprokit.run.runner.Runner` and
:class:`~reprokit.run.ray.runner.RayRunner`; commands never import Ray's
modules themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reprokit.core.controls import default_jobs
from reprokit.run.execution import Execution
from reprokit.run.forkserver import serving
from reprokit.run.process import subreaping
from reprokit.run.ray import session as raysession
from reprokit.run.ray.runner import RayRunner
from reprokit.run.runner import OnEvent, Runner, Target
from reprokit.run.settings import RunSettings


def runner_for(target: Target, workdir: Path, on_event: OnEvent | None, settings: RunSettings) -> Runner:
    """The runner of ``settings.execution``: local processes, or Ray tasks (inside a Ray session)."""
    if settings.execution.ray:
        return RayRunner(target, workdir, on_event, settings)
    return Runner(target, workdir, on_event, settings)


@contextmanager
def executing(execution: Execution, one_node: bool = False) -> Iterator[None]:
    """Opens what the runs of one command need until the block ends (a Ray connection, or nothing).

    ``one_node``: every run goes to one node (a check compares runs bitwise,
    never across machines).
    """
    if not execution.ray:
        # runs that share an environment share one import of the backend; what a run leaves running is found
        with serving(), subreaping():
            yield
        return
    with raysession.session(execution, one_node):
        yield


def jobs_for(settings: RunSettings, runs: int) -> int:
    """How many of ``runs`` runs to execute at once: ``settings.jobs`` if given, else what the executor takes.

    On Ray, as many as the open session's nodes take at once (runs are
    handed to Ray no faster, so they start in the order asked); on this
    machine, :func:`reprokit.core.controls.default_jobs`.
    """
    if settings.jobs:
        return settings.jobs
    if settings.execution.ray:
        return max(1, raysession.active().slots)
    return default_jobs(runs)

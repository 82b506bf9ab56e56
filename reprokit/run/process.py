"""A run process: ``python -m reprokit.worker.main`` started fresh, and killed with everything it started.

Used wherever a run executes: by the local runner and, on a Ray node, by
the task that runs it (:mod:`reprokit.run.ray.task`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import psutil

from reprokit.protocol import CONFIG_VAR, WorkerConfig


class RunProcess(Protocol):
    """What the runner needs of a run process: a :class:`subprocess.Popen`, or a run forked by a fork server."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


@dataclass(frozen=True)
class Started:
    """A run process, the read end of its event pipe and the write end of its control pipe."""

    proc: RunProcess
    events: int
    control: int


def start_worker(config: WorkerConfig, env: dict[str, str], output: Path, cwd: Path) -> Started:
    """Starts the worker in ``cwd`` with ``env`` set before Python starts; its stdout and stderr go to ``output``.

    The worker gets a process group of its own (killed as a whole by
    :func:`kill_group`) and two pipes: events out, stop requests in.
    """
    events_read, events_write = os.pipe()
    control_read, control_write = os.pipe()
    config = replace(config, events_fd=events_write, control_fd=control_read)
    env = {**env, CONFIG_VAR: config.to_json()}
    with open(output / "stdout", "wb") as out, open(output / "stderr", "wb") as err:
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reprokit.worker.main"],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(events_write, control_read),
                start_new_session=True,  # its own process group, killed as a whole
                cwd=cwd,
            )
        finally:
            os.close(events_write)
            os.close(control_read)
    return Started(proc, events_read, control_write)


_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
_subreaping = [0]  # blocks open (one command's runs may open several, from threads)
_subreaping_lock = threading.Lock()


def _prctl_subreaper(on: bool) -> bool:
    """Makes this process a child subreaper (Linux) or not; whether it could."""
    if sys.platform != "linux":
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def subreaping() -> Iterator[None]:
    """While the block runs, processes a run leaves behind become children of this process, not of init.

    A script's ``Popen(..., start_new_session=True)`` leaves its process
    group, so killing the run's group misses it; as a child subreaper this
    process still finds it when the run ends (:func:`stop_leftovers`).
    """
    with _subreaping_lock:
        if _subreaping[0] == 0:
            _prctl_subreaper(True)
        _subreaping[0] += 1
    try:
        yield
    finally:
        with _subreaping_lock:
            _subreaping[0] -= 1
            if _subreaping[0] == 0:
                _prctl_subreaper(False)


RUN_VAR = "REPROKIT_RUN"
"""Set in every run's environment to the run's own folder: every process the run starts inherits it."""


def stop_leftovers(run_dir: str) -> int:
    """Kills the processes below this one that the run in ``run_dir`` started (by :data:`RUN_VAR`); how many.

    The run itself has ended (or been killed) by now.
    """
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.environ().get(RUN_VAR) == run_dir:
                found.append(child)
        except psutil.Error:
            continue
    for child in found:
        with contextlib.suppress(psutil.Error):
            child.kill()
    psutil.wait_procs(found, timeout=5)  # reaped: they are our children now, or our children's
    return len(found)


def kill_group(proc: RunProcess) -> None:
    """Kills the run process and every process in its group (the script's own children), then reaps it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

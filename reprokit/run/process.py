"""A run process: ``python -m reprokit.worker.main`` started fresh, and killed with everything it started.

Used wherever a run executes: by the local runner and, on a Ray node, by
the task that runs it (:mod:`reprokit.run.ray.task`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

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


def kill_group(proc: RunProcess) -> None:
    """Kills the run process and every process in its group (the script's own children), then reaps it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

"""The runner of ``--executor ray``: the same runs, each a Ray task, the same traces.

:class:`RayRunner` is a :class:`~reprokit.run.runner.Runner` whose runs execute
as tasks of the open Ray session (:mod:`reprokit.run.ray.session`); it turns their
streamed events into the :class:`~reprokit.run.trace.RunTrace` a local run gives,
so the comparisons and reports never know where a run ran. A run Ray loses
(its worker or node died) starts again from the first step, at most
:data:`RETRIES` times; with every seed fixed the retry is exact, and the
trace names it. A run that fails in the user's script is never retried.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace
from pathlib import Path

from reprokit.core.controls import child_environment
from reprokit.core.errors import ScriptFailedError
from reprokit.protocol import LaunchedEvent
from reprokit.run.ray.cluster import Node, RunLost, Task, overlay, receive
from reprokit.run.ray.session import active
from reprokit.run.ray.task import Finished, Lines, Origin, Placed, RunRequest
from reprokit.run.runner import OnEvent, Runner, Target, raise_for_failure
from reprokit.run.settings import RunSettings
from reprokit.run.trace import RunSpec, RunTrace, TraceBuilder

RETRIES = 2
"""Times a run that Ray lost (its worker or node died) is started again; a script's failure never is."""


class RunLostError(ScriptFailedError):
    """Ray lost a run more than :data:`RETRIES` times (its workers or nodes kept dying).

    Not the script's failure, but treated as one: a check ends with exit 3, a
    seed study records the run as failed and goes on.
    """


class RayRunner(Runner):
    """Runs specs as Ray tasks of the open session, up to ``jobs`` at once (see the module docstring)."""

    def __init__(self, target: Target, workdir: Path, on_event: OnEvent | None, settings: RunSettings) -> None:
        super().__init__(target, workdir, on_event, settings)
        self._tasks: dict[str, Task] = {}  # run name -> its live task
        self._task_lock = threading.Lock()

    def run(self, spec: RunSpec, node: str | None = None) -> RunTrace:
        """Runs one training as a Ray task, on ``node`` if it can; raises ScriptFailedError if the script fails."""
        run_dir = self._run_dir(spec)
        earlier = self.carried.get(spec.name)
        files = None
        if earlier is not None and earlier.folder is not None and earlier.files_written:
            files = overlay(earlier.files_written, earlier.folder)
        request = self._request(spec)
        lost: list[str] = []
        while True:
            builder = TraceBuilder(spec)
            task = active().submit(request, self.folder, files, node)
            self._track(spec.name, task)
            try:
                finished, where, started = self._follow(task, spec, builder)
                break
            except RunLost as e:
                lost.append(str(e))
                if len(lost) > RETRIES:
                    raise RunLostError(
                        f"run {spec.name} was lost {len(lost)} times on the Ray cluster (last: {e})", spec.name
                    ) from None
            finally:
                with self._task_lock:
                    self._tasks.pop(spec.name, None)
        folder = receive(finished, run_dir)
        if finished.timed_out:
            raise self.timed_out(spec, run_dir)
        raise_for_failure(spec, builder, finished.returncode, run_dir)
        trace = builder.build(time.monotonic() - started, run_dir / "arrays.npz")
        return replace(
            trace,
            environment={**trace.environment, "node": where.hostname, "ray_node": where.label, "ray_node_id": where.id},
            files_written=finished.changes.written,
            user_files_changed=finished.changes.user_files_changed,
            folder=folder,
            retries=tuple(lost),
        )

    def warm(self, spec: RunSpec) -> None:
        """Prepares for ``spec`` to start soon: its import starts on the node's fork host where it can."""
        active().warm(self._request(spec))

    def kill_all(self) -> None:
        """Cancels every live task (its run's process group dies with it), and starts no other."""
        super().kill_all()
        with self._task_lock:
            tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()

    def _track(self, name: str, task: Task) -> None:
        with self._task_lock:
            self._tasks[name] = task
        with self._lock:
            stopping = self._stopping
        if stopping:  # the check ended while this run was being submitted
            task.cancel()

    def _follow(self, task: Task, spec: RunSpec, builder: TraceBuilder) -> tuple[Finished, Node, float]:
        """Feeds a task's events to ``builder`` as they arrive; its end, its node, when it started there."""
        node, started = Node("", ""), time.monotonic()
        for message in task.messages():
            if isinstance(message, Placed):
                node, started = Node(message.node, message.hostname), time.monotonic()
                if self.on_event is not None:
                    self.on_event(spec, LaunchedEvent(message.pid))
            elif isinstance(message, Lines):
                for line in message.lines:
                    self._feed(builder, line)
            elif isinstance(message, Finished):
                return message, node, started
        raise RunLost(f"the task of run {spec.name} ended without its result")

    def _request(self, spec: RunSpec) -> RunRequest:
        """What a task needs to run ``spec``: the worker's settings, the environment, where the command runs."""
        function = self.target.function
        return RunRequest(
            name=spec.name,
            config=self._config(spec, events_fd=-1, control_fd=None, arrays_path=""),
            env={
                **child_environment(replace(spec.controls, backend=self.settings.backend), os.environ),
                **dict(self.target.env),
            },
            origin=Origin.here(self.folder.resolve(), self.target.script.resolve()),
            timeout=self.settings.timeout,
            gpus=self.settings.execution.gpus_per_run,
            call=function.call if function is not None else None,
        )

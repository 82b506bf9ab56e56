"""A connected Ray cluster as one command uses it: tasks submitted, and their messages.

Each run is one task that starts the reprokit worker as a subprocess on its
node (:func:`reprokit.run.ray.task.train`) and streams its events back
(:class:`Task`): forked from the node's fork host
(:mod:`reprokit.run.ray.forkhost`, started for runs without GPUs) where it
can, else fresh. The task's own Ray worker process never imports TensorFlow or
runs a script, so Ray may reuse it for the next run on CPUs (no Python and Ray
start per run); a run given GPUs gets a fresh one. A task that Ray loses (its worker or its node died) raises
:class:`RunLost`; the runner retries it (:mod:`reprokit.run.ray.runner`). The
connection itself is :mod:`reprokit.run.ray.session`'s.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reprokit.core.errors import ReprokitError, UsageError
from reprokit.run.execution import Execution
from reprokit.run.forkserver import forking_allowed
from reprokit.run.ray.forkhost import Hosts
from reprokit.run.ray.package import package
from reprokit.run.ray.task import Finished, Lines, Placed, RunRequest, train


class RunLost(Exception):
    """Ray lost a run: its worker process or its node died (not the script's failure)."""


@dataclass(frozen=True)
class Node:
    """Where a run ran: Ray's node id and the machine's name."""

    id: str
    hostname: str

    @property
    def label(self) -> str:
        """How reports name the node: the machine, and the node where one machine holds several."""
        return f"{self.hostname}/{self.id[:8]}"


class Cluster:
    """The connected Ray cluster of one command (opened by :func:`reprokit.run.ray.session.session`)."""

    def __init__(self, execution: Execution, node: str | None) -> None:
        import ray

        self.execution = execution
        self.node = node  # every run goes to this node (a check: its pairs never compare across machines)
        self._packages: dict[tuple[str, str], tuple[Any, str]] = {}
        self._lock = threading.Lock()
        # Ray's worker processes never import TensorFlow (the training is their fresh subprocess), so CPU runs
        # reuse them: no Python and Ray start per run. Runs given GPUs get fresh ones (Ray's default for GPU
        # tasks), whose CUDA_VISIBLE_DEVICES no earlier task set.
        self._remote = ray.remote(max_calls=1 if execution.gpus_per_run else 0)(train)
        nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        self.others = _other_machines(nodes)
        takers = [
            n["NodeID"] for n in nodes if (node is None or n["NodeID"] == node) and slots_of(n["Resources"], execution)
        ]
        self.slots = sum(slots_of(n["Resources"], execution) for n in nodes if n["NodeID"] in takers)
        # runs without GPUs fork from pre-imported interpreters on their node, as local runs do
        self.hosts = Hosts(takers) if not execution.gpus_per_run and forking_allowed(os.environ) else None

    def submit(self, request: RunRequest, folder: Path, overlay: bytes | None, node: str | None = None) -> Task:
        """Starts one run as a Ray task; its messages arrive through the returned :class:`Task`.

        ``node``: run there if it can (else anywhere). A check's session sends every run to its one node.
        """
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        package_ref, inside = self._package(folder, Path(request.origin.script))
        options: dict[str, Any] = {
            "num_cpus": self.execution.cpus_per_run,
            "num_gpus": self.execution.gpus_per_run,
            "max_retries": 0,  # the runner retries lost runs itself, from the first step
            "num_returns": "streaming",
        }
        if self.node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.node, soft=False)
        elif node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        request = replace(request, script_in_package=inside, fork_host=self.hosts.name if self.hosts else "")
        generator = self._remote.options(**options).remote(request, package_ref, overlay)
        return Task(generator)

    def warm(self, request: RunRequest) -> None:
        """Prepares for ``request``'s run to start soon: its import starts now where it is known to run."""
        if self.hosts is not None:
            self.hosts.warm(request)

    def close(self) -> None:
        """Ends what the cluster keeps for the command (the fork hosts and their interpreters)."""
        if self.hosts is not None:
            self.hosts.close()

    def _package(self, folder: Path, script: Path) -> tuple[Any, str]:
        """The folder as a package in the object store, made once (None when no node needs it)."""
        import ray

        if not self.others:
            return None, ""
        key = (str(folder), str(script))
        with self._lock:
            if key not in self._packages:
                try:
                    data, inside = package(folder, script)
                except ValueError as e:
                    raise UsageError(str(e)) from None
                self._packages[key] = (ray.put(data), inside)
            return self._packages[key]


class Task:
    """One run's Ray task: its messages in order, and how to cancel it."""

    def __init__(self, generator: Any) -> None:
        self.generator = generator

    def messages(self) -> Iterator[Placed | Lines | Finished]:
        """What the task sends, in order; raises :class:`RunLost` if Ray loses it."""
        import ray
        from ray import exceptions

        try:
            for ref in self.generator:
                yield ray.get(ref)
        except exceptions.TaskCancelledError:
            raise
        except exceptions.RayTaskError as e:  # our task code raised: a node that cannot run it
            raise ReprokitError(f"a Ray task of reprokit failed: {first_line(e)}") from None
        except exceptions.RayError as e:  # a worker or node died, an object was lost
            raise RunLost(first_line(e)) from None

    def cancel(self) -> None:
        """Cancels the task (its subprocess group is killed by the task, or dies with it)."""
        import ray

        with contextlib.suppress(Exception):
            ray.cancel(self.generator, force=True)


def slots_of(resources: dict[str, float], execution: Execution) -> int:
    """How many runs a node with ``resources`` takes at once."""
    slots = math.floor(resources.get("CPU", 0) / execution.cpus_per_run + 1e-9)
    if execution.gpus_per_run:
        slots = min(slots, math.floor(resources.get("GPU", 0) / execution.gpus_per_run + 1e-9))
    return slots


def _other_machines(nodes: list[dict[str, Any]]) -> bool:
    """Whether any node of the cluster runs on another machine (the folder must then be sent)."""
    here = socket.gethostname()
    return any(n.get("Alive") and n.get("NodeManagerHostname") != here for n in nodes)


def receive(finished: Finished, run_dir: Path) -> Path | None:
    """Writes what a finished task sent into ``run_dir`` as a local run leaves it; the folder of its files.

    Returns the local folder holding the files the run wrote (None if they
    were too large to send back: a later run cannot start among them).
    """
    (run_dir / "stdout").write_bytes(finished.stdout)
    (run_dir / "stderr").write_bytes(finished.stderr)
    if finished.arrays is not None:
        (run_dir / "arrays.npz").write_bytes(finished.arrays)
    folder = run_dir / "cwd"
    folder.mkdir(exist_ok=True)
    if finished.files is None:
        return None if finished.changes.written else folder
    import io

    with tarfile.open(fileobj=io.BytesIO(finished.files), mode="r") as tar:
        tar.extractall(folder, filter="data")
    return folder


def overlay(written: tuple[str, ...], folder: Path) -> bytes:
    """The files an earlier run wrote, as a tar a task unpacks into its folder."""
    import io

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in written:
            tar.add(folder / rel, arcname=rel, recursive=False)
    return buffer.getvalue()


def first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

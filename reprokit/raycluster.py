"""Runs trainings as Ray tasks: ``--executor ray``.

A command opens one :func:`session` (Ray allows one connection per process):
it connects to ``--ray-address``, else ``RAY_ADDRESS``, else a Ray instance
already running on this machine, else starts a local instance for the command
alone and stops it at the end. Each run is then one task (``max_calls=1``:
the task's worker process is never reused) that starts the reprokit worker as
a fresh subprocess on its node (:func:`reprokit.raytask.train`) and streams
its events back, so the local runner's code turns them into the same
:class:`~reprokit.trace.RunTrace` whichever executor ran them.

A task that Ray loses (its worker or its node died) raises :class:`RunLost`;
the runner retries it, exactly, since every seed of a run is fixed. A run
that fails in the user's script ends normally and is never retried.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from reprokit.errors import ReprokitError, UsageError
from reprokit.raytask import Finished, Lines, Placed, RunRequest, package, train

if TYPE_CHECKING:
    from reprokit.execution import Execution

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the cluster's address to answer before giving up (exit 2)."""


class RunLost(Exception):
    """Ray lost a run: its worker process or its node died (not the script's failure)."""


@dataclass(frozen=True)
class Node:
    """Where a run ran: Ray's node id, the machine's name and address."""

    id: str
    hostname: str
    address: str

    @property
    def label(self) -> str:
        """How reports name the node: the machine, and the node where one machine holds several."""
        return f"{self.hostname}/{self.id[:8]}"


class Cluster:
    """A connection to a Ray cluster for one command (see :func:`session`)."""

    def __init__(self, execution: Execution, started_here: bool, node: str | None) -> None:
        import ray

        self.execution = execution
        self.started_here = started_here
        self.node = node  # every run goes to this node (a check: its pairs never compare across machines)
        self._control: Any = None
        self._packages: dict[tuple[str, str], tuple[Any, str]] = {}
        self._lock = threading.Lock()
        self._remote = ray.remote(max_calls=1)(train)  # a fresh worker process per task: none is reused
        nodes = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
        self.others = _other_machines(nodes)
        self.slots = sum(_slots(n["Resources"], execution) for n in nodes if node is None or n["NodeID"] == node)

    def control(self) -> Any:
        """The actor holding early-exit requests (made when first needed)."""
        import ray

        with self._lock:
            if self._control is None:
                self._control = ray.remote(num_cpus=0)(_Control).remote()
            return self._control

    def stop(self, name: str, step: int) -> None:
        """Asks the run ``name`` to end after optimizer step ``step`` (early exit)."""
        self.control().stop.remote(name, step)

    def submit(
        self, request: RunRequest, folder: Path, overlay: bytes | None, control: bool, node: str | None = None
    ) -> Task:
        """Starts one run as a Ray task; its messages arrive through the returned :class:`Task`.

        ``control``: the run takes early-exit requests; ``node``: run there if
        it can (else anywhere). A check's session sends every run to its one node.
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
        request = _with_package_path(request, inside)
        generator = self._remote.options(**options).remote(
            request, package_ref, overlay, self.control() if control else None
        )
        return Task(generator)

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
            raise ReprokitError(f"a Ray task of reprokit failed: {_first_line(e)}") from None
        except exceptions.RayError as e:  # a worker or node died, an object was lost
            raise RunLost(_first_line(e)) from None

    def cancel(self) -> None:
        """Cancels the task (its subprocess group is killed by the task, or dies with it)."""
        import ray

        with contextlib.suppress(Exception):
            ray.cancel(self.generator, force=True)


class _Control:
    """An actor: the early-exit requests of a check's runs, polled by their tasks."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def stop(self, name: str, step: int) -> None:
        self.steps[name] = step

    def requested(self, name: str) -> int | None:
        return self.steps.get(name)


_open: list[Cluster] = []  # the session's cluster, while one is open (Ray allows one connection per process)


def active() -> Cluster:
    """The session's cluster (a runner of ``--executor ray`` runs only inside a :func:`session`)."""
    if not _open:
        raise RuntimeError("no Ray session is open: run inside reprokit.raycluster.session()")
    return _open[0]


@contextmanager
def session(execution: Execution, one_node: bool = False) -> Iterator[Cluster]:
    """Connects to Ray for one command (see the module docstring); nested sessions reuse the first.

    With ``one_node`` every run goes to one node able to take a run,
    this machine's when it is one of them.

    Raises:
        UsageError: Ray is not installed, the address cannot be reached, or
            no node has the CPUs and GPUs one run asks for (exit 2).
    """
    if _open:
        yield _open[0]
        return
    started_here = _connect(execution.address)
    restore = _ray_messages_to_stderr()
    try:
        _open.append(Cluster(execution, started_here, _choose_node(execution, one_node)))
        yield _open[0]
    finally:
        _open.clear()
        _disconnect()
        restore()


def _connect(address: str | None) -> bool:
    """Connects this process to Ray; whether it started a local instance for the command."""
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        import ray
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'reprokit[ray]'") from None
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR, "configure_logging": True}
    if address is not None and address != "auto":
        _require_reachable(address)
        try:
            _init(address, quiet)
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {_first_line(e)}") from None
        return False
    if _cluster_running_here():
        with _stderr_aside():
            try:
                ray.init(address="auto", **quiet)  # the cluster `ray start --head` started on this machine
            except (ConnectionError, RuntimeError) as e:
                raise UsageError(
                    f"cannot connect to the Ray cluster running on this machine: {_first_line(e)}"
                ) from None
        return False
    if address == "auto":
        raise UsageError("no Ray cluster runs on this machine (RAY_ADDRESS=auto): start one with ray start --head")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=_local_cpus(), include_dashboard=False, **quiet)  # never a stale one
    return True


def _cluster_running_here() -> bool:
    """Whether a Ray cluster's GCS process runs on this machine (Ray's own search of the process table).

    Ray's record of the last ``ray start`` outlives a cluster that was
    killed; a live GCS process does not.
    """
    try:
        from ray._private.services import find_gcs_addresses
    except ImportError:  # another Ray: never connect to a cluster by guessing
        return False
    return bool(find_gcs_addresses())  # type: ignore[no-untyped-call]


def _init(address: str, quiet: dict[str, Any]) -> None:
    """Connects to the cluster at ``address``; Ray's own connection log stays out of the terminal.

    A cluster started by ``ray start`` requires Ray's token by default
    (Ray ≥ 2.59), and a driver given an address sends it only with
    ``RAY_AUTH_MODE=token`` set before Ray is imported (then from
    ``RAY_AUTH_TOKEN`` or ``~/.ray/auth_token``). The mode must match the
    cluster's, so it is never guessed: a refusal says what to set.
    """
    import ray

    with _stderr_aside():
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError) as e:
            if "auth" in repr(e.__cause__ or e).lower() and os.environ.get("RAY_AUTH_MODE") != "token":
                raise ConnectionError(
                    "it requires Ray's token authentication: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN "
                    "unless ~/.ray/auth_token holds the cluster's token (ray get-auth-token on its head prints it)"
                ) from None
            if "auth" in repr(e.__cause__ or e).lower():
                raise ConnectionError("it refused this machine's token (RAY_AUTH_TOKEN, ~/.ray/auth_token)") from None
            raise


@contextmanager
def _stderr_aside() -> Iterator[None]:
    """Sends what Ray's C++ core writes to stderr (file descriptor 2) to a discarded file for the block."""
    import tempfile

    saved = os.dup(2)
    try:
        with tempfile.TemporaryFile() as aside:
            os.dup2(aside.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _ray_messages_to_stderr() -> Callable[[], None]:
    """Sends the messages Ray's driver prints about the cluster (a raylet died, …) to stderr; returns the undo.

    Ray prints them on stdout, where a command writes its report (``-f json``).
    """
    from ray._private import worker as ray_worker

    original = getattr(ray_worker, "print_to_stdstream", None)
    if original is None:  # another Ray: nothing to redirect
        return lambda: None

    def to_stderr(data: dict[str, Any], ignore_prefix: bool) -> None:
        original({**data, "is_err": True}, ignore_prefix)

    ray_worker.print_to_stdstream = to_stderr

    def restore() -> None:
        ray_worker.print_to_stdstream = original

    return restore


def _disconnect() -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.shutdown()


def _local_cpus() -> int:
    """CPUs of a Ray instance started for one command: as many runs at once as the local executor starts.

    One more than the cores (see :func:`reprokit.settings.default_jobs`):
    importing TensorFlow is partly serial, so a third run on 2 cores fills the gaps.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores + 1


def _require_reachable(address: str) -> None:
    """Fails at once, with one line, if nothing listens at ``address`` (``host:port`` or ``ray://host:port``)."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    host, port = parsed.hostname, parsed.port
    if not host or not port:
        raise UsageError(f"expected --ray-address as HOST:PORT or ray://HOST:PORT, received {address!r}")
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as e:
        raise UsageError(f"cannot reach the Ray cluster at {address}: {e.strerror or e}") from None


def _choose_node(execution: Execution, one_node: bool) -> str | None:
    """Checks that some node can take a run; with ``one_node``, the node every run goes to."""
    import ray

    need = {"CPU": execution.cpus_per_run, "GPU": execution.gpus_per_run}
    nodes = ray.nodes()  # type: ignore[no-untyped-call]
    fits = [n for n in nodes if n.get("Alive") and all(n["Resources"].get(k, 0) >= v for k, v in need.items() if v)]
    if not fits:
        gpus = f" and {execution.gpus_per_run:g} GPUs" if execution.gpus_per_run else ""
        raise UsageError(
            f"no node of the Ray cluster has {execution.cpus_per_run:g} CPUs{gpus} for one run "
            "(--cpus-per-run, --gpus-per-run)"
        )
    if not one_node:
        return None
    here = ray.get_runtime_context().get_node_id()
    best = max(fits, key=lambda n: (n["NodeID"] == here, n["Resources"].get("CPU", 0)))
    return str(best["NodeID"])


def _slots(resources: dict[str, float], execution: Execution) -> int:
    """How many runs a node with ``resources`` takes at once."""
    slots = math.floor(resources.get("CPU", 0) / execution.cpus_per_run + 1e-9)
    if execution.gpus_per_run:
        slots = min(slots, math.floor(resources.get("GPU", 0) / execution.gpus_per_run + 1e-9))
    return slots


def _other_machines(nodes: list[dict[str, Any]]) -> bool:
    """Whether any node of the cluster runs on another machine (the folder must then be sent)."""
    here = socket.gethostname()
    return any(n.get("Alive") and n.get("NodeManagerHostname") != here for n in nodes)


def _with_package_path(request: RunRequest, inside: str) -> RunRequest:
    from dataclasses import replace

    return replace(request, script_in_package=inside)


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


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__

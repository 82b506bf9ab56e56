"""The Ray connection of one command: ``--ray-address``, a cluster running here, or a local instance.

A command opens one :func:`session` (Ray allows one connection per process):
it connects to ``--ray-address``, else ``RAY_ADDRESS``, else a Ray cluster
running on this machine (``ray start --head``), else starts a local instance
for the command alone and stops it at the end. Inside it, :func:`active`
gives the :class:`~reprokit.run.ray.cluster.Cluster` that runs tasks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlparse

from reprokit.core.errors import UsageError
from reprokit.run.execution import Execution
from reprokit.run.ray.cluster import Cluster, first_line

CONNECT_TIMEOUT = 5.0
"""Seconds to wait for the cluster's address to answer before giving up (exit 2)."""

_open: list[Cluster] = []  # the session's cluster, while one is open (Ray allows one connection per process)


def active() -> Cluster:
    """The session's cluster (a runner of ``--executor ray`` runs only inside a :func:`session`)."""
    if not _open:
        raise RuntimeError("no Ray session is open: run inside reprokit.run.ray.session.session()")
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
    _connect(execution.address)
    restore = _ray_messages_to_stderr()
    try:
        _open.append(Cluster(execution, _choose_node(execution, one_node)))
        yield _open[0]
    finally:
        if _open:
            _open[0].close()
        _open.clear()
        _disconnect()
        restore()


def _connect(address: str | None) -> None:
    """Connects this process to Ray (see the module docstring)."""
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
            raise UsageError(f"cannot connect to the Ray cluster at {address}: {first_line(e)}") from None
        return
    if _cluster_running_here():
        with _stderr_aside():
            try:
                ray.init(address="auto", **quiet)  # the cluster `ray start --head` started on this machine
            except (ConnectionError, RuntimeError) as e:
                raise UsageError(
                    f"cannot connect to the Ray cluster running on this machine: {first_line(e)}"
                ) from None
        return
    if address == "auto":
        raise UsageError("no Ray cluster runs on this machine (RAY_ADDRESS=auto): start one with ray start --head")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(address="local", num_cpus=_local_cpus(), include_dashboard=False, **quiet)  # never a stale one


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
    """Disconnects; the processes of an instance started for the command (GCS, raylet, workers) end with it.

    ``ray.shutdown()`` kills them but does not wait for every worker to notice: on a busy machine some
    outlived the command by a second. They are this process's descendants; they are waited for (and
    killed if they linger), so nothing of the command's Ray is left when it returns.
    """
    import psutil
    import ray

    ours = psutil.Process().children(recursive=True)
    with contextlib.suppress(Exception):
        ray.shutdown()
    _, alive = psutil.wait_procs(ours, timeout=10)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=5)


def _local_cpus() -> int:
    """CPUs of a Ray instance started for one command: as many runs at once as the local executor starts.

    One more than the cores (see :func:`reprokit.core.controls.default_jobs`):
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

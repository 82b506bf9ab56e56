"""Runs forked from a pre-imported interpreter: the backend's import paid once per environment, not per run.

Most of a short run is the import of TensorFlow and Keras (4.6 s of the 5.9 s
of a run of the tuning example on 2 cores). Runs that must start with the same
environment (the same hash seed and backend: everything that must be set
before Python starts) can share one import: a fork server
(:mod:`reprokit.worker.zygote`) imports once and forks each run, which then sets
its own variables, folder and files and runs as a fresh process does. Op
determinism is not part of a server's environment: TensorFlow's switch can be
turned on (never off) in a process, and every run turns it on itself before
its script runs (``enable_op_determinism``), so a server imports without it
and a run that wants it gets its variables after the fork. A check's
controlled and ops pairs share one server; so do the variants of a comparison
and the configurations of a tuning under each seed.

Used only where forked runs are proven bit-identical to fresh ones (see the
tests on every example): TensorFlow on the CPU, on Linux, for local runs. Other
backends, visible NVIDIA GPUs, Ray, a server that finds a thread it cannot
fork safely (it says ``unsafe``), or ``REPROKIT_FORK_SERVER=0`` get fresh
processes, as before. :func:`serving` opens the servers of one command and
ends them with it; outside it every run is a fresh process.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from reprokit.core.backends import PROFILES, Backend
from reprokit.core.controls import visible_gpus
from reprokit.protocol import CONFIG_VAR, WorkerConfig
from reprokit.run.process import RUN_VAR, Started, start_worker

__all__ = ["FORK_SERVER_VAR", "Forked", "Servers", "fork_run", "serving", "start_run", "warm"]

T = TypeVar("T")

FORK_SERVER_VAR = "REPROKIT_FORK_SERVER"
"""``0``: every run is a fresh process (for comparing the two, and a way out)."""

SCRIPT_ONLY_PREFIX = "REPROKIT_PARAM"
"""Variables only the script reads (``tune --pass env``): set in the forked run, not in the server's key."""

AFTER_FORK = frozenset(name for name, _ in PROFILES[Backend.TENSORFLOW].environment)
"""TensorFlow's op-determinism variables: set in the forked run, which also turns the switch on itself
(:meth:`reprokit.worker.backends.tensorflow.TensorFlow.apply`) before any op; a server imports without them."""

_SERVERS_PER_COMMAND = 4
"""At most this many idle servers are kept (each holds an imported TensorFlow, ~0.4 GB)."""


class Forked:
    """A run forked by a server: what the runner needs of a :class:`subprocess.Popen` (pid, wait, returncode)."""

    def __init__(self, pid: int, status: int, on_end: Callable[[], None]) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._status = status
        self._on_end = on_end  # told once, when the status arrives
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> int:
        """Waits for the run to end (its status comes from the server); raises TimeoutExpired after ``timeout``."""
        with self._lock:
            if self.returncode is None:
                ready, _, _ = select.select([self._status], [], [], timeout)
                if not ready:
                    raise subprocess.TimeoutExpired(f"run {self.pid}", timeout or 0.0)
                line = _read_line(self._status)
                os.close(self._status)
                self.returncode = int(line) if line else -signal.SIGKILL  # the server ended first
                self._on_end()
            return self.returncode

    def poll(self) -> int | None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            return self.wait(0)
        return None


class _Server:
    """One fork server (a pre-imported interpreter) for one environment."""

    def __init__(self, env: Mapping[str, str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._sock = ours
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reprokit.worker.zygote", str(theirs.fileno())],
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
        )
        theirs.close()
        self._ready: bool | None = None
        self._lock = threading.Lock()
        self.running: list[threading.Event] = []
        self.users = 0  # runs being started from it (counted by its :class:`Servers`)
        self.served = 0  # runs it forked
        self.ready_at = 0.0

    def ready(self) -> bool:
        """Whether it imported and may fork (waits for its answer the first time)."""
        with self._lock:
            if self._ready is None:
                assert self.proc.stdout is not None
                self._ready = self.proc.stdout.readline().decode().strip() == "ready"
                self.ready_at = time.monotonic()
            return self._ready

    def start(self, config: WorkerConfig, late: Mapping[str, str], output: Path, cwd: Path) -> Started:
        """Forks one run: as :func:`reprokit.run.process.start_worker` starts a fresh one."""
        done = threading.Event()

        def send(message: bytes, fds: list[int]) -> Callable[[], None]:
            self.send(message, fds, done)
            return done.set

        started = fork_run(config, late, output, cwd, send)
        assert started is not None  # this server always forks
        return started

    def send(self, message: bytes, fds: list[int], done: threading.Event) -> None:
        """Sends one run's request (:func:`fork_run`'s) on; ``done`` is set when that run has ended."""
        with self._lock:
            socket.send_fds(self._sock, [message], fds)
        self.running.append(done)
        self.served += 1

    @property
    def idle(self) -> bool:
        return self.users == 0 and all(done.is_set() for done in self.running)

    def end(self) -> None:
        """Tells it to end (it exits at once); :meth:`close` waits for it."""
        with contextlib.suppress(OSError):
            self._sock.close()
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()

    def close(self) -> None:
        self.end()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def fork_run(
    config: WorkerConfig,
    env: Mapping[str, str],
    output: Path,
    cwd: Path,
    send: Callable[[bytes, list[int]], Callable[[], None] | None],
) -> Started | None:
    """Asks for a run to be forked; what the server then sends back makes its :class:`Started`.

    ``send(message, descriptors)`` delivers the request (the run's config,
    ``env``: the variables the run sets itself, and its folder) with the
    run's five descriptors (events, control, status, stdout, stderr) to a
    server, and returns what to call when the run has ended, or None if no
    server took it (then nothing was forked, and None is returned).
    """
    events_read, events_write = os.pipe()
    control_read, control_write = os.pipe()
    status_read, status_write = os.pipe()
    message = json.dumps({"config": config.to_json(), "env": dict(env), "cwd": str(cwd)}).encode()
    with open(output / "stdout", "wb") as out, open(output / "stderr", "wb") as err:
        try:
            on_end = send(message, [events_write, control_read, status_write, out.fileno(), err.fileno()])
        finally:
            for fd in (events_write, control_read, status_write):
                os.close(fd)
    line = _read_line(status_read) if on_end is not None else ""
    if on_end is None or not line:
        for fd in (status_read, events_read, control_write):
            os.close(fd)
        if on_end is None:
            return None
        on_end()
        raise OSError("the fork server ended before it forked the run")
    return Started(Forked(int(line), status_read, on_end), events_read, control_write)


def server_key(env: Mapping[str, str]) -> tuple[frozenset[tuple[str, str]], dict[str, str]]:
    """The environment a run's server starts with (its key), and the variables the forked run sets itself."""
    late = {k: v for k, v in env.items() if k.startswith(SCRIPT_ONLY_PREFIX) or k in AFTER_FORK or k == RUN_VAR}
    return frozenset((k, v) for k, v in env.items() if k != CONFIG_VAR and k not in late), late


class Servers:
    """The fork servers of one command, by environment."""

    def __init__(self) -> None:
        self._servers: dict[frozenset[tuple[str, str]], _Server] = {}
        self._unsafe: set[frozenset[tuple[str, str]]] = set()
        self._lock = threading.Lock()

    def start(
        self, config: WorkerConfig, env: Mapping[str, str], output: Path, cwd: Path, delay: float = 0.0
    ) -> Started:
        started = self.forward(env, lambda server, late: server.start(config, late, output, cwd), delay)
        return started if started is not None else start_worker(config, dict(env), output, cwd)

    def forward(
        self, env: Mapping[str, str], fork: Callable[[_Server, dict[str, str]], T], delay: float = 0.0
    ) -> T | None:
        """``fork(server, late)`` with the server of ``env``, started if needed; None where none can fork.

        ``late``: the variables the forked run sets itself. None: the server
        could not import, or found a thread it cannot fork; runs with this
        environment are fresh processes from then on.
        """
        key, late = server_key(env)
        with self._lock:
            server = None if key in self._unsafe else self._servers.get(key)
            if server is None and key not in self._unsafe:
                self._evict()
                server = self._servers[key] = _Server(dict(key))
            if server is not None:
                server.users += 1  # not idle (never evicted) while a run is being started from it
        if server is None:
            return None
        try:
            if server.ready():
                # ``delay`` after the server could first fork: runs waiting for one import keep their stagger
                time.sleep(max(0.0, server.ready_at + delay - time.monotonic()))
                return fork(server, late)
        finally:
            with self._lock:
                server.users -= 1
        with self._lock:  # it could not import, or found a thread it cannot fork: fresh processes from now on
            self._unsafe.add(key)
            if self._servers.get(key) is server:
                del self._servers[key]
        server.close()
        return None

    def send(self, request: Mapping[str, Any], fds: list[int], done: threading.Event) -> bool:
        """Forwards a request of :func:`fork_run` made with the run's whole environment; whether a server took it.

        The server gets the request with only the variables the run sets
        itself; ``done`` is to be set when the run has ended.
        """

        def fork(server: _Server, late: dict[str, str]) -> bool:
            server.send(json.dumps({**request, "env": late}).encode(), fds, done)
            return True

        return bool(self.forward(request["env"], fork))

    def warm(self, env: Mapping[str, str]) -> None:
        """Starts the server of a run that comes soon, so that its import overlaps the one runs now wait for.

        Only while the limit allows it without ending a server that has not
        served yet (one warmed for an earlier run).
        """
        key, _ = server_key(env)
        with self._lock:
            if key in self._servers or key in self._unsafe:
                return
            self._evict(spent_only=True)
            if len(self._servers) < _SERVERS_PER_COMMAND:
                self._servers[key] = _Server(dict(key))

    def _evict(self, spent_only: bool = False) -> None:
        """Ends idle servers beyond the limit (a server with a running child keeps it alive).

        Servers that already served go first; ``spent_only``: only those.
        """
        idle = [key for key, server in self._servers.items() if server.idle and server.served]
        if not spent_only:
            idle += [key for key, server in self._servers.items() if server.idle and not server.served]
        while len(self._servers) >= _SERVERS_PER_COMMAND and idle:
            self._servers.pop(idle.pop(0)).close()

    def close(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:  # all told first: they end together
            server.end()
        for server in servers:
            server.close()


_active: list[Servers] = []  # the servers of the commands under way, innermost last
_active_lock = threading.Lock()


def forking_allowed(env: Mapping[str, str]) -> bool:
    """Whether any run may be forked here: on Linux, unless :data:`FORK_SERVER_VAR` switches it off."""
    return sys.platform == "linux" and env.get(FORK_SERVER_VAR, "1") != "0"


def eligible(env: Mapping[str, str]) -> bool:
    """Whether runs with this environment may be forked (TensorFlow on the CPU, on Linux, not switched off)."""
    return (
        forking_allowed(env)
        and env.get("KERAS_BACKEND", Backend.TENSORFLOW.value) == Backend.TENSORFLOW.value
        and not visible_gpus(env)
    )


@contextlib.contextmanager
def serving() -> Iterator[None]:
    """Keeps fork servers for the runs started in this block (one command's); ends them all with it."""
    servers = Servers()
    with _active_lock:
        _active.append(servers)
    try:
        yield
    finally:
        with _active_lock:
            _active.remove(servers)
        servers.close()


def warm(env: Mapping[str, str]) -> None:
    """Starts importing for a run with this environment that will start soon (where :func:`start_run` would fork it)."""
    with _active_lock:
        servers = _active[-1] if _active else None
    if servers is not None and eligible(env):
        servers.warm(env)


def start_run(config: WorkerConfig, env: Mapping[str, str], output: Path, cwd: Path, delay: float = 0.0) -> Started:
    """Starts a run: forked from a server where :func:`serving` is open and the run is eligible, else fresh.

    ``delay``: a forked run starts at least this long after its server could
    first fork (the runner already waited as long for a fresh one): a run
    that must start later than another (``RunSpec.start_after``, a script that
    reads the clock) still does when both waited for the same import.
    """
    with _active_lock:
        servers = _active[-1] if _active else None
    if servers is None or not eligible(env):
        return start_worker(config, dict(env), output, cwd)
    return servers.start(config, env, output, cwd, delay)


def _read_line(fd: int) -> str:
    found = b""
    while not found.endswith(b"\n"):
        chunk = os.read(fd, 1)
        if not chunk:
            break
        found += chunk
    return found.decode().strip()

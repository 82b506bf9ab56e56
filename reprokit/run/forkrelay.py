"""Fork servers shared by the processes of one machine: a relay on a local socket, and its client.

On Ray, every run is started by a task in one of Ray's worker processes, and
no two tasks need share a process; a fork server kept by one of them would
serve only the runs that land on it. A :class:`Relay` keeps the fork servers
of a machine (:class:`~reprokit.run.forkserver.Servers`, as a local command
keeps them) in one process, the node's fork host
(:mod:`reprokit.run.ray.forkhost`), and takes requests on an abstract Unix
socket (no file to clean up). :func:`start` asks it for a run: the run's five
descriptors travel with the request (``SCM_RIGHTS``), so the forked run
writes to the asking process's pipes and files exactly as a run forked
locally does, and that process waits for it and kills its group as for any
run. The connection stays open while the run lives: its end tells the relay
that the server is idle again.

Runs are forked under the conditions of :mod:`reprokit.run.forkserver`
(TensorFlow on the CPU, on Linux); elsewhere, or when no relay answers, the
caller starts a fresh process.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

from reprokit.protocol import WorkerConfig
from reprokit.run.forkserver import Servers, fork_run
from reprokit.run.process import Started

__all__ = ["Relay", "start"]

_FORKED, _FRESH = b"forked", b"fresh"
_DESCRIPTORS = 5  # events, control, status, stdout, stderr


def _address(name: str) -> str:
    return "\0" + name  # Linux's abstract namespace: nothing on disk, gone with the socket


class Relay:
    """Forks runs for other processes of this machine from its fork servers, on the socket ``name``."""

    def __init__(self, name: str) -> None:
        self.servers = Servers()
        self._name = name
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._listener.bind(_address(name))
        self._listener.listen(64)
        self._listener.settimeout(0.2)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="reprokit-relay", daemon=True)
        self._thread.start()

    def warm(self, env: Mapping[str, str]) -> None:
        """Starts importing for a run with ``env`` that comes soon (see :meth:`Servers.warm`)."""
        self.servers.warm(env)

    def close(self) -> None:
        """Takes no more requests and ends the servers (a run forked from one ends with it)."""
        self._closed.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self.servers.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._relay, args=(conn,), name="reprokit-relay-run", daemon=True).start()

    def _relay(self, conn: socket.socket) -> None:
        """One run: forks it if a server can, answers whether it did, then waits for the asker to hang up."""
        with conn:
            message, fds, _, _ = socket.recv_fds(conn, 1 << 20, _DESCRIPTORS)
            done = threading.Event()
            try:
                forked = len(fds) == _DESCRIPTORS and self.servers.send(json.loads(message), fds, done)
            except (OSError, ValueError, KeyError, TypeError):  # a request cut short, or not ours
                forked = False
            finally:
                for fd in fds:
                    os.close(fd)  # the server and the asker hold their own copies
            with contextlib.suppress(OSError):
                conn.sendall(_FORKED if forked else _FRESH)
                if forked:
                    while conn.recv(16):  # EOF: the run ended, or the process that asked for it did
                        pass
            done.set()


def start(name: str, config: WorkerConfig, env: Mapping[str, str], output: Path, cwd: Path) -> Started | None:
    """A run forked by the relay ``name`` of this machine; None if none answers or it cannot fork this run.

    As :func:`reprokit.run.process.start_worker`: ``env`` is the run's whole
    environment, its stdout and stderr go to ``output``, it runs in ``cwd``.
    """
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(_address(name))
    except OSError:
        conn.close()
        return None

    def send(message: bytes, fds: list[int]) -> Callable[[], None] | None:
        socket.send_fds(conn, [message], fds)
        return conn.close if conn.recv(16) == _FORKED else None  # closing it tells the relay the run ended

    try:
        started = fork_run(config, env, output, cwd, send)
    except OSError:
        conn.close()
        return None
    if started is None:
        conn.close()
    return started

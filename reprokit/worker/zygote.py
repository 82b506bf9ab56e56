"""A pre-imported run process (a fork server): the backend imported once, one forked child per run.

Started by :mod:`reprokit.run.forkserver` as ``python -m reprokit.worker.zygote FD``
with the environment every run it serves must have (the hash seed, the backend,
the determinism switches: all that must be set before Python starts). It imports
what a run process imports before it runs the script (:func:`reprokit.worker.main.prepare`),
runs nothing, and reports ``ready`` on stdout. Then, for each request on the
socket ``FD`` (a JSON line with the run's config, the variables only the script
reads, its folder, and five descriptors: events, control, status, stdout,
stderr), it forks a child that becomes that run: a process group of its own,
stdout and stderr to the run's files, the run's folder as its working
directory, and then :func:`reprokit.worker.main.main` as in a fresh process.
The status descriptor gets the child's pid, then its exit status.

A fork copies only the calling thread. The only threads an import starts are
the OpenBLAS pools of NumPy and SciPy, which OpenBLAS shuts down before every
fork (``pthread_atfork``); the server checks after a first probe fork that it
has no other thread and refuses to serve (``unsafe …``) if it does. It ends
when its stdin closes (its parent ended) or the socket closes.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import socket
import sys
import threading
from dataclasses import replace
from typing import Any

from reprokit.protocol import CONFIG_VAR, WorkerConfig

_DESCRIPTORS = 5  # events, control, status, stdout, stderr


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def serve(sock: socket.socket) -> None:
    """Forks one run per request until the socket or stdin closes."""
    statuses: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sock.fileno(), 0], [], [], 0.05)
        _reap(statuses)
        if 0 in ready and not os.read(0, 1):
            return  # the parent ended
        if sock.fileno() not in ready:
            continue
        message, fds, _, _ = socket.recv_fds(sock, 1 << 20, _DESCRIPTORS)
        if not message:
            return
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            sock.close()
            _become_run(request, fds)  # never returns
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # as the child does: its group exists before the parent may kill it
        status = fds[2]
        for fd in fds:
            if fd != status:
                os.close(fd)
        os.write(status, f"{pid}\n".encode())
        statuses[pid] = status


def _reap(statuses: dict[int, int]) -> None:
    """Writes the exit status of every ended child to its status descriptor."""
    while statuses:
        try:
            pid, code = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        status = statuses.pop(pid, None)
        if status is not None:
            returncode = os.waitstatus_to_exitcode(code)
            with contextlib.suppress(OSError):
                os.write(status, f"{returncode}\n".encode())
            os.close(status)


def _become_run(request: dict[str, Any], fds: list[int]) -> None:
    """In the forked child: the run's process group, files, folder and variables; then the run; then exit."""
    events, control, _status, stdout, stderr = fds
    code = 1
    try:
        os.setpgid(0, 0)
        os.close(_status)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        for fd in (devnull, stdout, stderr):
            os.close(fd)
        os.chdir(request["cwd"])
        sys.path[0] = os.getcwd()  # as ``python -m`` sets it in a fresh process started there
        config = WorkerConfig.from_json(request["config"])
        os.environ.update(request["env"])
        os.environ[CONFIG_VAR] = replace(config, events_fd=events, control_fd=control).to_json()
        from reprokit.worker import main

        main.forked = True
        code = main.main()
        threading._shutdown()  # type: ignore[attr-defined]  # as interpreter exit: wait for the script's threads
        atexit._run_exitfuncs()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError):
                stream.flush()
        os._exit(code)


def main() -> int:
    from reprokit.worker.main import prepare

    try:
        prepare()
    except Exception as exc:  # noqa: BLE001 - the parent starts fresh processes instead
        print(f"unsafe: the backend failed to import: {type(exc).__name__}: {exc}", flush=True)
        return 1
    probe = os.fork()  # the OpenBLAS pools end at a fork; any other thread would survive it
    if probe == 0:
        os._exit(0)
    os.waitpid(probe, 0)
    if _threads() != 1:
        print(f"unsafe: {_threads()} threads after the imports", flush=True)
        return 1
    sock = socket.socket(fileno=int(sys.argv[1]))
    print("ready", flush=True)
    serve(sock)
    os._exit(0)  # nothing to clean up: an interpreter that imported TensorFlow takes ~1 s to finalize


if __name__ == "__main__":
    sys.exit(main())

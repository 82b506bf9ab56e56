"""One training on a Ray node: the body of the task :mod:`reprokit.run.ray.cluster` submits.

The task never imports TensorFlow. It prepares a private folder on its node,
starts ``python -m reprokit.worker.main`` as a subprocess with the run's
environment set before Python starts (the hash seed, the op-determinism
switches), and streams back what the local runner would have read: the
worker's event lines while it trains, then its exit status, its saved arrays,
the tail of its output and the files it wrote. It kills the worker's whole
process group whatever ends the task (the end, a timeout, a cancellation), and
the worker ends itself if the task's process dies (see
``reprokit.worker.main._exit_with_parent``).

Where runs may be forked (TensorFlow on the CPU, on Linux: see
:mod:`reprokit.run.forkserver`), the subprocess is forked from a pre-imported
interpreter kept by the node's fork host (:mod:`reprokit.run.ray.forkhost`),
through its relay (:mod:`reprokit.run.forkrelay`), as a local command's runs
are; where no host answers, it is a fresh process.

The folder reaches the node in one of two ways. On a node of the machine the
command runs on (same host name and boot id, the script unchanged at the same
path) the run mirrors the user's folder as a local run does
(:func:`reprokit.run.workdirs.mirror`). Elsewhere the folder arrives as a package
(:func:`package`, made once per command and kept in Ray's object store) and is
unpacked into the run's folder.
"""

from __future__ import annotations

import hashlib
import os
import queue
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from reprokit.protocol import WorkerConfig
from reprokit.run import forkrelay
from reprokit.run.forkserver import eligible
from reprokit.run.process import kill_group, start_worker
from reprokit.run.ray.package import extract, files_of, relative_files, unpack
from reprokit.run.workdirs import Changes, Mirror, carry, changes, mirror

OUTPUT_TAIL = 64 << 10
"""Bytes of the script's stdout and stderr sent back (the parent shows the last lines)."""

BATCH_SECONDS = 0.1
"""How long event lines are gathered before they are sent on as one message."""

COMPUTE_VARS = ("TF_", "KERAS_", "XLA_", "OMP_", "MKL_", "CUDA_", "PYTHONHASHSEED", "NVIDIA_TF32_OVERRIDE")
"""Prefixes of the command's environment variables that reach runs on other machines."""


@dataclass(frozen=True)
class Origin:
    """The machine and folder a command runs from, to tell whether a node can read them in place."""

    hostname: str
    boot_id: str
    folder: str
    script: str
    script_sha256: str

    @staticmethod
    def here(folder: Path, script: Path) -> Origin:
        return Origin(socket.gethostname(), _boot_id(), str(folder), str(script), _sha256(script))

    def is_here(self) -> bool:
        """Whether this process runs on the command's machine and sees its folder and script unchanged."""
        if (self.hostname, self.boot_id) != (socket.gethostname(), _boot_id()) or not Path(self.folder).is_dir():
            return False
        try:
            return _sha256(Path(self.script)) == self.script_sha256
        except OSError:
            return False


@dataclass(frozen=True)
class RunRequest:
    """What a task needs to run one training.

    Attributes:
        name: the run's name (``controlled-1``, ``seed-1234``).
        config: the worker's configuration; its pipes and paths are the node's own.
        env: the command's environment for this run (:func:`reprokit.core.controls.child_environment`).
        origin: where the command runs from.
        timeout: seconds the run may take (None: no limit).
        gpus: GPUs the run was given (fractions share one: memory growth is then on).
        script_in_package: the script's path inside the package (for other machines).
        call: the pickled call of a training function, if the run calls one.
        fork_host: the name of the fork hosts' relays (:mod:`reprokit.run.ray.forkhost`); empty: fresh processes.
    """

    name: str
    config: WorkerConfig
    env: Mapping[str, str]
    origin: Origin
    timeout: float | None = None
    gpus: float = 0.0
    script_in_package: str = ""
    call: bytes | None = None
    fork_host: str = ""


@dataclass(frozen=True)
class Placed:
    """The run started: on which node, as which process."""

    node: str
    hostname: str
    pid: int


@dataclass(frozen=True)
class Lines:
    """Event lines the worker wrote (see :mod:`reprokit.protocol.events`)."""

    lines: tuple[str, ...]


@dataclass(frozen=True)
class Finished:
    """The run ended; everything the parent needs besides its events.

    ``files`` is a tar of the files the run wrote (None when they exceed
    :data:`FILES_BACK_LIMIT`).
    """

    returncode: int | None
    timed_out: bool
    arrays: bytes | None
    stdout: bytes
    stderr: bytes
    changes: Changes = field(default_factory=Changes)
    files: bytes | None = None


def train(request: RunRequest, package: bytes | None, overlay: bytes | None) -> Iterator[object]:
    """Runs one training on this node; yields :class:`Placed`, :class:`Lines` and one :class:`Finished`.

    ``package`` is the user's folder (None when every node is on the
    command's machine), ``overlay`` the files an earlier run wrote that this
    one starts among.
    """
    root = Path(tempfile.mkdtemp(prefix=f"reprokit-{request.name}-"))
    try:
        yield from _train(request, package, overlay, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _train(request: RunRequest, package: bytes | None, overlay: bytes | None, root: Path) -> Iterator[object]:
    folder, config, env = _prepare(request, package, overlay, root)
    started = None
    if request.fork_host and eligible(env):  # forked from the node's pre-imported interpreter, where it can
        started = forkrelay.start(relay_name(request.fork_host, _node_id()), config, env, root, folder.root)
    if started is None:
        started = start_worker(config, env, root, folder.root)
    proc, events_read = started.proc, started.events
    os.close(started.control)  # no early exit on Ray: nothing to ask the run
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_read, args=(events_read, lines), daemon=True)
    reader.start()
    try:
        yield Placed(_node_id(), socket.gethostname(), proc.pid)
        timed_out = yield from _stream(request, lines)
        if timed_out:
            kill_group(proc)
        proc.wait()
    finally:
        kill_group(proc)  # the script's own children too, whatever ended the task
    reader.join(timeout=5)
    found = Changes() if timed_out else changes(folder)
    arrays = Path(config.arrays_path)
    yield Finished(
        returncode=proc.returncode,
        timed_out=timed_out,
        arrays=arrays.read_bytes() if arrays.exists() else None,
        stdout=_tail(root / "stdout"),
        stderr=_tail(root / "stderr"),
        changes=found,
        files=files_of(folder.root, found.written),
    )


def _prepare(
    request: RunRequest, package: bytes | None, overlay: bytes | None, root: Path
) -> tuple[Mirror, WorkerConfig, dict[str, str]]:
    """The run's private folder on this node, and its worker settings and environment there."""
    config, here = request.config, request.origin.is_here()
    if here:
        folder = mirror(Path(request.origin.folder), root / "cwd")
        script = request.origin.script
    elif package is not None:
        folder = unpack(package, root / "cwd")
        script = str(folder.root / request.script_in_package)
    else:
        raise RuntimeError(f"{socket.gethostname()} is not the machine the command runs on, and no package came")
    if overlay is not None:
        extract(overlay, root / "overlay")
        carry(tuple(relative_files(root / "overlay")), root / "overlay", folder.root)
    function = config.function
    if function is not None and request.call is not None:
        call_path = root / "call.pkl"
        call_path.write_bytes(request.call)
        function = replace(function, call_path=str(call_path))
    config = replace(config, script=script, arrays_path=str(root / "arrays.npz"), function=function)
    return folder, config, run_environment(request, here)


def run_environment(request: RunRequest, here: bool) -> dict[str, str]:
    """The run's environment on this node: the command's, with this node's paths where it is another machine.

    ``here``: whether this node sees the command's folder in place (``request.origin.is_here()``).
    """
    env = dict(request.env) if here else _remote_environment(request.env)
    return _node_environment(env, request.gpus)


def relay_name(fork_host: str, node: str) -> str:
    """The socket name of the fork host of ``node`` (nodes may share a machine, and so a socket namespace)."""
    return f"{fork_host}-{node}"


def _stream(request: RunRequest, lines: queue.Queue[str | None]) -> Generator[Lines, None, bool]:
    """Sends the worker's event lines on in batches until it ends; whether it ran out of time."""
    started = time.monotonic()
    ended = False
    while not ended:
        batch, ended = _gather(lines)
        if batch:
            yield Lines(tuple(batch))
        if request.timeout is not None and time.monotonic() - started > request.timeout:
            return True
    return False


def _read(fd: int, lines: queue.Queue[str | None]) -> None:
    with os.fdopen(fd, encoding="utf-8") as events:
        for line in events:
            lines.put(line)
    lines.put(None)  # the worker closed its end: it has ended


def _gather(lines: queue.Queue[str | None]) -> tuple[list[str], bool]:
    """The lines that arrive within :data:`BATCH_SECONDS`, and whether the event stream ended."""
    batch: list[str] = []
    deadline = time.monotonic() + BATCH_SECONDS
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            return batch, False
        if line is None:
            return batch, True
        batch.append(line)


def _node_environment(env: dict[str, str], gpus: float) -> dict[str, str]:
    """The run's environment on this node: the GPUs Ray gave the task, nothing else of Ray's."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if gpus > 0 and given is not None:
        env["CUDA_VISIBLE_DEVICES"] = given
    if 0 < gpus < 1:
        env["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"  # runs share the GPU: none may take all its memory
    return env


def _remote_environment(env: Mapping[str, str]) -> dict[str, str]:
    """On another machine: this node's environment, with the command's compute settings on top.

    Paths (``PATH``, a virtual environment) are the node's own; variables
    that change how TensorFlow computes come from the command, as do the
    run's controls. Ray's own thread setting for tasks is dropped unless the
    command set it.
    """
    result = {k: v for k, v in os.environ.items() if not k.startswith(COMPUTE_VARS)}
    result.update({k: v for k, v in env.items() if k.startswith(COMPUTE_VARS)})
    return result


def _tail(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - OUTPUT_TAIL))
            return f.read()
    except OSError:
        return b""


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())

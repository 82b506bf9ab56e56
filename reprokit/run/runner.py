"""Starts run processes, streams their events, and never leaves one behind.

Each run is ``python -m reprokit.worker.main`` in a fresh process and a process
group of its own, with its environment prepared by
:func:`reprokit.core.controls.child_environment`. Its events arrive as JSON lines on
a pipe while it trains; the script's stdout and stderr go to files in the
run's folder. A run that times out, or whose check is interrupted, is killed
with its whole process group.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Protocol

from reprokit.core.controls import GPU_OF_PAIR, child_environment, visible_gpus
from reprokit.core.errors import ReprokitError, ScriptFailedError
from reprokit.core.refusals import DeterminismRefusedError
from reprokit.protocol import (
    Event,
    FunctionTarget,
    InitEvent,
    LaunchedEvent,
    StepEvent,
    StopRequest,
    WorkerConfig,
    parse_event,
)
from reprokit.run.forkserver import start_run, warm
from reprokit.run.process import RUN_VAR, RunProcess, kill_group, stop_leftovers
from reprokit.run.settings import RunSettings
from reprokit.run.trace import Point, RunSpec, RunTrace, TraceBuilder
from reprokit.run.workdirs import carry, changes, mirror

OnEvent = Callable[[RunSpec, Event], None]
"""Called with every event of every run as it arrives (see :mod:`reprokit.protocol.events`)."""

ARRAYS = "arrays.npz"
"""The file of a run's final arrays in its folder."""


class Monitor(Protocol):
    """Watches the points of live runs as they arrive (e.g. :class:`reprokit.checking.early.EarlyExit`).

    The runner calls :meth:`add` with each run's newest point and
    :meth:`finish` when a run ends; a monitor may call :meth:`Runner.stop`.
    """

    def add(self, run: str, point: Point) -> None: ...

    def finish(self, run: str) -> None: ...


_TF_LOG_LINE = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages|E0000|I0000|W0000)")
TAIL_LINES = 25


@dataclass(frozen=True)
class Target:
    """What to train: the script (or function), its arguments, and what each run observes.

    How the runs run (their time limit, the model-file options, where they
    execute) is the command's :class:`~reprokit.run.settings.RunSettings`.

    Attributes:
        script: path of the training script (or model file).
        args: the script's own command-line arguments.
        max_steps: end every run after this many optimizer steps (None: all).
        function: a training function to call instead of running the script.
        explain_step: probe every layer and gradient in this step (replays).
        sequential_maps: run every ``Dataset.map`` without parallel calls
            (a replay that tests whether a parallel map is the cause).
        study: observe only metrics, losses and final predictions (a seed
            study: a run costs what a plain training costs).
        folder: the folder runs start in, mirrored privately for each run
            (None: the current directory).
        whole_state: every step fingerprints the whole training state, not
            only the weights (a resume check, see :mod:`reprokit.worker.state`).
        env: variables added to every run's environment (``reprokit tune``
            passes a configuration's values this way to scripts without
            command-line options).
        sampled: fingerprint the weights only at sampled steps (1, 2, 4, 8,
            …, every 64th, see :func:`reprokit.core.snapshots.sampled_step`),
            the batches and the loss at every step: a check's pairs, whose
            divergence between two samples a replay then locates
            (:mod:`reprokit.checking.locate`).
    """

    script: Path
    args: tuple[str, ...] = ()
    max_steps: int | None = None
    function: FunctionRef | None = None
    explain_step: int | None = None
    sequential_maps: bool = False
    study: bool = False
    folder: Path | None = None
    whole_state: bool = False
    env: tuple[tuple[str, str], ...] = ()
    sampled: bool = False

    def __post_init__(self) -> None:
        # converted where they enter: a path given as a str, arguments as a list, variables as a dict
        object.__setattr__(self, "script", Path(self.script))
        object.__setattr__(self, "args", tuple(str(a) for a in self.args))
        if self.folder is not None:
            object.__setattr__(self, "folder", Path(self.folder))
        env = self.env.items() if isinstance(self.env, dict) else self.env
        object.__setattr__(self, "env", tuple((str(k), str(v)) for k, v in env))

    @property
    def label(self) -> str:
        """How reports name the target: the script, or ``module:function``."""
        if self.function is not None:
            return f"{self.function.module}:{self.function.qualname}"
        return str(self.script)


@dataclass(frozen=True)
class FunctionRef:
    """A training function run in fresh processes instead of a script.

    Attributes:
        module: the function's module (``__main__`` for a script's function,
            which is then loaded from ``Target.script``).
        qualname: its qualified name in the module.
        call: the pickled ``(args, kwargs)`` to call it with.
        sys_path: the caller's ``sys.path``, so the module imports in the run.
    """

    module: str
    qualname: str
    call: bytes
    sys_path: tuple[str, ...] = ()


class Runner:
    """Runs specs in fresh processes on this machine, in parallel up to ``jobs``, under ``settings``.

    :class:`reprokit.run.ray.runner.RayRunner` runs them as Ray tasks instead.
    """

    def __init__(
        self, target: Target, workdir: Path, on_event: OnEvent | None = None, settings: RunSettings | None = None
    ) -> None:
        self.target = target
        self.workdir = workdir
        self.on_event = on_event
        self.settings = settings or RunSettings()
        self.monitor: Monitor | None = None
        self._live: set[RunProcess] = set()
        self._stopping = False  # set by kill_all: no run starts after it
        self.folder = target.folder or Path.cwd()  # the user's folder, mirrored privately for each run
        self.carried: dict[str, RunTrace] = {}  # run name -> the run whose written files it starts with
        self._control: dict[str, IO[str]] = {}
        self._lock = threading.Lock()

    def run_many(
        self,
        specs: Sequence[RunSpec],
        jobs: int = 1,
        tolerate: Callable[[RunSpec, Exception], bool] | None = None,
        skip: Callable[[RunSpec, Sequence[Exception]], bool] | None = None,
        require: Callable[[RunTrace], None] | None = None,
    ) -> list[RunTrace | Exception | None]:
        """Runs ``specs``, up to ``jobs`` at once, in order of start; results in spec order.

        A spec whose ``after`` names another starts once that one ended, among
        the files it wrote (it must come later in ``specs``).

        An exception for which ``tolerate(spec, error)`` is true is returned in the run's place
        instead of raised; any other failure kills every run at once and is
        raised. A spec for which ``skip(spec, tolerated_so_far)`` is true when
        its turn comes is not run (None in its place). ``require`` is called
        on each finished run as soon as it ends, and may raise to end them all
        (a script that trained nothing is known after its first run).
        """
        tolerated: list[Exception] = []
        began = time.monotonic()
        ended = {spec.name: threading.Event() for spec in specs}
        traces: dict[str, RunTrace] = {}

        def attempt(spec: RunSpec) -> RunTrace | Exception | None:
            try:
                return start(spec)
            finally:
                ended[spec.name].set()

        def start(spec: RunSpec) -> RunTrace | Exception | None:
            time.sleep(max(0.0, began + spec.start_after - time.monotonic()))
            if spec.after is not None:  # started in order, so the run it waits for is under way or done
                ended[spec.after].wait()
                if spec.after not in traces:
                    return None  # that run failed or was skipped: nothing to start among
                self.carried[spec.name] = traces[spec.after]
            if skip is not None and skip(spec, tolerated):
                return None
            try:
                trace = self.run(spec)
            except Exception as e:
                if tolerate is not None and tolerate(spec, e):
                    tolerated.append(e)
                    return e
                raise
            if require is not None:
                require(trace)
            traces[spec.name] = trace
            return trace

        if jobs <= 1 or len(specs) <= 1:
            return [attempt(spec) for spec in specs]
        pool = ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="reprokit-run")
        futures = [pool.submit(attempt, spec) for spec in specs]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)  # a failed run ends the check at once,
            for future in futures:  # whichever run it was, while the others still run
                error = future.exception() if future.done() else None
                if error is not None:
                    raise error
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            self.kill_all()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def stop(self, name: str, step: int) -> None:
        """Asks the live run ``name`` to end after optimizer step ``step`` (early exit)."""
        with self._lock:
            control = self._control.get(name)
        if control is not None:
            with contextlib.suppress(OSError, ValueError):
                control.write(StopRequest(step).to_line() + "\n")
                control.flush()

    def run(self, spec: RunSpec, node: str | None = None) -> RunTrace:
        """Runs one training; raises ScriptFailedError if the script fails.

        ``node``: where to run if the executor has nodes (see :class:`reprokit.run.ray.runner.RayRunner`).
        """
        run_dir = self._run_dir(spec)
        builder = TraceBuilder(spec)
        started = time.monotonic()
        mirrored = mirror(self.folder, run_dir / "cwd", skip=self.workdir)
        earlier = self.carried.get(spec.name)
        if earlier is not None and earlier.folder is not None:
            carry(earlier.files_written, earlier.folder, mirrored.root)
        proc, events = self._start(spec, run_dir, mirrored.root, self._script_copy(mirrored.root, run_dir))
        reader = threading.Thread(target=self._read, args=(events, builder), daemon=True)
        reader.start()
        timeout = self.settings.timeout
        try:  # the limit counts from the run's start, a fork server's import included
            proc.wait(timeout=None if timeout is None else max(0.0, started + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise self.timed_out(spec, run_dir) from None
        finally:
            kill_group(proc)  # the script's own children too, whatever happened
            left = stop_leftovers(str(run_dir))  # and those that left its group (their RUN_VAR names the run)
            with self._lock:
                self._live.discard(proc)
                control = self._control.pop(spec.name)
            with contextlib.suppress(OSError):
                control.close()
        reader.join()
        if self.monitor is not None:
            self.monitor.finish(spec.name)
        raise_for_failure(spec, builder, proc.returncode, run_dir)
        found = changes(mirrored)
        trace = builder.build(time.monotonic() - started, run_dir / ARRAYS)
        environment = {**trace.environment, "node": platform.node()}
        return replace(
            trace,
            environment=environment,
            files_written=found.written,
            user_files_changed=found.user_files_changed,
            folder=mirrored.root,
            processes_left=left,
        )

    def timed_out(self, spec: RunSpec, run_dir: Path) -> ScriptFailedError:
        """The failure of a run killed at the time limit (``settings.timeout``), wherever it ran."""
        return ScriptFailedError(
            f"run {spec.name} exceeded the time limit of {self.settings.timeout:g} s and was killed",
            spec.name,
            tail(run_dir / "stderr"),
        )

    def _run_dir(self, spec: RunSpec) -> Path:
        """The run's own folder in the check's (raises if the check already ended: no run starts then)."""
        with self._lock:
            if self._stopping:
                raise ReprokitError(f"run {spec.name} was not started: the check already ended")
        run_dir = self.workdir / spec.name
        run_dir.mkdir(parents=True)
        return run_dir

    def warm(self, spec: RunSpec) -> None:
        """Prepares for ``spec`` to start soon: the import it will fork from begins now (see :func:`warm`)."""
        warm(self._environment(spec))

    def _environment(self, spec: RunSpec) -> dict[str, str]:
        gpus = visible_gpus()
        gpu = gpus[GPU_OF_PAIR.get(spec.role, 0) % len(gpus)] if len(gpus) > 1 else None
        controls = replace(spec.controls, backend=self.settings.backend)
        return {**child_environment(controls, os.environ, gpu), **dict(self.target.env)}

    def _script_copy(self, cwd: Path, run_dir: Path) -> str | None:
        """The script's copy in the run's private folders (it runs as that file; None: a function runs).

        A script inside the user's folder runs from that folder's mirror; one
        elsewhere gets its own folder mirrored too. Files it writes next to
        itself (``Path(__file__).parent / "best.keras"``) stay the run's.
        """
        if self.target.function is not None:
            return None
        script = self.target.script.resolve()
        folder = self.folder.resolve()
        if script.is_relative_to(folder):
            copy = cwd / script.relative_to(folder)
        else:
            copy = mirror(script.parent, run_dir / "script", skip=self.workdir).root / script.name
        return str(copy) if copy.is_file() else None

    def _start(self, spec: RunSpec, run_dir: Path, cwd: Path, copy: str | None = None) -> tuple[RunProcess, int]:
        """Starts the run process in ``cwd``; returns it and the read end of its event pipe."""
        config = replace(self._config(spec, -1, None, str(run_dir / ARRAYS)), script_copy=copy)
        env = {**self._environment(spec), RUN_VAR: str(run_dir)}
        # forked from a pre-imported interpreter where proven safe; the stagger of start_after kept
        started = start_run(config, env, run_dir, cwd, spec.start_after)
        proc, read_end, control_write = started.proc, started.events, started.control
        with self._lock:
            self._live.add(proc)
            self._control[spec.name] = os.fdopen(control_write, "w", encoding="utf-8")
            stopping = self._stopping
        if stopping:  # the check ended while this run was starting
            kill_group(proc)
        if self.on_event is not None:
            self.on_event(spec, LaunchedEvent(proc.pid))
        return proc, read_end

    def _config(self, spec: RunSpec, events_fd: int, control_fd: int | None, arrays_path: str) -> WorkerConfig:
        return WorkerConfig(
            script=str(self.target.script.resolve()),
            args=self.target.args,
            seed=spec.controls.seed,
            op_determinism=spec.controls.op_determinism,
            events_fd=events_fd,
            control_fd=control_fd,
            arrays_path=arrays_path,
            epochs=self.settings.model_file.epochs,
            batch_size=self.settings.model_file.batch_size,
            max_steps=self.target.max_steps,
            explain_step=self.target.explain_step,
            function=self._function_target(),
            sequential_maps=self.target.sequential_maps,
            study=self.target.study,
            alignment=spec.alignment or self.target.study,  # a study compares every seed's activations
            whole_state=self.target.whole_state,
            preempt_after=spec.preempt_after,
            sampled=self.target.sampled,  # the recorder ignores it where it observes the whole state
        )

    def _function_target(self) -> FunctionTarget | None:
        function = self.target.function
        if function is None:
            return None
        call_path = self.workdir / "call.pkl"
        if not call_path.exists():
            call_path.write_bytes(function.call)
        return FunctionTarget(function.module, function.qualname, str(call_path), function.sys_path)

    def _read(self, fd: int, builder: TraceBuilder) -> None:
        with os.fdopen(fd, encoding="utf-8") as events:
            for line in events:
                self._feed(builder, line)

    def _feed(self, builder: TraceBuilder, line: str) -> None:
        """Takes one event line of a run, wherever it ran."""
        event = parse_event(line)
        if event is None:
            return  # not an event (a broken line): skipped
        builder.add(event)
        if self.monitor is not None and isinstance(event, (InitEvent, StepEvent)):
            self.monitor.add(builder.spec.name, builder.points[-1])
        if self.on_event is not None:
            self.on_event(builder.spec, event)

    def kill_all(self) -> None:
        """Kills every live run with its process group, and starts no other (a failure, Ctrl-C)."""
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for proc in live:
            kill_group(proc)


def raise_for_failure(spec: RunSpec, builder: TraceBuilder, returncode: int | None, run_dir: Path) -> None:
    """Raises what went wrong in a finished run, if anything did."""
    if builder.setup_error is not None:
        raise ReprokitError(
            f"could not prepare a training run with {sys.executable} "
            f"(are TensorFlow and Keras 3 installed there?): {builder.setup_error}"
        )
    if builder.refusal is not None:
        raise DeterminismRefusedError(
            f"TensorFlow refused to run the script in run {spec.name} with op determinism on: {builder.refusal.error}",
            spec.name,
            tail(run_dir / "stderr"),
            builder.refusal,
        )
    if builder.preempted is not None and builder.error is None:
        return  # it died as it was told to (a resume check's stopped run)
    if builder.error is not None or returncode != 0 or builder.end is None:
        raise ScriptFailedError(
            f"the script failed in run {spec.name}: {_failure(builder.error, returncode)}",
            spec.name,
            tail(run_dir / "stderr"),
        )


def _failure(error: str | None, returncode: int | None) -> str:
    if error:
        return error
    if returncode is not None and returncode < 0:
        return f"the process was killed by signal {-returncode}"
    if returncode:
        return f"the process exited with status {returncode}"
    return "the process ended before reporting its results (os._exit?)"


def tail(path: Path) -> str:
    """The script's last error output, from its last traceback if it has one."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [line for line in lines if not _TF_LOG_LINE.match(line)]
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if starts:
        lines = lines[starts[-1] :]
    return "\n".join(lines[-TAIL_LINES:])

"""The run process: one training of the user's script under given controls.

Started by :mod:`reprokit.run.runner` as ``python -m reprokit.worker.main`` in a fresh
process, with a :class:`~reprokit.protocol.config.WorkerConfig` in its environment.
It seeds everything, installs the hooks of :mod:`reprokit.worker.instrument` (and those
of :mod:`reprokit.worker.search` on the script's own hyperparameter searches), runs
the script as ``__main__`` with its own arguments, and streams what it
observes to the parent as :mod:`reprokit.protocol.events` events, one JSON line
each, on a pipe (the script keeps stdout and stderr for itself). Final
weights and predictions go to an ``.npz`` file so the parent never imports
a framework. Everything that depends on the Keras backend goes through the
run's :class:`~reprokit.worker.backends.Framework`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import platform
import runpy
import signal
import sys
import threading
import time
import traceback
import types
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprokit.core.backends import Backend
from reprokit.core.controls import IN_WORKER_VAR
from reprokit.core.machine import cpu_model
from reprokit.core.refusals import recognize
from reprokit.protocol import (
    CONFIG_VAR,
    EndEvent,
    ErrorEvent,
    Event,
    FunctionTarget,
    SetupErrorEvent,
    StartEvent,
    StopRequest,
    WorkerConfig,
)
from reprokit.worker.budget import StepBudgetSpent

if TYPE_CHECKING:
    from reprokit.worker.backends import Framework
    from reprokit.worker.recorder import Recorder

EXIT_SCRIPT_FAILED = 3
EXIT_SETUP_FAILED = 4

forked = False
"""Set by a fork server (:mod:`reprokit.worker.zygote`) in a run it forked; False in a fresh process."""


def main() -> int:
    config = WorkerConfig.from_json(os.environ.pop(CONFIG_VAR))
    channel = os.fdopen(config.events_fd, "w", buffering=1, encoding="utf-8")
    os.set_inheritable(config.events_fd, False)  # the script's children must not hold it
    lock = threading.Lock()

    def emit(event: Event) -> None:
        line = event.to_json() + "\n"
        with lock:
            channel.write(line)

    _exit_with_parent()
    try:
        from reprokit.core.controls import Controls

        backend, framework = prepare()  # first: the imports below are done (under its conditions) by then
        from reprokit.worker import instrument, search
        from reprokit.worker.recorder import Recorder

        framework.apply(Controls(config.seed, config.op_determinism, backend))
        recorder = Recorder(
            emit,
            framework.tensors,
            max_steps=config.max_steps,
            light=config.study,
            alignment=config.alignment,
            whole_state=config.whole_state,
            sampled=config.sampled,
            preempt_after=config.preempt_after,
            preempted=None if config.preempt_after is None else (lambda event: _die(emit, event, channel)),
        )
        if config.control_fd is not None:
            _listen(config.control_fd, recorder)
        framework.install(recorder, config)
        instrument.install(recorder, framework)
        search.install(recorder.emit)  # keras-tuner and Optuna are patched when the script imports them
    except Exception as exc:  # noqa: BLE001 - reported to the parent as a setup failure
        emit(SetupErrorEvent(f"{type(exc).__name__}: {exc}"))
        return EXIT_SETUP_FAILED
    script = str(Path(config.script).resolve())
    os.environ[IN_WORKER_VAR] = "1"  # decorated functions must not verify themselves again
    emit(StartEvent(os.getpid()))

    mode = "function" if config.function else "script"
    try:
        mode = _train(config, script, recorder)
    except StepBudgetSpent:
        pass  # --max-steps: the run ends here, as if the script had returned
    except SystemExit as exc:
        if exc.code not in (None, 0):
            message = exc.code if isinstance(exc.code, str) else f"the script exited with status {exc.code}"
            emit(ErrorEvent(str(message)))
            return EXIT_SCRIPT_FAILED
    except BaseException as exc:  # noqa: BLE001 - every failure of the user's code is reported
        emit(_failure_event(exc, script, config.op_determinism))
        return EXIT_SCRIPT_FAILED

    import numpy as np

    summaries, arrays = recorder.finalize()
    np.savez(config.arrays_path, **arrays)  # type: ignore[arg-type]
    budget = recorder.budget
    emit(
        EndEvent(
            mode,
            summaries,
            environment(framework),
            budget.stopped_at_max_steps,
            budget.stopped_early,
            recorder.xla_steps,
        )
    )
    channel.close()
    return 0


def prepare() -> tuple[Backend, Framework]:
    """Imports what a run needs before its script runs: Keras, the backend's framework, reprokit's hooks.

    Runs nothing and changes no setting: a fork server (:mod:`reprokit.worker.zygote`)
    calls it once and forks runs that then call :func:`main`, as a fresh process does.
    """
    backend = Backend.parse(os.environ.get("KERAS_BACKEND", "tensorflow"))  # set by the parent
    with _hidden("jax") if backend is Backend.TENSORFLOW else contextlib.nullcontext():
        from reprokit.worker import backends, instrument, search  # noqa: F401 - Keras and the framework here
        from reprokit.worker.recorder import Recorder  # noqa: F401

        return backend, backends.load(backend)


@contextlib.contextmanager
def _hidden(name: str) -> Iterator[None]:
    """A block in which ``import name`` fails as if it were not installed (unless it is imported already).

    TensorFlow's TFLite converter imports JAX when JAX is installed, which
    costs every TensorFlow run 0.3 s; JAX is hidden while TensorFlow is
    imported. The script can still import JAX (only TFLite's JAX converter
    stays off).
    """
    if name in sys.modules:
        yield
        return
    sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if name in sys.modules and sys.modules[name] is None:
            del sys.modules[name]


def _train(config: WorkerConfig, script: str, recorder: Recorder) -> str:
    """Runs the script (or calls the function, or trains the model file); returns the mode."""
    if config.function:
        _call_function(config.function, script)
        return "function"
    namespace = _run_script(script, config.args, config.script_copy)
    if recorder.total_steps == 0 and _is_model_file(namespace):
        _train_model_file(namespace, config.epochs, config.batch_size)
        return "model-file"
    return "script"


def _failure_event(exc: BaseException, script: str, op_determinism: bool) -> ErrorEvent:
    """Shows the user's traceback on stderr; the error event, with a determinism refusal if it is one."""
    sys.stderr.write(_user_traceback(exc, script))
    sys.stderr.flush()
    refusal = recognize(f"{type(exc).__name__}: {exc}", *_innermost_user_frame(exc)) if op_determinism else None
    return ErrorEvent(summary(exc), refusal)


def summary(exc: BaseException) -> str:
    """The exception's type and the first line of its message: Keras puts the arguments on the last lines."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _run_script(script: str, args: tuple[str, ...], copy: str | None = None) -> dict[str, Any]:
    """Runs the script as ``python script args`` would; from its private ``copy`` if there is one.

    The copy is what the script sees of itself (``__file__``, ``sys.argv[0]``,
    the folder its own modules are imported from); its code keeps the
    user's path, so that tracebacks and reported lines name the user's file.
    """
    runs_as = copy or script
    sys.argv = [runs_as, *args]
    sys.path[0] = os.path.dirname(runs_as)
    if copy is None:
        return runpy.run_path(script, run_name="__main__")
    with open(copy, "rb") as f:
        code = compile(f.read(), script, "exec", dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=copy, __cached__=None, __loader__=None, __package__=None, __spec__=None)
    previous = sys.modules.get("__main__")
    sys.modules["__main__"] = module  # as runpy does: pickling and multiprocessing find the script's names
    try:
        exec(code, module.__dict__)
    finally:
        if previous is not None:
            sys.modules["__main__"] = previous
    return module.__dict__


def _call_function(spec: FunctionTarget, script: str) -> None:
    """Imports a training function by module and qualified name and calls it.

    A function of a script (``__main__`` in the caller) is loaded by running the
    script under another name, so its ``if __name__ == "__main__"`` block stays out.
    """
    for entry in reversed(spec.sys_path):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    if spec.module == "__main__":
        sys.path[0:0] = [os.path.dirname(script)]
        namespace: Any = runpy.run_path(script, run_name="__reprokit_target__")
        target: Any = namespace[spec.qualname.split(".")[0]]
        rest = spec.qualname.split(".")[1:]
    else:
        target = importlib.import_module(spec.module)
        rest = spec.qualname.split(".")
    for name in rest:
        target = getattr(target, name)
    target = getattr(target, "__reprokit_function__", target)  # the undecorated function
    with open(spec.call_path, "rb") as f:
        args, kwargs = pickle.load(f)  # written by our own parent process
    target(*args, **kwargs)


def _is_model_file(namespace: dict[str, Any]) -> bool:
    return callable(namespace.get("build_model")) and callable(namespace.get("load_data"))


def _train_model_file(namespace: dict[str, Any], epochs: int, batch_size: int) -> None:
    """Trains a model file: ``build_model()`` on ``load_data()``."""
    model = namespace["build_model"]()
    data = namespace["load_data"]()
    if isinstance(data, tuple) and len(data) == 2:
        model.fit(data[0], data[1], epochs=epochs, batch_size=batch_size, verbose=0)
    else:  # a tf.data.Dataset (or anything else fit() accepts on its own)
        model.fit(data, epochs=epochs, verbose=0)


def _innermost_user_frame(exc: BaseException) -> tuple[str | None, int | None]:
    """The deepest frame of the traceback in the user's own code (not a library's)."""
    found: tuple[str | None, int | None] = (None, None)
    library = ("site-packages", "dist-packages", os.path.dirname(os.__file__), os.path.dirname(__file__))
    for frame, line in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if not filename.startswith("<") and not any(part in filename for part in library):
            found = (filename, line)
    return found


def _user_traceback(exc: BaseException, script: str) -> str:
    """The traceback from the user's script down, without reprokit's frames."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != script:
        tb = tb.tb_next
    shown = traceback.TracebackException(type(exc), exc, tb)
    here = os.path.dirname(os.path.abspath(__file__))
    kept = [frame for frame in shown.stack if not frame.filename.startswith(here)]
    shown.stack = traceback.StackSummary.from_list(kept)
    return "".join(shown.format())


def environment(framework: Framework) -> dict[str, Any]:
    """What can change the bits of a run besides the seed and op determinism (the backend's part included)."""
    import keras

    from reprokit.core.controls import RECORDED_ENV_VARS

    return {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "backend": keras.backend.backend(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        **framework.environment(),
        "process": "forked" if forked else "fresh",  # not in the signature: forked runs are bit-identical
        "env": {name: os.environ[name] for name in RECORDED_ENV_VARS if name in os.environ},
    }


# CPU features that change which kernels TensorFlow and oneDNN pick, hence the bits.
_NUMERIC_CPU_FLAGS = (
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx512_bf16",
    "amx_bf16",
    "amx_int8",
    "amx_tile",
)


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in _NUMERIC_CPU_FLAGS if flag in present]
    except OSError:
        pass
    return []


def _listen(fd: int, recorder: Recorder) -> None:
    """Takes the parent's requests to stop early (:class:`~reprokit.protocol.config.StopRequest` lines) on a pipe.

    The run then ends after that optimizer step, the way ``--max-steps`` ends it.
    """
    os.set_inheritable(fd, False)

    def listen() -> None:
        with os.fdopen(fd, encoding="utf-8") as requests:
            for line in requests:
                request = StopRequest.parse(line)
                if request is not None:
                    recorder.budget.request_stop(request.step)

    threading.Thread(target=listen, name="reprokit-control", daemon=True).start()


def _die(emit: Any, event: Event, channel: Any) -> None:
    """Sends ``event`` and dies at once, as a preempted machine's process does (SIGKILL: nothing is flushed)."""
    emit(event)
    channel.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def _exit_with_parent() -> None:
    """Ends this process if the parent dies, so no run outlives a check."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="reprokit-parent-watch", daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())

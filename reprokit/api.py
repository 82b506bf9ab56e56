"""The Python API: ``reprokit.check`` on a script or a training function; ``reprokit.align`` on two models."""

from __future__ import annotations

import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from reprokit.aligning.result import AlignReport, align_files
from reprokit.checking.baseline import DEFAULT_ATOL, DEFAULT_RTOL
from reprokit.checking.experiment import CheckOptions, run_check
from reprokit.checking.result import NotReproducibleError, Report
from reprokit.checking.runs import ResumeAt
from reprokit.core.controls import DEFAULT_SEED
from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import FailOn, fail_on_sources
from reprokit.report.ci import plain_summary
from reprokit.run.runner import FunctionRef, Target
from reprokit.run.settings import RunSettings


def check(
    target: str | os.PathLike[str] | Callable[..., Any],
    *,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    seed: int = DEFAULT_SEED,
    quick: bool = False,
    max_steps: int | None = None,
    timeout: float | None = None,
    epochs: int = 5,
    batch_size: int = 32,
    jobs: int | None = None,
    full: bool = False,
    baseline: str | os.PathLike[str] | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    executor: str = "local",
    ray_address: str | None = None,
    cpus_per_run: float = 1.0,
    gpus_per_run: float = 0.0,
    backend: str | None = None,
    resume_at: int | str | None = None,
) -> Report:
    """Checks whether a training script or function is reproducible.

    Runs the target in fresh processes under controlled settings (as
    ``reprokit check`` does) and returns the report; it raises only when the
    check could not be made, never because the target is not reproducible
    (see :func:`assert_reproducible` for that).

    Args:
        target: a script path, or a module-level training function (plain or
            decorated with :func:`reprokit.reproducible`).
        args: the script's command-line arguments, or the function's
            positional arguments (picklable).
        kwargs: the function's keyword arguments (picklable).
        seed: the seed S of the controlled runs.
        quick: run only the controlled pair.
        max_steps: stop every run after this many optimizer steps.
        timeout: seconds one run may take.
        epochs: epochs for a model file.
        batch_size: batch size for a model file.
        jobs: how many runs may execute at once (None: CPU cores + 1; runs share GPUs).
        full: train every run to the end, even after its pair's divergence is proven.
        baseline: compare one controlled run with this baseline file instead.
        rtol: relative tolerance when a baseline comes from another environment.
        atol: absolute tolerance, likewise.
        executor: ``"local"`` (processes on this machine) or ``"ray"`` (Ray
            tasks; ``pip install "reprokit[ray]"``).
        ray_address: the Ray cluster (None: ``RAY_ADDRESS``, else a cluster
            running on this machine, else a local instance for the call).
        cpus_per_run: CPUs Ray reserves for each run.
        gpus_per_run: GPUs Ray gives each run (a fraction shares a GPU).
        backend: the Keras backend to train on (``"tensorflow"``, ``"jax"``,
            ``"torch"``; None: ``KERAS_BACKEND``, then ``keras.json``, then TensorFlow).
        resume_at: also kill a run right after this optimizer step, run the
            target again in its folder and check that it resumes to the same
            model (``"middle"``: half way; ``report.resume`` holds the answer).

    Returns:
        The report: ``report.verdict``, ``report.finding(source)``,
        ``report.to_json()``; it renders itself with rich.

    Raises:
        UsageError: bad target or options; NoTrainingError: nothing was trained;
        ScriptFailedError: the target failed in a run (its traceback included).
    """
    if callable(target):
        resolved = _function_target(target, args, kwargs or {})
    else:
        if kwargs:
            raise UsageError("kwargs are for training functions; a script takes its arguments as args")
        resolved = Target(Path(target), tuple(str(a) for a in args))
    options = CheckOptions(
        target=Target(
            script=resolved.script,
            args=resolved.args,
            max_steps=max_steps,
            function=resolved.function,
        ),
        seed=seed,
        quick=quick,
        full=full,
        baseline=Path(baseline) if baseline is not None else None,
        rtol=rtol,
        atol=atol,
        resume=ResumeAt.of(resume_at),
        settings=RunSettings.of(
            timeout=timeout,
            jobs=jobs,
            epochs=epochs,
            batch_size=batch_size,
            executor=executor,
            ray_address=ray_address,
            cpus_per_run=cpus_per_run,
            gpus_per_run=gpus_per_run,
            backend=backend,
        ),
    )
    return run_check(options)


def assert_reproducible(report: Report, fail_on: Collection[str] = ("uncontrolled",)) -> None:
    """Raises AssertionError, with the report as its message, if ``report`` fails.

    Args:
        report: a report from :func:`check` (or the ``reprokit_check`` fixture).
        fail_on: the sources that fail it: ``seed``, ``nondeterministic-ops``,
            ``uncontrolled``, ``written-files``, ``resume``, ``any`` or ``none``. A baseline that does not match
            always fails.
    """
    problem = failure(report, fail_on_sources(fail_on))
    if problem is not None:
        raise AssertionError(f"{problem}\n\n{plain_summary(report)}")


def failure(report: Report, fail_on: FailOn) -> str | None:
    """Why ``report`` fails under ``fail_on``, in one sentence; None if it does not."""
    failures = report.failures(fail_on)
    if not failures:
        return None
    if report.baseline is not None:
        return failures[0].message
    return f"{report.script} is not reproducible: " + "; ".join(f.message for f in failures)


def raise_if_failed(report: Report, fail_on: FailOn) -> Report:
    """Returns ``report``, or raises NotReproducibleError carrying it."""
    problem = failure(report, fail_on)
    if problem is not None:
        raise NotReproducibleError(problem, report)
    return report


def _function_target(function: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> Target:
    function = getattr(function, "__reprokit_function__", function)
    module, qualname = getattr(function, "__module__", None), getattr(function, "__qualname__", "")
    if not module or "<locals>" in qualname or "<lambda>" in qualname:
        raise UsageError(
            f"expected a module-level function (fresh processes import it by name), received {qualname or function!r}"
        )
    file = getattr(sys.modules.get(module), "__file__", None)
    if file is None:
        raise UsageError(f"cannot check {qualname}: its module {module} has no file (defined interactively?)")
    try:
        call = pickle.dumps((tuple(args), dict(kwargs)))
    except (pickle.PicklingError, TypeError, AttributeError) as e:
        raise UsageError(f"the arguments of {qualname} must be picklable to reach a fresh process: {e}") from None
    ref = FunctionRef(module, qualname, call, tuple(p for p in sys.path if p))
    return Target(Path(file), function=ref)


def align(
    model_a: str | os.PathLike[str] | Any,
    model_b: str | os.PathLike[str] | Any,
    data: str | os.PathLike[str] | Any = None,
    *,
    timeout: float | None = None,
) -> AlignReport:
    """Why are the weights of two networks different? (``reprokit align`` from Python).

    Puts B's hidden units in A's order (weight matching), verifies that B
    still computes the same function, and measures how much of the weight
    difference the order explains, linear CKA of the hidden layers,
    prediction agreement and, with labels, the loss barrier. The models are
    read in a fresh process: this one does not import TensorFlow for it.

    Args:
        model_a: a saved model's path (``.keras``, ``.h5``), or a Keras model
            (saved to a temporary ``.keras`` file first).
        model_b: another training of the same architecture, likewise.
        data: the inputs to measure on: a ``.npz`` (``x``, and ``y`` for the
            loss barrier) or ``.npy`` path, an array ``x``, or a tuple
            ``(x, y)``. None: random inputs of the model's input shape.
        timeout: seconds the alignment may take.

    Returns:
        The report (``report.alignment`` holds the figures, ``to_dict()`` the JSON).

    Raises:
        UsageError: a file is missing or not a model, the architectures
            differ, or the data does not fit.
    """
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="reprokit-align-") as tmp:
        paths = [_model_path(m, Path(tmp) / f"{name}.keras") for m, name in ((model_a, "a"), (model_b, "b"))]
        data_path = None
        if isinstance(data, str | os.PathLike):
            data_path = Path(data)
        elif data is not None:
            x, y = data if isinstance(data, tuple) else (data, None)
            data_path = Path(tmp) / "data.npz"
            arrays = {"x": np.asarray(x)} if y is None else {"x": np.asarray(x), "y": np.asarray(y)}
            np.savez(data_path, **arrays)  # type: ignore[arg-type]
        return align_files(paths[0], paths[1], data_path, timeout)


def _model_path(model: Any, path: Path) -> Path:
    if isinstance(model, str | os.PathLike):
        return Path(model)
    if not callable(getattr(model, "save", None)):
        raise UsageError(f"expected a Keras model or the path of a saved one; received {type(model).__name__}")
    model.save(path)
    return path

"""``@reprokit.reproducible``: controlled settings on every call, verification on demand."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection
from typing import Any

from reprokit.checking.result import Report
from reprokit.core.controls import DEFAULT_SEED, IN_WORKER_VAR
from reprokit.core.vocabulary import Source, fail_on_sources
from reprokit.inprocess import controlled

VERIFY_VAR = "REPROKIT_VERIFY"
"""Set to 1 to verify every decorated function (once per process) when it is first called."""


class Reproducible:
    """A training function wrapped by :func:`reproducible`."""

    def __init__(
        self,
        function: Callable[..., Any],
        seed: int,
        op_determinism: bool,
        fail_on: Collection[str],
        quick: bool | None,
        max_steps: int | None,
        timeout: float | None,
        resume_at: int | str | None = None,
    ) -> None:
        functools.update_wrapper(self, function)
        self.__reprokit_function__ = function
        self.seed = seed
        self.op_determinism = op_determinism
        self.fail_on = fail_on_sources(fail_on)
        # Only the controlled pair is needed unless seed or ops sources can fail it.
        self.quick = self.fail_on <= {Source.UNCONTROLLED} if quick is None else quick
        self.max_steps = max_steps
        self.timeout = timeout
        self.resume_at = resume_at
        self._verified = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if _verify_requested() and not self._verified:
            self.verify(*args, **kwargs)
        with controlled(self.seed, self.op_determinism, warn=False):
            return self.__reprokit_function__(*args, **kwargs)

    def verify(self, *args: Any, **kwargs: Any) -> Report:
        """Trains the function in fresh processes and compares the runs.

        Returns:
            The report, if no ``fail_on`` source was detected.

        Raises:
            NotReproducibleError: a ``fail_on`` source was detected; it carries
                the report.
            ScriptFailedError: the function failed in a run (with its traceback).
        """
        from reprokit.api import check, raise_if_failed  # only to verify: the function also runs in run processes

        report = check(
            self,
            args=args,
            kwargs=kwargs,
            seed=self.seed,
            quick=self.quick,
            max_steps=self.max_steps,
            timeout=self.timeout,
            resume_at=self.resume_at,
        )
        raise_if_failed(report, self.fail_on)
        self._verified = True
        return report

    def __repr__(self) -> str:
        name = getattr(self, "__qualname__", "?")
        return f"<reprokit.reproducible {self.__module__}.{name} seed={self.seed}>"


def _verify_requested() -> bool:
    wanted = os.environ.get(VERIFY_VAR, "").lower() in ("1", "true", "yes")
    return wanted and not os.environ.get(IN_WORKER_VAR)


def reproducible(
    function: Callable[..., Any] | None = None,
    *,
    seed: int = DEFAULT_SEED,
    op_determinism: bool = True,
    fail_on: Collection[str] = ("uncontrolled",),
    quick: bool | None = None,
    max_steps: int | None = None,
    timeout: float | None = None,
    resume_at: int | str | None = None,
) -> Any:
    """Decorates a training function to run it under controlled settings.

    Example:
        ```python
        @reprokit.reproducible(seed=42)
        def train(epochs=3):
            model = build_model()
            model.fit(x, y, epochs=epochs)
            return model

        model = train(epochs=5)   # seeded and deterministic, result unchanged
        report = train.verify(epochs=1)   # fresh processes; raises if not reproducible
        ```

    Every call seeds everything and enables op determinism (as
    :class:`reprokit.controlled`) and returns the function's result unchanged.
    ``train.verify(...)`` (or ``reprokit.check(train)``, or any call with the
    environment variable ``REPROKIT_VERIFY=1``) trains it in fresh processes
    and raises :class:`reprokit.NotReproducibleError` when a ``fail_on``
    source is detected. The function must be defined at module level (in an
    importable module or a script with an ``if __name__ == "__main__":``
    guard) and its arguments picklable.

    Args:
        function: the function (when used as ``@reproducible`` without arguments).
        seed: the seed of every call and of the controlled runs.
        op_determinism: whether calls enable TensorFlow op determinism.
        fail_on: the sources that make verification fail.
        quick: verify with the controlled pair only; by default only when
            ``fail_on`` needs nothing more.
        max_steps: stop every verification run after this many optimizer steps.
        timeout: seconds one verification run may take.
        resume_at: verification also kills a run right after this optimizer
            step and calls the function again in its folder (``"middle"``:
            half way); with ``"resume"`` in ``fail_on`` a resume that ends
            with another model fails it.
    """

    def decorate(f: Callable[..., Any]) -> Reproducible:
        return Reproducible(f, seed, op_determinism, fail_on, quick, max_steps, timeout, resume_at)

    return decorate(function) if function is not None else decorate

"""The step budget of a run: counts optimizer steps and ends the run when it must.

Part of the :class:`~reprokit.worker.recorder.Recorder` (pure Python). Two things
end a run before its script does: ``--max-steps`` (``WorkerConfig.max_steps``)
and the parent's :class:`~reprokit.protocol.config.StopRequest` once the run's pairs
have proven their divergence. Either way the run ends after the step that
spent the budget, as if the script had returned: inside ``Model.fit`` by
setting the model's ``stop_training`` (fit ends, the script goes on, and
the next ``fit`` ends the run), elsewhere by raising :class:`StepBudgetSpent`
into the script.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StepBudgetSpent(BaseException):
    """Raised into the script to end a run after its last allowed optimizer step.

    A BaseException, so that the script's own ``except Exception`` lets it pass.
    """

    def __init__(self, steps: int) -> None:
        super().__init__(f"the step budget was spent after {steps} optimizer steps")
        self.steps = steps


class StepBudget:
    """Counts the run's optimizer steps (of every optimizer) and says when the run ends.

    Args:
        max_steps: end the run after this many steps (None: no limit).
    """

    __slots__ = ("_fitting", "_limit", "_max_steps", "_preempt_after", "_steps", "_stop_at")

    def __init__(self, max_steps: int | None = None, preempt_after: int | None = None) -> None:
        self._max_steps = max_steps
        self._preempt_after = preempt_after
        self._stop_at: int | None = None
        self._limit: float = math.inf if max_steps is None else max_steps  # the step that ends the run
        self._steps = 0
        self._fitting: list[Any] = []

    @property
    def max_steps(self) -> int | None:
        """``--max-steps`` (None: no limit)."""
        return self._max_steps

    @property
    def limited(self) -> bool:
        """Whether ``--max-steps`` or a stop request may end the run (steps must then be counted as they end)."""
        return self._limit != math.inf or self._preempt_after is not None

    def preempts(self, steps: int) -> bool:
        """Whether ``steps`` more optimizer steps go past the step after which the run dies (a resume check)."""
        return self._preempt_after is not None and self._steps + steps > self._preempt_after

    @property
    def steps(self) -> int:
        """Optimizer steps made so far."""
        return self._steps

    def request_stop(self, step: int) -> None:
        """The parent asks the run to end after optimizer step ``step`` (from any thread)."""
        self._stop_at = step
        self._limit = step if self._max_steps is None else min(self._max_steps, step)

    @property
    def stopped_at_max_steps(self) -> bool:
        """Whether ``--max-steps`` ends the run."""
        return self._max_steps is not None and self._steps >= self._max_steps

    @property
    def stopped_early(self) -> bool:
        """Whether the parent's stop request ends the run (and ``--max-steps`` does not)."""
        return self._stop_at is not None and self._steps >= self._stop_at and not self.stopped_at_max_steps

    @property
    def spent(self) -> bool:
        """Whether ``--max-steps`` or the parent's stop request ends the run now."""
        return self._steps >= self._limit  # checked after every step: one comparison

    def count(self, steps: int) -> int:
        """Counts ``steps`` new optimizer steps; returns the steps made so far."""
        self._steps += steps
        return self._steps

    @contextmanager
    def fitting(self, model: Any) -> Iterator[None]:
        """The block is ``model.fit``: a spent budget ends it through ``model.stop_training``."""
        self._fitting.append(model)
        try:
            yield
        finally:
            self._fitting.pop()

    @property
    def fitting_now(self) -> bool:
        """Whether a ``Model.fit`` call is under way (its own validation ``evaluate`` included)."""
        return bool(self._fitting)

    def raise_if_spent(self) -> None:
        """Ends the run now if the budget is spent (before a ``fit`` starts).

        Raises:
            StepBudgetSpent: the budget is spent.
        """
        if self.spent:
            raise StepBudgetSpent(self._steps)

    def end_step(self, eager: bool) -> None:
        """After a recorded step: ends the run if it spent the budget.

        Inside ``fit``, fit ends after this step. Outside, an ``eager`` step
        unwinds the script now; a step observed inside a traced function
        cannot raise, so :meth:`after_call` raises once the call returns.

        Raises:
            StepBudgetSpent: the budget is spent, outside ``fit``, in an eager step.
        """
        if self._steps < self._limit:
            return
        if self._fitting:
            self._fitting[-1].stop_training = True  # fit ends after this step; the script goes on
        elif eager:
            raise StepBudgetSpent(self._steps)

    def after_call(self, steps_before: int) -> None:
        """After an outermost compiled call outside ``fit`` that made steps: ends the run if they spent it.

        Raises:
            StepBudgetSpent: the call's steps spent the budget.
        """
        if self.spent and not self._fitting and self._steps > steps_before:
            raise StepBudgetSpent(self._steps)

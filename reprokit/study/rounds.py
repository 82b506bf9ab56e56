"""Seeds on demand: ``--seeds N|auto``, and the rounds of a study that adds seeds until its verdict is settled.

With ``--seeds auto`` (the default of ``seeds``, ``compare`` and ``tune``) a
study runs the seeds of the first look of its group-sequential design
(:mod:`reprokit.study.sequential`), judges every comparison, and adds the
seeds of the next look only while a comparison is still open, up to
``--max-seeds``. Every round keeps the runs of the rounds before it (the
study folder), so a study that stops early costs only the runs it needed, and
a later study with more seeds trains only the new ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from reprokit.core.errors import UsageError
from reprokit.study.sequential import Design, Reason, Verdict

DEFAULT_MAX_SEEDS = 30
"""``--max-seeds``: the most seeds per variant an automatic study runs."""
AUTO = "auto"


@dataclass(frozen=True)
class SeedCount:
    """How many seeds a study runs: a fixed number, or as many as its verdict needs (``--seeds auto``).

    Attributes:
        fixed: the number of seeds per variant (None: automatic).
        maximum: the most seeds per variant an automatic study runs.
    """

    fixed: int | None = None
    maximum: int = DEFAULT_MAX_SEEDS

    @property
    def auto(self) -> bool:
        return self.fixed is None

    @classmethod
    def parse(cls, text: str | int, maximum: int = DEFAULT_MAX_SEEDS) -> SeedCount:
        """``--seeds`` as written (a positive number or ``auto``) and ``--max-seeds``.

        Raises:
            UsageError: anything else, or a maximum below 2.
        """
        if maximum < 2:
            raise UsageError(f"expected --max-seeds of at least 2, received {maximum}")
        word = str(text).strip().lower()
        if word == AUTO:
            return cls(None, maximum)
        try:
            count = int(word)
        except ValueError:
            raise UsageError(f"expected --seeds to be a positive number or 'auto', received {text!r}") from None
        if count < 1:
            raise UsageError(f"expected --seeds of at least 1, received {count}")
        return cls(count, maximum)

    def __str__(self) -> str:
        return AUTO if self.fixed is None else str(self.fixed)


@dataclass(frozen=True)
class Sequential:
    """How a study with ``--seeds auto`` ended.

    Attributes:
        design: its group-sequential design (fixed before any run).
        looks: the seed counts it looked at, in order (the last: the seeds it used).
        verdicts: every comparison's verdict at the last look.
        settled: whether the study stopped because its verdict was settled
            (else it ran out of seeds: ``--max-seeds``).
    """

    design: Design
    looks: tuple[int, ...]
    verdicts: tuple[Verdict, ...]
    settled: bool

    @property
    def seeds(self) -> int:
        return self.looks[-1]

    def reasons(self) -> frozenset[Reason]:
        return frozenset(v.reason for v in self.verdicts)

    def why(self) -> str:
        """Why the study stopped where it did, in a sentence."""
        n, looks = self.seeds, len(self.looks)
        if looks == 1:
            where = "the first look of its design"
        else:
            where = f"look {looks} of up to {len(self.design.looks)} (at {', '.join(map(str, self.looks))} seeds)"
        if not self.settled:
            return f"stopped at --max-seeds {n}, {where}, with the verdict still open"
        counts = [(r, sum(v.reason is r for v in self.verdicts)) for r in Reason]
        parts = ", ".join(f"{c} {_REASONS[r]}" for r, c in counts if c)
        if Reason.MAX_SEEDS in self.reasons():
            return f"stopped at --max-seeds {n}, {where} ({parts})"
        every = "every comparison is" if len(self.verdicts) > 1 else "the comparison is"
        return f"stopped at {n} seeds, {where}: {every} settled ({parts})"


_REASONS = {
    Reason.SIGNIFICANT: "significant",
    Reason.EQUIVALENT: "equivalent within --min-effect",
    Reason.FUTILE: "futile",
    Reason.MAX_SEEDS: "open at the last look",
    Reason.OPEN: "open",
}

Round = Callable[[int, bool], Sequence[object]]
"""Runs the study up to ``seeds`` seeds per variant (``first``: the first round); returns its runs."""
Judge = Callable[[int, "tuple[Verdict, ...] | None"], "tuple[tuple[Verdict, ...], bool]"]
"""Judges the runs so far at a look of ``seeds``, given the verdicts of the look before; returns the
verdicts and whether the study's question is settled."""


def in_rounds(design: Design, run_round: Round, judge: Judge) -> Sequential:
    """Runs a study look by look until ``judge`` says it is settled or the design's last look."""
    looks: list[int] = []
    verdicts: tuple[Verdict, ...] | None = None
    seeds: int | None = design.first
    settled = False
    while seeds is not None:
        run_round(seeds, not looks)
        looks.append(seeds)
        verdicts, settled = judge(seeds, verdicts)
        if settled:
            break
        seeds = design.next_seeds(seeds)
    assert verdicts is not None  # a design has at least one look
    return Sequential(design, tuple(looks), verdicts, settled)

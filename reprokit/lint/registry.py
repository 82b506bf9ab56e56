"""The rule model: what a lint rule is, and the registry that holds the rules in code order.

A :class:`Rule` carries everything said about it — its code and kebab-case
name (like ruff's), a one-line message, the fix, why it is a hazard, the
check source its hazard shows up as, whether it exists only on a GPU — and
its detector. The rules themselves live in :mod:`reprokit.lint.rules`, one
module per family; :data:`reprokit.lint.rules.REGISTRY` holds them all.
Selection is ruff's: ``select``/``ignore`` take exact codes and prefixes
(``RK1``, ``RK10``, ``RK201``), and the more specific of the two wins.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Source, Word

Detection = tuple[ast.AST, str, str]
"""One hazard a detector found: ``(node, message, fix)``; the node gives the line and column."""

Detector = Callable[[ast.Module], Iterator[Detection]]
"""Yields a :data:`Detection` for each hazard in a parsed module."""

CODE = re.compile(r"RK\d{3}")
NAME = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
PREFIX = re.compile(r"RK\d{0,3}")


class Family(Word):
    """What a rule is about; each family is one module of :mod:`reprokit.lint.rules`."""

    SEEDING = "seeding"
    DATA = "data"
    ORDERING = "ordering"
    ENVIRONMENT = "environment"
    GPU = "gpu"


@dataclass(frozen=True)
class Rule:
    """A lint rule.

    Attributes:
        code: ``RK101`` etc.: ``RK1xx`` everywhere, ``RK2xx`` GPU-only.
        name: what it finds in kebab-case (``unseeded-random-generator``).
        family: what it is about.
        message: what it fires on, one line (Markdown: code in backticks).
            Each finding has its own message, naming the call it found.
        fix: what to do instead, one line (each finding has its own).
        rationale: why it is a hazard and what was measured, one paragraph.
        source: the source of differences its hazard shows up as when the
            script runs (None: not linked, e.g. file order, which is stable
            between runs on one file system).
        gpu_only: the hazard exists only on a GPU: on CPU it causes no difference.
        detect: finds the hazards in a parsed module.
    """

    code: str
    name: str
    family: Family
    message: str
    fix: str
    rationale: str
    source: Source | None
    gpu_only: bool
    detect: Detector

    def __post_init__(self) -> None:
        if not CODE.fullmatch(self.code) or not NAME.fullmatch(self.name):
            raise ValueError(f"expected a code like RK101 and a kebab-case name, received {self.code} {self.name!r}")
        texts = (self.message, self.fix, self.rationale)
        if not all(text and "\n" not in text and text == text.strip() for text in texts):
            raise ValueError(f"{self.code}: message, fix and rationale must each be one non-empty line")

    @property
    def title(self) -> str:
        """The message, after ``GPU: `` for a GPU-only rule (the README's hazard column)."""
        return f"GPU: {self.message}" if self.gpu_only else self.message


@dataclass(frozen=True)
class Registry:
    """The rules, ordered by code; codes and names are unique.

    Attributes:
        rules: every rule, in code order (sorted when the registry is built).
    """

    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.rules, key=lambda rule: rule.code))
        for field in ("code", "name"):
            values = [getattr(rule, field) for rule in ordered]
            twice = sorted({value for value in values if values.count(value) > 1})
            if twice:
                raise ValueError(f"expected every rule {field} once, received {', '.join(twice)} more than once")
        object.__setattr__(self, "rules", ordered)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def codes(self) -> tuple[str, ...]:
        """Every code, in order."""
        return tuple(rule.code for rule in self.rules)

    def rule(self, code: str) -> Rule:
        """The rule with this exact code.

        Raises:
            UsageError: no rule has it.
        """
        found = next((rule for rule in self.rules if rule.code == code), None)
        if found is None:
            raise UsageError(f"expected a rule code among {', '.join(self.codes)}, received {code}")
        return found

    def select(self, select: Sequence[str] = (), ignore: Sequence[str] = ()) -> tuple[Rule, ...]:
        """The rules chosen by codes and prefixes, as ruff chooses them.

        A rule is chosen when a ``select`` entry (every rule, when ``select``
        is empty) is a prefix of its code and no ``ignore`` entry is as long
        or longer: ``select=["RK1"], ignore=["RK105"]`` is RK101–RK110 but
        RK105; ``select=["RK105"], ignore=["RK1"]`` is RK105.

        Args:
            select: codes or prefixes (``RK101``, ``RK10``, ``RK2``).
            ignore: codes or prefixes.

        Raises:
            UsageError: an entry is neither a code nor a prefix of one.
        """
        self.check(select, ignore)
        chosen = []
        for rule in self.rules:
            selected = max((len(s) for s in select if rule.code.startswith(s)), default=-1 if select else 0)
            ignored = max((len(s) for s in ignore if rule.code.startswith(s)), default=-1)
            if selected >= 0 and selected > ignored:
                chosen.append(rule)
        return tuple(chosen)

    def check(self, *selectors: Iterable[str]) -> None:
        """Raises UsageError (one line) unless every entry is a rule code or a prefix of one."""
        unknown = sorted(
            {
                entry
                for entries in selectors
                for entry in entries
                if not (PREFIX.fullmatch(entry) and any(code.startswith(entry) for code in self.codes))
            }
        )
        if unknown:
            prefixes = ", ".join(sorted({code[:3] for code in self.codes}))
            raise UsageError(
                f"expected rule codes among {', '.join(self.codes)} or their prefixes ({prefixes}, …), "
                f"received {', '.join(unknown)}"
            )

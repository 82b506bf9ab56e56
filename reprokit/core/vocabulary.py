"""The words a check answers in: sources, their status, the pairs and the verdict.

Typed values instead of strings, so that a renderer never searches evidence
text to learn what a finding means, and a ``--fail-on`` value is converted
once, where it enters (:func:`fail_on_sources`). Each member's value is the
string the JSON report has always used.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from reprokit.core.errors import UsageError


class Word(str, Enum):
    """A string enum whose ``str()`` and hash are its value (as ``enum.StrEnum``, which needs 3.11)."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    __hash__ = str.__hash__


class Pair(Word):
    """Two runs that differ in one factor only (see :mod:`reprokit.checking.classify`)."""

    CONTROLLED = "controlled"
    OPS = "ops"
    SEED = "seed"
    FILES = "files"
    RESUME = "resume"

    @property
    def description(self) -> str:
        """What the two runs share and what they vary (``same seed, default ops``)."""
        return _PAIR_DESCRIPTIONS[self]


_PAIR_DESCRIPTIONS = {
    Pair.CONTROLLED: "same seed, op determinism on",
    Pair.OPS: "same seed, default ops",
    Pair.SEED: "other seed, op determinism on",
    Pair.FILES: "a second training in the folder the first wrote to",
    Pair.RESUME: "uninterrupted vs stopped after a step and run again in its folder",
}


class Source(Word):
    """A source of differences between trainings."""

    SEED = "seed"
    NONDETERMINISTIC_OPS = "nondeterministic_ops"
    UNCONTROLLED = "uncontrolled"
    WRITTEN_FILES = "written_files"
    RESUME = "resume"

    @property
    def label(self) -> str:
        """How reports name the source (``nondeterministic ops``)."""
        return _SOURCE_LABELS[self]

    @property
    def option(self) -> str:
        """How ``--fail-on`` names the source (``nondeterministic-ops``)."""
        return self.value.replace("_", "-")

    @property
    def pair(self) -> Pair:
        """The pair whose difference shows this source."""
        return _PAIR_OF_SOURCE[self]


_SOURCE_LABELS = {
    Source.SEED: "seed-driven",
    Source.NONDETERMINISTIC_OPS: "nondeterministic ops",
    Source.UNCONTROLLED: "uncontrolled",
    Source.WRITTEN_FILES: "files read back",
    Source.RESUME: "resume",
}
_PAIR_OF_SOURCE = {
    Source.UNCONTROLLED: Pair.CONTROLLED,
    Source.NONDETERMINISTIC_OPS: Pair.OPS,
    Source.SEED: Pair.SEED,
    Source.WRITTEN_FILES: Pair.FILES,
    Source.RESUME: Pair.RESUME,
}


class Status(Word):
    """What a check concluded about one source."""

    DETECTED = "detected"
    NONE = "none"
    NOT_OBSERVED = "not_observed"  # runs agreed, but the script holds a construct known to race
    NOT_CHECKED = "not_checked"  # its pair did not run (--quick, a baseline check, a refusal)
    NOT_SEPARABLE = "not_separable"  # its pair differs, but uncontrolled randomness may explain it

    @property
    def detected(self) -> bool | None:
        """True, False, or None when the check could not say (the JSON's ``detected``)."""
        if self is Status.DETECTED:
            return True
        if self in (Status.NONE, Status.NOT_OBSERVED):
            return False
        return None


class Verdict(Word):
    """The answer of a check.

    ``reproducible`` exactly when the controlled pair was shown identical; a
    check against a baseline answers whether one controlled run matches it
    (a mismatch after an intended change is not irreproducibility).
    """

    REPRODUCIBLE = "reproducible"
    NOT_REPRODUCIBLE = "not_reproducible"
    MATCHES_BASELINE = "matches_baseline"
    DIFFERS_FROM_BASELINE = "differs_from_baseline"

    @property
    def good(self) -> bool:
        """Whether the answer is the one a user hopes for."""
        return self in (Verdict.REPRODUCIBLE, Verdict.MATCHES_BASELINE)

    @property
    def words(self) -> str:
        """The verdict in plain words (``differs from baseline``)."""
        return self.value.replace("_", " ")


FailOn = frozenset[Source]
"""The sources whose detection fails a check (``--fail-on``)."""

FAIL_ON_CHOICES = ("seed", "nondeterministic-ops", "uncontrolled", "written-files", "resume", "any", "none")


def fail_on_sources(values: Iterable[str]) -> FailOn:
    """Converts ``--fail-on`` values into sources.

    The values: ``seed``, ``nondeterministic-ops``, ``uncontrolled``,
    ``written-files``, ``resume``, ``any``, ``none``; ``nondeterministic_ops`` (the
    source's own name) is accepted too. ``none`` wins over everything else.

    Raises:
        UsageError: a value is none of these.
    """
    wanted: set[Source] = set()
    words = [str(v) for v in values]
    for word in words:
        if word == "any":
            wanted |= set(Source)
        elif word != "none":
            try:
                wanted.add(Source(word.replace("-", "_")))
            except ValueError:
                raise UsageError(f"expected --fail-on among {', '.join(FAIL_ON_CHOICES)}, received {word!r}") from None
    return frozenset() if "none" in words else frozenset(wanted)


class Outcome(Word):
    """What a seed study concludes about a variant against the first (see :mod:`reprokit.study.stats`)."""

    BETTER = "better"
    WORSE = "worse"
    WITHIN_NOISE = "within_seed_noise"
    EQUIVALENT = "equivalent"
    TOO_FEW_SEEDS = "too_few_seeds"

    @property
    def label(self) -> str:
        """How reports write it (``within seed noise``)."""
        return {
            Outcome.BETTER: "better",
            Outcome.WORSE: "worse",
            Outcome.WITHIN_NOISE: "within seed noise",
            Outcome.EQUIVALENT: "equivalent",
            Outcome.TOO_FEW_SEEDS: "too few seeds",
        }[self]

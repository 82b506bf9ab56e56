"""A script's own hyperparameter search across the seeds of a study: does the seed change what it chooses?

A script that runs a keras-tuner tuner or an Optuna study picks its
hyperparameters itself. Each run of a study keeps what each of its searches
chose (:class:`~reprokit.study.store.SearchRecord`: the best trial's
hyperparameters and a fingerprint of every trial); the repeat of seed S
shows whether the search is reproducible with a fixed seed (the same
fingerprint), and the seeds show how often the choice changes with the seed
(:class:`SearchSpread`). Pure logic, no TensorFlow.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from reprokit.core.fingerprint import combine
from reprokit.run.trace import SearchTrial, best_trial, params_words
from reprokit.study.store import RunResult, SearchRecord

__all__ = ["Choice", "SearchSpread", "search_records", "search_spreads"]


def search_records(trials: Sequence[SearchTrial]) -> tuple[SearchRecord, ...]:
    """What each search of one run chose, in the order the searches first ended a trial."""
    keys = list(dict.fromkeys(t.key for t in trials))
    found = []
    for library, name in keys:
        mine = [t for t in trials if t.key == (library, name)]
        best = best_trial(mine)
        digest = combine([_trial_words(t) for t in mine])
        found.append(SearchRecord(library, name, len(mine), None if best is None else params_words(best), digest))
    return tuple(found)


def _trial_words(t: SearchTrial) -> str:
    score = "none" if t.score is None else repr(t.score) if math.isfinite(t.score) else str(t.score)
    params = ",".join(f"{k}={v}" for k, v in t.params.items())
    return f"{t.trial}|{params}|{score}|{t.status}|{','.join(repr(v) for v in t.values)}"


@dataclass(frozen=True)
class Choice:
    """One set of best hyperparameters and the seeds whose search chose it (``best`` None: none was chosen)."""

    best: str | None
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class SearchSpread:
    """One search across the seeds of a study: what it chose under each seed.

    Attributes:
        library: ``keras-tuner`` or ``optuna``.
        name: the search's name.
        choices: every choice, the most frequent first (the first seed's first among equals).
        seeds: how many seeds ran it (runs that failed or ran no search are left out).
    """

    library: str
    name: str
    choices: tuple[Choice, ...]
    seeds: int

    @property
    def label(self) -> str:
        return f"{self.library} search {self.name}"

    @property
    def stable(self) -> bool:
        """Every seed chose the same best hyperparameters."""
        return len(self.choices) == 1

    @property
    def top_share(self) -> float:
        """The share of seeds whose search chose the most frequent best hyperparameters."""
        return len(self.choices[0].seeds) / self.seeds

    def sentence(self) -> str:
        """The spread in words, as every report shows it."""
        top = self.choices[0]
        shown = top.best or "no best trial"
        if self.seeds < 2:
            return f"The {self.label} chose {shown} (one seed: run more to see whether the seed changes it)."
        if self.stable:
            return f"The {self.label} chose the same hyperparameters under all {self.seeds} seeds: {shown}."
        if len(self.choices) == self.seeds:
            return (
                f"The seed changes what the {self.label} chooses: other best hyperparameters under each of the "
                f"{self.seeds} seeds (seed {top.seeds[0]}: {shown}). Tune with several seeds, or compare the "
                "choices with `reprokit compare`."
            )
        return (
            f"The seed changes what the {self.label} chooses: {len(self.choices)} different best hyperparameters "
            f"across {self.seeds} seeds; the most frequent, {shown}, under {len(top.seeds)} of them "
            f"({self.top_share:.0%}). Tune with several seeds, or compare the choices with `reprokit compare`."
        )


def search_spreads(runs: Sequence[RunResult]) -> tuple[SearchSpread, ...]:
    """What each search chose across the seeds of ``runs`` (the repeat of a seed is left out)."""
    seeded = [r for r in runs if r.ok and not r.repeat]
    keys = list(dict.fromkeys((s.library, s.name) for r in seeded for s in r.searches))
    found = []
    for library, name in keys:
        chosen = [(r.seed, s.best) for r in seeded for s in r.searches if (s.library, s.name) == (library, name)]
        counts = Counter(best for _, best in chosen)
        order = list(dict.fromkeys(best for _, best in chosen))
        ranked = sorted(order, key=lambda best: -counts[best])  # stable: the first seed's first among equals
        choices = tuple(Choice(best, tuple(seed for seed, b in chosen if b == best)) for best in ranked)
        found.append(SearchSpread(library, name, choices, len(chosen)))
    return tuple(found)

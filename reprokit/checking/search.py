"""Is the script's own hyperparameter search reproducible? Its trials in two runs, compared (pure logic).

A script that runs a keras-tuner tuner or an Optuna study reports each trial
that ends (:class:`~reprokit.run.trace.SearchTrial`). For each pair of runs
that has trials, every search (by library and name) is compared: the number
of trials, whether the two lists are the same (the same hyperparameters, the
same scores, the same ends, in the same order), the first trial that
differs, each run's best trial and whether the best hyperparameters are the
same. The controlled pair (the same seed) answers whether the search is
reproducible; the seed pair (seeds S and S + 1) whether the seed changes the
chosen hyperparameters.

Nothing is claimed about trials a run did not finish: where a run ended
before its script did (``--max-steps``, an early exit), a search whose
finished trials agree so far is *not judged*, and neither is its best trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from reprokit.core.vocabulary import Pair
from reprokit.run.trace import RunTrace, SearchTrial, best_trial, params_words

__all__ = [
    "SearchComparison",
    "SearchPair",
    "SearchResult",
    "best_trial",
    "compare_search",
    "params_words",
    "search_result",
]

"""The statuses of a trial that ended with its score (keras-tuner's, Optuna's): only they can be the best."""


@dataclass(frozen=True)
class SearchComparison:
    """One search in the two runs of a pair.

    Attributes:
        library: ``keras-tuner`` or ``optuna``.
        name: the search's name (the tuner's project, the study's name).
        trials: how many of its trials each run finished.
        identical: the two lists of trials are the same (hyperparameters,
            scores, ends, order); None where they agree as far as both ran
            but a run ended before its script did (not judged).
        first_difference: the position (1 = the first trial to end) of the
            first trial that differs, or None.
        differing: that trial in each run (None: the run has no trial there).
        best: each run's best trial (by score and direction, the first of
            equals), or None where it has no scored trial or was cut short.
        same_best: the two best trials have the same hyperparameters; None
            where either is not known.
        complete: both runs ran their script to its end.
    """

    library: str
    name: str
    trials: tuple[int, int]
    identical: bool | None
    first_difference: int | None
    differing: tuple[SearchTrial | None, SearchTrial | None]
    best: tuple[SearchTrial | None, SearchTrial | None]
    same_best: bool | None
    complete: bool = True


@dataclass(frozen=True)
class SearchPair:
    """The searches of one pair of runs, compared.

    Attributes:
        pair: ``controlled`` (the same seed) or ``seed`` (seeds S and S + 1).
        runs: the two runs' names.
        seeds: their seeds.
        searches: every search either run ran, in the order they first ended a trial.
        stopped: why the runs ended before their scripts did ("" where both ran to the end).
    """

    pair: Pair
    runs: tuple[str, str]
    seeds: tuple[int, int]
    searches: tuple[SearchComparison, ...]
    stopped: str = ""

    @property
    def identical(self) -> bool | None:
        """Every search has the same trials in both runs (False if one differs; None: not judged)."""
        return _all(s.identical for s in self.searches)

    @property
    def same_best(self) -> bool | None:
        """Every search chose the same best hyperparameters (False if one did not; None: not known)."""
        return _all(s.same_best for s in self.searches)

    @property
    def label(self) -> str:
        """``same seed 1234`` or ``seeds 1234 and 1235``."""
        a, b = self.seeds
        return f"same seed {a}" if a == b else f"seeds {a} and {b}"

    @property
    def summary(self) -> str:
        """The pair's answer, one sentence per search (the words every report shows)."""
        several = len(self.searches) > 1
        say = _controlled_words if self.pair == Pair.CONTROLLED else _seed_words
        sentences = [say(self, s, _subject(s, several)) for s in self.searches]
        if self.stopped and any(not s.complete for s in self.searches):
            sentences.append(_stopped_words(self.stopped))
        return " ".join(sentences)


@dataclass(frozen=True)
class SearchResult:
    """The check's answer about the script's own hyperparameter searches.

    Attributes:
        controlled: the controlled pair's searches (None: its runs finished no trial).
        seed: the seed pair's (None: it did not run, ``--quick``, or finished no trial).
    """

    controlled: SearchPair | None
    seed: SearchPair | None = None

    @property
    def reproducible(self) -> bool | None:
        """The controlled pair's runs had the same trials (None: not judged, or not observed in both)."""
        return None if self.controlled is None else self.controlled.identical

    @property
    def words(self) -> str:
        """The controlled pair's answer in a few words (``reproducible``, ``not reproducible``, ``not judged``)."""
        if self.controlled is None:
            return "not observed in the controlled runs"
        return {True: "reproducible", False: "not reproducible", None: "not judged"}[self.controlled.identical]

    @property
    def pairs(self) -> tuple[SearchPair, ...]:
        """The pairs whose runs finished trials: the controlled pair first."""
        return tuple(p for p in (self.controlled, self.seed) if p is not None)


def search_result(traces: Mapping[str, RunTrace], pairs: Sequence[tuple[str, str, str]]) -> SearchResult | None:
    """The searches of the controlled and seed pairs among ``pairs`` (``(name, run_a, run_b)``).

    None when no run of those pairs finished a trial: the script ran no search (or none was seen).
    """
    found: dict[str, SearchPair] = {}
    for name, a, b in pairs:
        if name in (Pair.CONTROLLED, Pair.SEED) and a in traces and b in traces:
            compared = search_pair(Pair(name), traces[a], traces[b])
            if compared is not None:
                found[name] = compared
    if not found:
        return None
    return SearchResult(found.get(Pair.CONTROLLED), found.get(Pair.SEED))


def search_pair(pair: Pair, a: RunTrace, b: RunTrace) -> SearchPair | None:
    """The searches of two runs compared (None: neither finished a trial)."""
    if not a.searches and not b.searches:
        return None
    keys = list(dict.fromkeys([t.key for t in a.searches] + [t.key for t in b.searches]))
    complete = not a.stopped and not b.stopped
    searches = tuple(
        compare_search(
            [t for t in a.searches if t.key == key],
            [t for t in b.searches if t.key == key],
            complete,
        )
        for key in keys
    )
    return SearchPair(
        pair,
        (a.spec.name, b.spec.name),
        (a.spec.controls.seed, b.spec.controls.seed),
        searches,
        "" if complete else _why_stopped(a, b),
    )


def compare_search(a: Sequence[SearchTrial], b: Sequence[SearchTrial], complete: bool = True) -> SearchComparison:
    """One search's trials in two runs (at least one trial in either), compared.

    Args:
        a: its trials in the first run, in the order they ended.
        b: its trials in the second run.
        complete: both runs ran their script to the end; if not, trials
            that agree as far as both ran leave the search not judged, and
            the best trials are not known.
    """
    first = a[0] if a else b[0]
    position = next((i for i, (x, y) in enumerate(zip(a, b)) if not same_trial(x, y)), None)
    if position is None and len(a) != len(b) and complete:
        position = min(len(a), len(b))  # one run ended more trials than the other
    if position is not None:
        identical: bool | None = False
        differing = (_at(a, position), _at(b, position))
    else:
        identical = True if complete else None
        differing = (None, None)
    best = (best_trial(a), best_trial(b)) if complete else (None, None)
    same_best = None if best[0] is None or best[1] is None else dict(best[0].params) == dict(best[1].params)
    return SearchComparison(
        library=first.library,
        name=first.search,
        trials=(len(a), len(b)),
        identical=identical,
        first_difference=None if position is None else position + 1,
        differing=differing,
        best=best,
        same_best=same_best,
        complete=complete,
    )


def same_trial(a: SearchTrial, b: SearchTrial) -> bool:
    """The same hyperparameters, score, end and objective values (NaN equal to NaN, every bit of a number)."""
    return (
        dict(a.params) == dict(b.params)
        and a.status == b.status
        and _same_number(a.score, b.score)
        and len(a.values) == len(b.values)
        and all(_same_number(x, y) for x, y in zip(a.values, b.values))
    )


def trial_words(trial: SearchTrial | None, other: SearchTrial | None = None) -> str:
    """A trial's hyperparameters and score (or how it ended), shown beside ``other``'s."""
    if trial is None:
        return "no trial"
    if trial.score is not None:
        return f"{params_words(trial)} (score {_number(trial.score, None if other is None else other.score)})"
    if trial.values:
        shown = ", ".join(_number(v, None) for v in trial.values)
        return f"{params_words(trial)} (values {shown})"
    return f"{params_words(trial)} ({trial.status.lower()})"


def _controlled_words(pair: SearchPair, s: SearchComparison, subject: str) -> str:
    a, b = pair.runs
    if s.identical:
        same = _trials(s.trials[0])
        if s.best[0] is None:
            return f"{subject} is reproducible: the same {same} in runs {a} and {b} (none has a score to be the best)."
        return (
            f"{subject} is reproducible: the same {same} and the same best hyperparameters "
            f"({params_words(s.best[0])}) in runs {a} and {b}."
        )
    if s.identical is None:
        n: int = min(s.trials)
        if n == 0:
            return f"{subject} was not judged: the runs ended before both had finished a trial of it."
        first = "first trial is" if n == 1 else f"first {n} trials are"
        return f"{subject} was not judged: its {first} the same in runs {a} and {b}, but the runs ended before it did."
    return f"{subject} is not reproducible: {_difference(pair, s)}{_best_after_difference(s)}"


def _seed_words(pair: SearchPair, s: SearchComparison, subject: str) -> str:
    seed_a, seed_b = pair.seeds
    x, y = s.best
    which = _lower(subject)
    if s.same_best:
        assert x is not None
        how = (
            f"from the same {_trials(s.trials[0])}"
            if s.identical
            else f"though the trials differ from trial {s.first_difference} on"
        )
        return f"The same best hyperparameters under seeds {seed_a} and {seed_b} for {which}: {params_words(x)}, {how}."
    if s.same_best is False:
        assert x is not None and y is not None
        return (
            f"The seed changes the chosen hyperparameters of {which}: {params_words(x)} under seed {seed_a} "
            f"vs {params_words(y)} under seed {seed_b}."
        )
    if not s.complete:
        return f"Whether the seed changes the chosen hyperparameters of {which} was not judged."
    missing = " and ".join(run for run, best in zip(pair.runs, s.best) if best is None)
    return (
        f"Whether the seed changes the chosen hyperparameters of {which} is not known: "
        f"no completed trial of run {missing} has a score."
    )


def _difference(pair: SearchPair, s: SearchComparison) -> str:
    """The first trial that differs, in words."""
    k = s.first_difference
    x, y = s.differing
    a, b = pair.runs
    if x is None or y is None:
        ran, other, only = (a, b, x) if y is None else (b, a, y)
        count = s.trials[1] if y is None else s.trials[0]
        return f"trial {k} ran in {ran} only: {trial_words(only)}; {other} finished {_trials(count)}."
    if dict(x.params) != dict(y.params):
        return f"trial {k} differs: {trial_words(x, y)} in {a} vs {trial_words(y, x)} in {b}."
    same = f"trial {k} had the same hyperparameters ({params_words(x)})"
    if x.score is not None and y.score is not None and x.status == y.status:
        return f"{same} but scored {_number(x.score, y.score)} in {a} vs {_number(y.score, x.score)} in {b}."
    return f"{same} but ended {_end(x, y)} in {a} vs {_end(y, x)} in {b}."


def _best_after_difference(s: SearchComparison) -> str:
    x, y = s.best
    if s.same_best:
        assert x is not None
        return f" The best hyperparameters are the same all the same ({params_words(x)})."
    if s.same_best is False:
        assert x is not None and y is not None
        return f" The best hyperparameters differ: {params_words(x)} vs {params_words(y)}."
    return ""


def _end(trial: SearchTrial, other: SearchTrial) -> str:
    """How a trial ended: its status, and its score or objective values."""
    if trial.score is not None:
        return f"{trial.status} with score {_number(trial.score, other.score)}"
    if trial.values:
        return f"{trial.status} with values {', '.join(_number(v, None) for v in trial.values)}"
    return trial.status


def _stopped_words(why: str) -> str:
    return f"{why[0].upper()}{why[1:]}: the trial each was training then ended early, and no best trial is judged."


def _why_stopped(a: RunTrace, b: RunTrace) -> str:
    if a.stopped_at_max_steps or b.stopped_at_max_steps:
        return "--max-steps ended the runs before their scripts did"
    if a.preempted or b.preempted:
        return "a run was stopped before its script ended"
    return "the runs stopped early once their difference was proven (--full trains them to the end)"


_LIBRARIES = {"keras-tuner": "keras-tuner", "optuna": "Optuna"}
"""Each library's name in a sentence."""


def _subject(s: SearchComparison, several: bool) -> str:
    library = _LIBRARIES.get(s.library, s.library)
    return f"The {library} search {s.name!r}" if several else f"The {library} search"


def _lower(subject: str) -> str:
    return subject[0].lower() + subject[1:]


def _trials(n: int) -> str:
    return f"{n} trial" if n == 1 else f"{n} trials"


def _at(trials: Sequence[SearchTrial], i: int) -> SearchTrial | None:
    return trials[i] if i < len(trials) else None


def _same_number(x: float | None, y: float | None) -> bool:
    if x is None or y is None:
        return x is None and y is None
    return x == y or (math.isnan(x) and math.isnan(y))


def _number(x: float, other: float | None) -> str:
    """``x`` in 6 significant digits, or in full where that would hide its difference from ``other``."""
    short = f"{x:.6g}"
    if other is not None and other != x and short == f"{other:.6g}":
        return repr(x)
    return short


def _all(values: Iterable[bool | None]) -> bool | None:
    found = list(values)
    if any(v is False for v in found):
        return False
    if found and all(v is True for v in found):
        return True
    return None

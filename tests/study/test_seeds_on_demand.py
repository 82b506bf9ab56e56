"""``--seeds auto`` and ``reprokit tune`` on recorded values: parsing, refusals before any run, the rounds, the reports.

Nothing here trains: the rounds run a fake study of generated values, and the
tuning report is built from runs kept in a real study folder.
"""

from __future__ import annotations

import json
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest

import reprokit
from helpers import words
from reprokit.core.errors import UsageError
from reprokit.report.ci import Format
from reprokit.report.ci import plain_summary as plain
from reprokit.report.tunetext import render_tune
from reprokit.run.runner import Target
from reprokit.study.grid import Passing, configurations, parse_grid
from reprokit.study.rounds import SeedCount, in_rounds
from reprokit.study.running import StudyOptions, VariantRuns
from reprokit.study.sequential import Reason, design, judge
from reprokit.study.store import RunResult, StudyStore
from reprokit.study.tuneresult import Concern
from reprokit.study.tuning import tune_report


def test_seeds_is_a_positive_number_or_auto_in_any_case():
    assert SeedCount.parse("auto") == SeedCount(None, 30) and SeedCount.parse(" AUTO ", 12).auto
    assert SeedCount.parse(7) == SeedCount(7) and str(SeedCount.parse("7")) == "7"
    for bad, message in (("seven", "positive number or 'auto', received 'seven'"), ("0", "at least 1, received 0")):
        with pytest.raises(UsageError, match=message):
            SeedCount.parse(bad)
    with pytest.raises(UsageError, match="--max-seeds of at least 2, received 1"):
        SeedCount.parse("auto", 1)


@pytest.fixture
def scripts(tmp_path: Path) -> list[str]:
    """Two scripts that would train if run: a refusal must come before any run, so they never are."""
    found = []
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("import keras\nraise SystemExit('never run: refused before any run')\n")
        found.append(str(tmp_path / name))
    return found


def test_a_fixed_number_of_seeds_too_small_to_show_a_difference_is_refused_with_the_number_that_would(
    scripts, tmp_path
):
    folder = tmp_path / "studies"
    with pytest.raises(UsageError, match=r"expected --seeds 6 or more \(or --seeds auto\): with 5 seeds the exact"):
        reprokit.compare(*scripts, seeds=5, folder=folder)
    with pytest.raises(UsageError, match=r"expected --seeds 4 or more .* with 3 seeds per variant"):
        reprokit.compare(*scripts, seeds=3, paired=False, folder=folder)
    with pytest.raises(UsageError, match=r"expected --max-seeds \d+ or more: with at most 5 seeds"):
        reprokit.compare(*scripts, seeds="auto", max_seeds=5, folder=folder)
    assert not folder.exists()  # nothing ran


def generated(effect: float, seed: int = 0):
    """A fake study: paired values of two variants for any number of seeds, ``effect`` standard deviations apart."""
    rng = np.random.default_rng(seed)
    a, noise = rng.normal(size=60), rng.normal(scale=0.2, size=60)
    made: list[tuple[int, bool]] = []

    def run_round(n: int, first: bool) -> list[int]:
        made.append((n, first))
        return [n]

    def judge_round(n: int, before):
        verdicts = judge(
            plan, n, [(list(a[:n]), list(a[:n] + effect + noise[:n]))], higher_is_better=True, before=before
        )
        return verdicts, all(v.settled for v in verdicts)

    plan = design(30, 1)
    return plan, run_round, judge_round, made


def test_a_large_effect_is_settled_at_the_first_look_and_runs_one_round():
    plan, run_round, judge_round, made = generated(effect=2.0)
    ended = in_rounds(plan, run_round, judge_round)
    assert made == [(plan.first, True)] and ended.looks == (plan.first,) and ended.settled
    assert ended.reasons() == {Reason.SIGNIFICANT} and ended.why().startswith(f"stopped at {plan.first} seeds")


def test_a_study_adds_seeds_look_by_look_until_the_last_and_says_it_ran_out():
    plan, run_round, judge_round, made = generated(effect=0.0)

    def never(n: int, before):
        verdicts, _ = judge_round(n, before)
        return verdicts, False

    ended = in_rounds(plan, run_round, never)
    looks = tuple(k.seeds for k in plan.looks)
    assert ended.looks == looks and [n for n, _ in made] == list(looks)
    assert [first for _, first in made] == [True] + [False] * (len(looks) - 1)  # later rounds resume
    assert not ended.settled and ended.why().startswith(f"stopped at --max-seeds {looks[-1]}")


def kept(tmp_path: Path, label: str, values: list[float]) -> VariantRuns:
    store = StudyStore(tmp_path, label.replace(" ", "_"))
    results = []
    for i, value in enumerate(values):
        r = RunResult(1234 + i, metrics={"val_accuracy": value}, steps=10, weights={"m": f"{label}{i}"})
        store.save(r, {})
        results.append(r)
    return VariantRuns(Target(Path("train.py")), tuple(results), store, label)


def recorded_tuning(tmp_path: Path, values: dict[str, list[float]]):
    axes = parse_grid(["lr=0.1,0.01", "units=8,32"])
    grid = configurations(axes)
    runs = [kept(tmp_path, c.label, values[c.label]) for c in grid]
    options = StudyOptions(seeds=8, folder=tmp_path)
    return tune_report(Path("train.py"), (), axes, Passing.ARGS, runs, None, None, options, None, 12.0)


CLEAR = {
    "lr=0.1 units=8": [0.80, 0.82, 0.81, 0.79, 0.80, 0.83, 0.81, 0.80],
    "lr=0.1 units=32": [0.90, 0.91, 0.92, 0.90, 0.91, 0.93, 0.92, 0.90],
    "lr=0.01 units=8": [0.70, 0.71, 0.72, 0.70, 0.69, 0.72, 0.71, 0.70],
    "lr=0.01 units=32": [0.85, 0.86, 0.84, 0.85, 0.86, 0.85, 0.84, 0.85],
}


def test_a_clear_winner_is_best_under_every_seed_and_every_format_says_so(tmp_path):
    report = recorded_tuning(tmp_path, CLEAR)
    assert report.concerns() == frozenset()
    doc = json.loads(render_tune(report, Format.JSON, frozenset()))
    assert doc["kind"] == "tune" and doc["metric"] == "val_accuracy" and doc["concerns"] == []
    assert doc["ranking"]["order"] == ["lr=0.1 units=32", "lr=0.01 units=32", "lr=0.1 units=8", "lr=0.01 units=8"]
    best = doc["configurations"][1]
    assert best["label"] == "lr=0.1 units=32" and best["p_best"] == 1 and best["seed_wins"] == 8
    assert doc["ranking"]["winner_share"] == 1 and doc["ranking"]["kendall_w"] == 1
    assert doc["grid"] == [{"name": "lr", "values": ["0.1", "0.01"]}, {"name": "units", "values": ["8", "32"]}]
    text = words(plain(report))
    assert "✔ BEST lr=0.1 units=32, ahead of every other configuration beyond seed noise" in text
    assert "With one fixed seed (1234), tuning would have picked lr=0.1 units=32, the overall best" in text
    markdown = render_tune(report, Format.MARKDOWN, frozenset())
    assert "| 1 | lr=0.1 units=32 | 8 | 0.911 |" in markdown
    junit = ET.fromstring(render_tune(report, Format.JUNIT, frozenset({Concern.TIED})))
    assert junit.find(".//failure") is None


def test_configurations_within_seed_noise_are_tied_and_fail_when_fail_if_names_it(tmp_path):
    rng = np.random.default_rng(3)
    noise = {label: list(0.9 + rng.normal(scale=0.01, size=8)) for label in CLEAR}
    report = recorded_tuning(tmp_path, noise)
    assert Concern.TIED in report.concerns()
    doc = report.to_dict()
    assert "tied" in doc["concerns"] and sum(c["tied_with_best"] for c in doc["configurations"]) > 1
    assert "statistically tied with" in words(plain(report))
    junit = ET.fromstring(render_tune(report, Format.JUNIT, frozenset({Concern.TIED})))
    failed = junit.find(".//testcase[@name='a clear winner']/failure")
    assert failed is not None and "tied" in failed.get("message", "")

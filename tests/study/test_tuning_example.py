"""``--seeds auto`` and ``reprokit tune`` on the tuning example (digits), through the CLI.

The runs come from the session's ``tuning_study`` (a seed study, a comparison and a 3 x 2 tuning
of the example): with its study folder, a comparison of configurations the seed study or the
tuning already trained reuses their runs (no ``--resume`` needed) and trains only the others.
"""

from __future__ import annotations

import json

import pytest

from helpers import reprokit, words
from reprokit.study.sequential import design

pytestmark = pytest.mark.e2e

TUNING = "examples/tuning.py"


def compared(tuning_study, *args: str):
    done = reprokit("compare", *args, "--study-dir", tuning_study.studies, "-f", "json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_learning_rate_of_3_is_worse_and_the_study_stops_at_the_first_number_of_seeds_that_can_say_so(
    tuning_study,
):
    doc = compared(tuning_study, f"{TUNING} --hidden 32 --lr 0.01", f"{TUNING} --hidden 32 --lr 3.0")
    (contrast,) = doc["comparisons"]
    assert contrast["outcome"] == "worse" and contrast["settled"] == {"reason": "significant", "seeds": 7}
    first = design(30, 1).first
    assert first == 7 and doc["sequential"]["looks"] == [first] and doc["seeds"] == first
    assert contrast["p_adjusted"] == 2 / 2**7  # every one of the 7 seeds is worse: the smallest p there is
    assert all(run["cached"] for v in doc["variants"] for run in v["runs"])  # the tuning's runs, reused


def test_one_script_under_two_names_is_within_seed_noise_by_futility_or_equivalent_with_a_min_effect(tuning_study):
    # the same training under two names: the defaults, and spelled out (the seed study and the tuning ran both:
    # only the seeds the first lacks are trained)
    names = [TUNING, f"{TUNING} --hidden 32 --lr 0.01"]
    doc = compared(tuning_study, *names)
    plain, spelled = doc["variants"]  # seeds 1234 and 1235 of the first from `reprokit seeds`, the second from tune
    assert [r["seed"] for r in plain["runs"] if r["cached"]] == [1234, 1235] and all(
        r["cached"] for r in spelled["runs"]
    )
    assert (doc["runs_trained"], doc["runs_reused"]) == (5, 9)  # 7 seeds each: only the first's 5 new seeds trained
    (contrast,) = doc["comparisons"]
    assert contrast["outcome"] == "within_seed_noise" and contrast["settled"] == {"reason": "futile", "seeds": 7}
    assert contrast["difference"] == 0 and doc["sequential"]["looks"] == [7]
    assert "futile" in doc["sequential"]["why"]
    doc = compared(tuning_study, *names, "--min-effect", "0.01")  # the same runs: nothing new is trained
    (contrast,) = doc["comparisons"]
    assert contrast["outcome"] == "equivalent" and contrast["settled"] == {"reason": "equivalent", "seeds": 7}
    assert all(run["cached"] for v in doc["variants"] for run in v["runs"]) and doc["runs_trained"] == 0


def test_tune_ranks_the_grid_and_answers_the_seed_question_with_numbers(tuning_study):
    done = tuning_study.tune
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads((tuning_study.folder / "tune.json").read_text())
    assert doc["kind"] == "tune" and doc["metric"] == "evaluate_accuracy" and doc["seeds"] == 8
    configs = {c["label"]: c for c in doc["configurations"]}
    assert len(configs) == 6 and all(c["n"] == 8 for c in configs.values())
    assert sum(c["p_best"] for c in configs.values()) == pytest.approx(1.0)
    ranking = doc["ranking"]
    assert ranking["best"].startswith("hidden=32 lr=0.01")  # 0.01 or 0.011: the two lead together
    assert set(ranking["order"][-2:]) == {"hidden=32 lr=3.0", "hidden=8 lr=3.0"}  # a learning rate of 3 is last
    for bad in ("hidden=32 lr=3.0", "hidden=8 lr=3.0", "hidden=8 lr=0.01"):
        assert configs[bad]["tied_with_best"] is False and configs[bad]["p_best"] == 0
    assert ranking["tie_test_possible"] is True and 0 < ranking["kendall_w"] <= 1
    assert ranking["one_seed"] == 1234 and ranking["one_seed_pick"] in configs
    assert ranking["seeds_for_top"] is None or 2 <= ranking["seeds_for_top"] <= 8
    text = words(done.stdout)
    assert "With one fixed seed (1234), tuning would have picked" in text
    assert "seeds per configuration" in text and "Kendall's W" in text and "P(best)" in text
    assert all(label in text for label in configs)

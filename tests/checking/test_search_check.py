"""A script's own hyperparameter search, checked for real: the search examples through the CLI (``--quick``)."""

import importlib.util

import pytest

from helpers import EXAMPLES, reprokit

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        importlib.util.find_spec("keras_tuner") is None or importlib.util.find_spec("optuna") is None,
        reason="keras-tuner and Optuna are not installed (pip install -e '.[tuner]')",
    ),
]


@pytest.mark.parametrize(
    ("example", "library", "subject"),
    [("keras_tuner_search.py", "keras-tuner", "keras-tuner"), ("optuna_search.py", "optuna", "Optuna")],
)
def test_a_seeded_search_is_reproducible_with_the_same_trials_and_best_hyperparameters(example, library, subject):
    result = reprokit("check", EXAMPLES / "search" / example, "--quick", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = result.report
    assert doc["verdict"] == "reproducible"
    assert doc["search"]["reproducible"] is True
    (pair,) = doc["search"]["pairs"]  # --quick: the controlled pair only
    assert (pair["name"], pair["identical"], pair["same_best"]) == ("controlled", True, True)
    (search,) = pair["searches"]
    assert (search["library"], search["name"], search["trials"], search["complete"]) == (
        library,
        "digits",
        [2, 2],
        True,
    )
    best, again = search["best"]
    assert best == again and set(best["params"]) == {"units", "learning_rate"}
    shown = ", ".join(f"{k}={v}" for k, v in best["params"].items())
    assert pair["summary"] == (
        f"The {subject} search is reproducible: the same 2 trials and the same best hyperparameters ({shown}) "
        "in runs controlled-1 and controlled-2."
    )


def test_an_optuna_study_without_a_sampler_seed_is_not_reproducible_from_its_first_trial():
    result = reprokit(
        "check", EXAMPLES / "search" / "optuna_search.py", "--quick", "--format", "json", "--", "--unseeded"
    )
    assert result.returncode == 1, result.stderr
    doc = result.report
    assert doc["verdict"] == "not_reproducible"
    assert doc["search"]["reproducible"] is False
    (pair,) = doc["search"]["pairs"]
    (search,) = pair["searches"]
    assert (search["library"], search["identical"], search["first_differing_trial"]) == ("optuna", False, 1)
    first, second = search["differing"]
    assert first["params"] != second["params"]  # other hyperparameters from the very first trial
    assert pair["summary"].startswith("The Optuna search is not reproducible: trial 1 differs: ")
    assert "is reproducible" not in pair["summary"]

"""The HTML reports of the examples, opened from disk in real headless Chromium with the network off.

Each page must show its verdict and every expected plot (an inline SVG under its title), fetch
nothing and report no error. The screenshots stay in the tests' temporary folders.
"""

from __future__ import annotations

import pytest

from helpers import page_verdict, plots, rendered

pytestmark = pytest.mark.e2e


def expected_check_plots(doc: dict) -> dict[str, str]:
    """The plots a check's page must have, from its JSON: the loss, and the divergence map of differing pairs."""
    expected = {"check-loss-sequential": "Training loss of every run"}
    differing = [c["name"] for c in doc["comparisons"] if not c["identical"]]
    if differing:
        expected["check-first-difference"] = "Where each variable first differs"
    for name in differing:
        expected[f"check-distance-{name}"] = f"How far apart the weights are over training ({name} pair)"
    return expected


@pytest.mark.parametrize(
    "example", ["seed_question.py", "nondeterministic_pipeline.py", "unseeded_augmentation.py", "custom_loop.py"]
)
def test_the_html_report_of_a_check_shows_its_verdict_and_every_plot_offline(checked_example, example, tmp_path):
    checked = checked_example(example)
    doc = checked.report
    page = rendered(checked.html, tmp_path)
    assert page_verdict(page).startswith(doc["verdict"].replace("_", " "))
    fixes, figures = page.tops['section.panel[id$="-why-and-the-fix"]'], page.tops["figure"]
    if fixes:  # the answer first: each fix lies above the first plot
        assert max(fixes) < min(figures)
    found = plots(page)
    assert expected_check_plots(doc).items() <= found.items()
    if example == "seed_question.py":  # it reports accuracy in its fit history
        assert found["check-metric-sequential-accuracy"] == "accuracy per epoch"
    assert "Sources of difference" in page.dom and "TensorFlow" in page.dom  # the rich report's parts, environment
    for source in doc["sources"].values():
        if source["fix"]:
            assert "why, and the fix" in page.dom


def test_the_html_reports_of_a_seed_study_and_a_comparison_show_every_seed_and_the_learning_curves(
    tuning_study, tmp_path
):
    seeds = rendered(tuning_study.folder / "seeds.html", tmp_path)
    assert plots(seeds) == {
        "study-values": "evaluate_accuracy of every seed",
        "study-curves": "Learning curves: accuracy per epoch",  # fit's own: the script evaluates once
    }
    assert page_verdict(seeds) and "Per seed" in seeds.dom
    compare = rendered(tuning_study.folder / "compare.html", tmp_path)
    assert set(plots(compare)) == {"study-values", "study-curves"}
    assert page_verdict(compare) == "B vs A: worse; C vs A: within seed noise"


def test_the_html_report_of_a_tuning_shows_the_rank_of_every_configuration_by_seed_and_their_intervals(
    tuning_study, tmp_path
):
    page = rendered(tuning_study.folder / "tune.html", tmp_path)
    assert plots(page) == {
        "tune-ranks": "Rank of each configuration under every seed",
        "study-values": "evaluate_accuracy of every seed",
    }
    assert "BEST hidden=32 lr=0.01" in page_verdict(page)  # 0.01 or 0.011: the two lead together
    assert "seeds per configuration" in page.dom

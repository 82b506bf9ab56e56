"""The pytest plugin, run through pytester as a user's test suite would run it."""

import pytest

import reprokit
from helpers import EXAMPLES

pytest_plugins = ["pytester"]


def test_the_seed_is_in_the_header_and_can_be_replayed(pytester):
    pytester.makepyfile("def test_nothing():\n    pass\n")
    header = f"reprokit {reprokit.__version__}: seed 1234 (replay with --reprokit-seed=1234)"
    assert header in pytester.runpytest().stdout.str()
    replay = pytester.runpytest("--reprokit-seed=77")
    replay.stdout.fnmatch_lines(["*seed 77 (replay with --reprokit-seed=77)*"])
    replay.assert_outcomes(passed=1)


def test_the_option_is_in_its_own_help_group(pytester):
    pytester.runpytest("--help").stdout.fnmatch_lines(
        ["reprokit: reproducibility of Keras training:", "*--reprokit-seed=N*"]
    )


@pytest.mark.e2e
def test_the_marker_runs_the_body_under_the_seed_of_the_marker_or_the_session(pytester):
    pytester.makepyfile(
        """
        import numpy as np
        import pytest

        np.random.seed(123)  # the state an unmarked test must find untouched

        def test_unmarked_tests_are_left_alone():
            assert np.random.rand() == np.random.RandomState(123).rand()

        @pytest.mark.reproducible(seed=5)
        def test_marker_seed():
            assert np.random.rand() == np.random.RandomState(5).rand()

        @pytest.mark.reproducible
        def test_session_seed():
            assert np.random.rand() == np.random.RandomState(31).rand()
        """
    )
    result = pytester.runpytest_subprocess("--reprokit-seed=31", "-rA")
    result.assert_outcomes(passed=3)
    sections = [line for line in result.outlines if "ran under controlled settings" in line]
    assert sections == ["ran under controlled settings with seed 5", "ran under controlled settings with seed 31"]


@pytest.mark.e2e
def test_the_fixture_and_assertion_fail_with_the_report_as_the_message(pytester):
    pytester.makepyfile(
        f"""
        import reprokit

        def test_augmentation_is_reproducible(reprokit_check):
            report = reprokit_check(r"{EXAMPLES / "unseeded_augmentation.py"}", quick=True, max_steps=3)
            reprokit.assert_reproducible(report)
        """
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*is not reproducible: uncontrolled: 2 runs with seed 1234*", "*NOT REPRODUCIBLE*"])
    assert "np.random.default_rng(1234)" in result.stdout.str()


@pytest.mark.e2e
def test_the_plugin_example_passes_for_real(pytester):
    result = pytester.runpytest_subprocess(str(EXAMPLES / "pytest_plugin" / "test_training.py"))
    result.assert_outcomes(passed=2)

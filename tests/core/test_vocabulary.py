"""The typed vocabulary: --fail-on converted once, statuses rendered from the status, one failure decision."""

import dataclasses
import json

import pytest

from helpers import recorded_report
from reprokit.api import failure
from reprokit.checking.classify import Finding
from reprokit.core.errors import EXIT_FAILED_CHECK, CheckFailedError, UsageError
from reprokit.core.refusals import DeterminismRefusedError, recognize
from reprokit.core.vocabulary import Pair, Source, Status, Verdict, fail_on_sources
from reprokit.report.ci import markdown, plain_summary


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["uncontrolled"], {Source.UNCONTROLLED}),
        (["nondeterministic-ops"], {Source.NONDETERMINISTIC_OPS}),
        (["nondeterministic_ops", "seed"], {Source.NONDETERMINISTIC_OPS, Source.SEED}),
        (["any"], set(Source)),
        (["any", "none"], set()),
        ([], set()),
    ],
)
def test_fail_on_values_are_converted_once_into_sources(values, expected):
    assert fail_on_sources(values) == frozenset(expected)


def test_an_unknown_fail_on_value_is_a_usage_error_naming_the_choices():
    with pytest.raises(UsageError, match="expected --fail-on among seed, nondeterministic-ops"):
        fail_on_sources(["everything"])


def test_the_vocabulary_keeps_the_json_strings_and_names_the_cli_option():
    assert json.dumps({Source.NONDETERMINISTIC_OPS: Verdict.NOT_REPRODUCIBLE}) == (
        '{"nondeterministic_ops": "not_reproducible"}'
    )
    assert f"{Source.SEED}" == str(Source.SEED) == "seed"
    assert Source.NONDETERMINISTIC_OPS.option == "nondeterministic-ops"
    assert {s: s.pair for s in Source} == {
        Source.SEED: Pair.SEED,
        Source.NONDETERMINISTIC_OPS: Pair.OPS,
        Source.UNCONTROLLED: Pair.CONTROLLED,
        Source.WRITTEN_FILES: Pair.FILES,
        Source.RESUME: Pair.RESUME,
    }
    assert [s.detected for s in Status] == [True, False, False, None, None]


def test_a_status_is_rendered_from_the_status_never_from_the_evidence_text():
    report = recorded_report("seed")
    misleading = Finding(Source.SEED, Status.NOT_SEPARABLE, "Not checked, says this sentence, but it was.")
    report = dataclasses.replace(report, findings=(misleading, *report.findings[1:]))
    assert "| seed-driven | unclear |" in markdown(report, frozenset())
    row = next(line for line in plain_summary(report).splitlines() if "seed-driven" in line)
    assert "? unclear" in row and "not checked" not in row


def test_failures_are_decided_in_one_place_for_every_output():
    report = recorded_report("ops")  # seed and nondeterministic ops detected, controlled identical
    assert report.failures(fail_on_sources(["uncontrolled"])) == ()
    failing = report.failures(fail_on_sources(["any"]))
    assert [f.source for f in failing] == [Source.SEED, Source.NONDETERMINISTIC_OPS]
    assert failing[1].message.startswith("nondeterministic ops: 2 runs with the same seed and default ops differ")
    assert failure(report, frozenset({Source.SEED})).startswith("examples/seed_question.py is not reproducible: seed-")
    assert "❌ detected" in markdown(report, frozenset({Source.SEED}))
    assert "❌" not in markdown(report, frozenset())


def test_a_refusal_of_op_determinism_has_one_exit_code_wherever_it_surfaces():
    refusal = recognize('RuntimeError: "from_non_deterministic_state" cannot be called when determinism is enabled.')
    error = DeterminismRefusedError("refused", "controlled-1", "", refusal)
    assert error.exit_code == CheckFailedError.exit_code == EXIT_FAILED_CHECK
    assert refusal.source is Source.UNCONTROLLED

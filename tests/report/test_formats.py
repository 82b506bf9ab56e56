"""CI formats on recorded reports: JUnit, Markdown, GitHub annotations, multi-format output."""

import dataclasses
import json
from xml.etree import ElementTree as ET

import pytest

from helpers import recorded_report
from reprokit.checking.baseline import BaselineResult, EnvironmentDifference
from reprokit.cli.app import Output, exit_code, parse_outputs
from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Source, Verdict, fail_on_sources
from reprokit.report.ci import Format, github_annotations, junit, markdown
from reprokit.run.trace import Pin

UNCONTROLLED = frozenset({Source.UNCONTROLLED})


def cases(xml: str) -> dict[str, ET.Element]:
    suite = ET.fromstring(xml).find("testsuite")
    return {case.get("name").split(": ")[-1]: case for case in suite.iter("testcase")}


def test_junit_has_a_testcase_per_source_and_fails_only_what_fail_on_names():
    xml = junit(recorded_report("ops"), fail_on_sources(["nondeterministic-ops"]))
    root = ET.fromstring(xml)
    assert root.get("tests") == "4" and root.get("failures") == "1"
    found = cases(xml)
    assert set(found) == {"seed-driven", "nondeterministic ops", "uncontrolled", "files read back"}  # no resume asked
    failure = found["nondeterministic ops"].find("failure")
    assert "nondeterministic ops detected" in failure.get("message")
    assert "enable_op_determinism()" in failure.text
    assert found["seed-driven"].find("failure") is None  # detected, but not in --fail-on


def test_junit_skips_what_was_not_checked():
    found = cases(junit(recorded_report("none", quick=True), fail_on_sources(["any"])))
    assert found["seed-driven"].find("skipped") is not None
    assert found["uncontrolled"].find("failure") is None and found["uncontrolled"].find("skipped") is None


def test_a_baseline_is_one_junit_testcase_with_the_difference_as_its_failure():
    report = dataclasses.replace(
        recorded_report("none"),
        verdict=Verdict.DIFFERS_FROM_BASELINE,
        baseline=BaselineResult(
            "reprokit.lock.json",
            False,
            True,
            (),
            12,
            "sequential",
            ("dense/kernel",),
            (),
            "differs from the baseline from step 12 of sequential (dense/kernel)",
        ),
    )
    xml = junit(report, UNCONTROLLED)
    (case,) = ET.fromstring(xml).iter("testcase")
    assert case.get("name") == "baseline reprokit.lock.json"
    assert "from step 12" in case.find("failure").get("message")
    assert case.find("failure").get("type") == "BaselineMismatch"  # not "NotReproducible": a change, maybe intended
    assert markdown(report, UNCONTROLLED).startswith("### ❌ reprokit check `examples/seed_question.py`: differs from")
    assert report.to_dict()["verdict"] == "differs_from_baseline"
    assert exit_code(report, frozenset()) == 1  # a baseline mismatch fails whatever --fail-on says


def test_markdown_has_the_verdict_a_table_and_the_fixes():
    text = markdown(recorded_report("seed"), UNCONTROLLED)
    assert text.startswith("### ✅ reprokit check `examples/seed_question.py`: reproducible")
    assert "| seed-driven | ⚠️ detected |" in text
    assert "| seed | differs | initial weights (`sequential/dense/kernel`)" in text
    assert "keras.utils.set_random_seed(1234)" in text


def test_github_annotations_escape_their_data_and_point_at_script_lines():
    report = dataclasses.replace(
        recorded_report("uncontrolled"),
        pins=(Pin("np.random.seed(0)", "seed", "/src/train, v2.py", 7),),
    )
    lines = list(github_annotations(report, UNCONTROLLED))
    assert lines[0].startswith("::error file=examples/seed_question.py,title=reprokit%3A controlled pair")
    assert "\n" not in lines[0]
    assert lines[-1].startswith("::notice file=/src/train%2C v2.py,line=7,title=reprokit::")


def test_environment_differences_are_listed_in_the_baseline_testcase():
    diff = EnvironmentDifference("tensorflow", "2.20.0", "2.21.0")
    result = BaselineResult("b.json", True, False, (diff,), None, None, (), (), "agree within rtol 0.001")
    report = dataclasses.replace(recorded_report("none"), baseline=result)
    (case,) = ET.fromstring(junit(report, frozenset())).iter("testcase")
    assert "tensorflow: '2.20.0' in the baseline, '2.21.0' now" in case.find("system-out").text
    assert json.loads(report.to_json())["baseline"]["environment_differences"][0]["field"] == "tensorflow"


def test_several_formats_go_to_files_and_one_to_stdout(tmp_path):
    outputs = parse_outputs(["rich", f"junit={tmp_path / 'r.xml'}", "json=r.json"], None)
    assert outputs == [
        Output(Format.RICH, None),
        Output(Format.JUNIT, tmp_path / "r.xml"),
        Output(Format.JSON, tmp_path.__class__("r.json")),
    ]
    assert parse_outputs(["json"], tmp_path / "r.json") == [Output(Format.JSON, tmp_path / "r.json")]
    with pytest.raises(UsageError, match="only one --format can go to stdout"):
        parse_outputs(["rich", "json"], None)

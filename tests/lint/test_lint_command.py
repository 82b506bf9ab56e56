"""``reprokit lint`` on the command line: --list-rules, prefix selection, and bad rule codes (no training)."""

import json

import pytest
from typer.testing import CliRunner

from helpers import EXAMPLES, words
from reprokit.cli.app import app
from reprokit.lint.docs import rules_document
from reprokit.lint.rules import REGISTRY

PIPELINE = EXAMPLES / "nondeterministic_pipeline.py"


def lint(*args):
    return CliRunner().invoke(app, ["lint", *map(str, args)])


def test_list_rules_prints_every_rule_in_a_table_and_exits_0():
    result = lint("--list-rules")
    assert result.exit_code == 0, result.output
    text = words(result.stdout)
    for rule in REGISTRY:
        assert rule.code in text and rule.name in text, rule.code
    assert "name and message" in text and "GPU only" in text and "environment" in text


def test_list_rules_as_json_is_the_registry():
    result = lint("--list-rules", "--format", "json")
    assert result.exit_code == 0, result.output
    rules = json.loads(result.stdout)
    assert rules == rules_document(REGISTRY)
    assert [rule["code"] for rule in rules] == list(REGISTRY.codes)
    assert set(rules[0]) == {"code", "name", "family", "message", "fix", "rationale", "source", "gpu_only"}
    assert rules[0]["source"] == "uncontrolled" and rules[0]["gpu_only"] is False


def test_list_rules_lists_only_the_rules_select_and_ignore_choose():
    result = lint("--list-rules", "--format", "json", "--select", "RK2", "--ignore", "RK205")
    assert [rule["code"] for rule in json.loads(result.stdout)] == ["RK201", "RK202", "RK203", "RK204", "RK206"]


def test_select_and_ignore_take_prefixes():
    assert lint(PIPELINE, "--select", "RK1").exit_code == 1
    assert lint(PIPELINE, "--select", "RK10", "--ignore", "RK104").exit_code == 0
    assert lint(PIPELINE, "--ignore", "RK1").exit_code == 0


@pytest.mark.parametrize(
    "args",
    [
        (PIPELINE, "--select", "RK999"),
        (PIPELINE, "--ignore", "RK3"),
        ("--list-rules", "--select", "E501"),
    ],
)
def test_an_unknown_rule_code_exits_2_with_a_one_line_error(args):
    result = lint(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("reprokit: error: expected rule codes among RK101, ")
    assert line.endswith(f"received {args[-1]}")


def test_lint_needs_paths_unless_it_lists_the_rules():
    (line,) = lint().stderr.splitlines()
    assert lint().exit_code == 2 and "expected Python files or folders" in line
    with_paths = lint("--list-rules", PIPELINE)
    assert with_paths.exit_code == 2 and "expected no paths with --list-rules" in with_paths.stderr

"""The command line: options, exit codes and error messages (no training here)."""

import pytest
from typer.testing import CliRunner

from helpers import recorded_report, reprokit
from reprokit.cli.app import app, exit_code, main
from reprokit.core.version import __version__
from reprokit.core.vocabulary import fail_on_sources


def test_version_prints_the_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"reprokit {__version__}"


def test_check_help_documents_the_options():
    result = CliRunner().invoke(app, ["check", "--help"])
    assert result.exit_code == 0
    for option in ("--seed", "--quick", "--fail-on", "--format", "--output", "--timeout", "--epochs"):
        assert option in result.output


@pytest.mark.parametrize(
    ("fail_on", "kind", "expected"),
    [
        (["uncontrolled"], "seed", 0),
        (["uncontrolled"], "uncontrolled", 1),
        (["seed"], "seed", 1),
        (["nondeterministic-ops"], "seed", 0),
        (["nondeterministic-ops"], "ops", 1),
        (["seed", "nondeterministic-ops"], "ops", 1),
        (["any"], "none", 0),
        (["any"], "seed", 1),
        (["none"], "uncontrolled", 0),
    ],
)
def test_the_exit_code_follows_fail_on(fail_on, kind, expected):
    assert exit_code(recorded_report(kind), fail_on_sources(fail_on)) == expected


def test_a_missing_script_is_a_one_line_error_with_exit_code_2(capsys):
    assert main(["check", "no/such/train.py"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["reprokit: error: script not found: no/such/train.py"]


def test_a_directory_instead_of_a_script_is_exit_code_2(capsys, tmp_path):
    assert main(["check", str(tmp_path)]) == 2
    assert "expected the script to be a regular file, received a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["check", "x.py", "--seed", "abc"], "Invalid value for '--seed'"),
        (["check", "x.py", "--seed", "-1"], "Invalid value for '--seed'"),
        (["check", "x.py", "--fail-on", "everything"], "'everything' is not one of"),
        (["check", "x.py", "--format", "xml"], "expected a format among rich, json, junit, markdown"),
        (["check", "x.py", "-f", "json", "-f", "junit"], "only one --format can go to stdout"),
        (["check", "x.py", "--update-baseline"], "--update-baseline needs --baseline FILE"),
        (["check", "x.py", "--timeout", "0"], "Invalid value for '--timeout'"),
        (["check", "x.py", "--lr", "0.1"], "No such option: --lr"),
        (["check"], "Missing argument"),
    ],
)
def test_bad_options_get_one_line_and_exit_code_2(capsys, args, message):
    assert main(args) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("reprokit: error:") and message in lines[0]


def test_an_unknown_option_says_where_the_script_arguments_go(capsys):
    assert main(["check", "x.py", "--epochs-of-mine", "3"]) == 2
    assert "the script's own after --" in capsys.readouterr().err


def test_the_installed_command_reports_bad_input_without_a_traceback(tmp_path):
    result = reprokit("check", tmp_path / "missing.py")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stdout == ""

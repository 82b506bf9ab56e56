"""The shared run options of the commands: declared once, built into one RunSettings, handed down whole."""

from __future__ import annotations

import pytest

from reprokit.checking.runs import CheckOptions
from reprokit.cli import app as appcli
from reprokit.cli import study as studycli
from reprokit.cli.app import main
from reprokit.run.execution import Execution, Executor
from reprokit.run.settings import ModelFileOptions, RunSettings
from reprokit.study.running import StudyOptions


@pytest.fixture
def captured(monkeypatch):
    """What the commands would run with, instead of running it."""
    seen: list[object] = []

    def capture(options, *args, **kwargs):
        seen.append(options)
        raise SystemExit(0)

    monkeypatch.setattr(appcli, "_check_and_exit", capture)
    monkeypatch.setattr(appcli, "_write_baseline", capture)
    monkeypatch.setattr(studycli, "run_seeds", lambda target, options, *a, **k: capture(options))
    monkeypatch.setattr(studycli, "run_compare", lambda variants, options, *a, **k: capture(options))
    return seen


@pytest.mark.parametrize(
    "command",
    [["check", "x.py"], ["explain", "x.py"], ["baseline", "x.py"], ["seeds", "x.py"], ["compare", "a.py", "b.py"]],
)
def test_every_command_hands_its_run_options_down_as_one_settings(captured, command):
    options = ["--timeout", "9", "--epochs", "3", "--jobs", "2", "--executor", "ray", "--cpus-per-run", "0.5"]
    with pytest.raises(SystemExit):
        main([*command, *options])
    (given,) = captured
    assert isinstance(given, (CheckOptions, StudyOptions))
    assert given.settings == RunSettings(9.0, 2, ModelFileOptions(3, 32, True), Execution(Executor.RAY, None, 0.5, 0.0))


def test_a_command_without_run_options_gets_the_defaults(captured):
    with pytest.raises(SystemExit):
        main(["check", "x.py"])
    assert captured[0].settings == RunSettings()


@pytest.mark.parametrize("command", [["check", "x.py"], ["seeds", "x.py"], ["compare", "a.py", "b.py"]])
def test_bad_run_options_are_one_line_and_exit_code_2_in_every_command(captured, capsys, command):
    assert main([*command, "--ray-address", "10.0.0.1:6379"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["reprokit: error: --ray-address only apply with --executor ray"]
    assert captured == []

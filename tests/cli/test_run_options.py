"""The shared run options of the commands: declared once, built into one RunSettings, handed down whole."""

from __future__ import annotations

import pytest

from reprokit.checking.runs import CheckOptions
from reprokit.cli import app as appcli
from reprokit.cli import study as studycli
from reprokit.cli.app import main
from reprokit.core.backends import Backend
from reprokit.run.execution import Execution, Executor
from reprokit.run.settings import ModelFileOptions, RunSettings
from reprokit.study.running import StudyOptions


@pytest.fixture
def captured(monkeypatch):
    """What the commands would run with, instead of running it."""
    seen: list[object] = []
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")

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
    execution = Execution(Executor.RAY, None, 0.5, 0.0)
    assert given.settings == RunSettings(9.0, 2, ModelFileOptions(3, 32, True), execution, (Backend.TENSORFLOW,))


def test_a_command_without_run_options_gets_the_defaults(captured):
    with pytest.raises(SystemExit):
        main(["check", "x.py"])
    assert captured[0].settings == RunSettings(backends=(Backend.TENSORFLOW,))


@pytest.mark.parametrize("command", [["check", "x.py"], ["seeds", "x.py"], ["compare", "a.py", "b.py"]])
def test_the_backend_option_reaches_the_settings_and_overrides_keras_backend(captured, command):
    with pytest.raises(SystemExit):
        main([*command, "--backend", "jax"])
    assert captured[0].settings.backend is Backend.JAX


def test_without_the_option_the_backend_is_the_one_keras_would_use(captured, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    with pytest.raises(SystemExit):
        main(["check", "x.py"])
    assert captured[0].settings.backends == (Backend.TORCH,)


def test_compare_takes_several_backends_and_the_other_commands_refuse_them(captured, capsys):
    with pytest.raises(SystemExit):
        main(["compare", "x.py", "--backend", "tensorflow", "--backend", "jax"])
    assert captured[0].settings.backends == (Backend.TENSORFLOW, Backend.JAX)
    assert main(["check", "x.py", "--backend", "tensorflow", "--backend", "jax"]) == 2
    assert "only compare runs several backends" in capsys.readouterr().err


@pytest.mark.parametrize("named", ["numpy", "mxnet"])
def test_a_backend_that_cannot_train_is_a_one_line_usage_error(captured, capsys, named):
    assert main(["check", "x.py", "--backend", named]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("reprokit: error: expected a Keras backend among tensorflow, jax, torch")
    assert captured == []


@pytest.mark.parametrize("command", [["check", "x.py"], ["seeds", "x.py"], ["compare", "a.py", "b.py"]])
def test_bad_run_options_are_one_line_and_exit_code_2_in_every_command(captured, capsys, command):
    assert main([*command, "--ray-address", "10.0.0.1:6379"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["reprokit: error: --ray-address only apply with --executor ray"]
    assert captured == []

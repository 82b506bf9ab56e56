"""The run settings: built once where the options enter (the API here, the commands in tests/cli), passed down whole."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from reprokit.core.backends import Backend
from reprokit.core.controls import Controls, default_jobs
from reprokit.core.errors import UsageError
from reprokit.run.dispatch import jobs_for
from reprokit.run.execution import Execution, Executor
from reprokit.run.runner import Runner, Target
from reprokit.run.settings import ModelFileOptions, RunSettings
from reprokit.run.trace import RunSpec


def test_the_defaults_are_those_of_the_options():
    settings = RunSettings()
    assert settings.timeout is None and settings.jobs is None
    assert settings.model_file == ModelFileOptions(5, 32, explicit=False)
    assert settings.execution == Execution(Executor.LOCAL, None, 1.0, 0.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 3.0  # type: ignore[misc]


def test_model_file_options_say_whether_they_were_given():
    assert ModelFileOptions.given(None, None) == ModelFileOptions(5, 32, explicit=False)
    assert ModelFileOptions.given(3, None) == ModelFileOptions(3, 32, explicit=True)
    assert ModelFileOptions.given(None, 64) == ModelFileOptions(5, 64, explicit=True)


def test_the_api_keywords_build_the_same_settings_and_are_checked_as_they_enter(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    settings = RunSettings.of(timeout=9, jobs=2, epochs=3, executor="ray", cpus_per_run=0.5)
    execution = Execution(Executor.RAY, None, 0.5, 0.0)
    assert settings == RunSettings(9, 2, ModelFileOptions(3, 32), execution, (Backend.JAX,))
    assert RunSettings.of(backend=["torch", "tensorflow", "torch"]).backends == (Backend.TORCH, Backend.TENSORFLOW)
    with pytest.raises(UsageError, match=r"^--gpus-per-run only apply with --executor ray$"):
        RunSettings.of(gpus_per_run=1)
    with pytest.raises(UsageError, match=r"^expected executor local or ray, received 'slurm'$"):
        RunSettings.of(executor="slurm")


def test_jobs_are_the_given_number_else_what_this_machine_takes():
    assert jobs_for(RunSettings(jobs=3), 10) == 3
    assert jobs_for(RunSettings(), 10) == default_jobs(10)
    assert jobs_for(RunSettings(), 1) == 1


def test_the_runner_reads_the_settings_it_enforces(tmp_path):
    settings = RunSettings(timeout=7.5, model_file=ModelFileOptions(2, 16, explicit=True))
    runner = Runner(Target(Path("train.py")), tmp_path, None, settings)
    assert runner.settings is settings
    config = runner._config(RunSpec("controlled-1", "controlled", Controls(1234, True)), -1, None, "arrays.npz")
    assert (config.epochs, config.batch_size) == (2, 16)
    assert Runner(Target(Path("train.py")), tmp_path).settings == RunSettings()


def test_a_target_given_plain_python_values_holds_them_as_paths_and_tuples(tmp_path: Path) -> None:
    target = Target("train.py", ["--lr", 0.1], folder=str(tmp_path), env={"A": 1})  # type: ignore[arg-type]
    assert target.script == Path("train.py")
    assert target.args == ("--lr", "0.1")
    assert target.folder == tmp_path
    assert target.env == (("A", "1"),)
    assert target.label == "train.py"

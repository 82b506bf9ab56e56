"""The Keras backends: which one a command uses, and what each one's determinism profile sets."""

from __future__ import annotations

import json

import pytest

from reprokit.core.backends import Backend, default_backend, determinism_environment
from reprokit.core.controls import Controls, child_environment
from reprokit.core.errors import UsageError
from reprokit.run.environment import environment_differences, signature


def test_the_default_backend_is_keras_backend_then_keras_json_then_tensorflow(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "jax"}))
    assert default_backend({"KERAS_BACKEND": "torch", "KERAS_HOME": str(tmp_path)}) is Backend.TORCH
    assert default_backend({"KERAS_HOME": str(tmp_path)}) is Backend.JAX
    assert default_backend({"KERAS_HOME": str(tmp_path / "nothing")}) is Backend.TENSORFLOW
    assert Backend.parse("PyTorch") is Backend.TORCH


def test_a_default_backend_that_cannot_train_is_a_usage_error():
    with pytest.raises(UsageError, match="names the Keras backend 'numpy', which cannot train"):
        default_backend({"KERAS_BACKEND": "numpy"})


@pytest.mark.parametrize(
    ("backend", "on", "off"),
    [
        (Backend.TENSORFLOW, {"TF_DETERMINISTIC_OPS": "1"}, "TF_DETERMINISTIC_OPS"),
        (Backend.JAX, {"XLA_FLAGS": "--xla_cpu_foo --xla_gpu_deterministic_ops=true"}, "XLA_FLAGS"),
        (Backend.TORCH, {"CUBLAS_WORKSPACE_CONFIG": ":4096:8"}, None),
    ],
)
def test_each_backend_gets_its_own_determinism_switches_and_none_of_the_others(backend, on, off):
    base = {"TF_DETERMINISTIC_OPS": "1", "XLA_FLAGS": "--xla_cpu_foo --xla_gpu_deterministic_ops=true"}
    env = child_environment(Controls(7, True, backend), base)
    assert env["KERAS_BACKEND"] == backend.value and env["PYTHONHASHSEED"] == "7"
    assert {k: env[k] for k in on} == on
    if backend is not Backend.TENSORFLOW:
        assert "TF_DETERMINISTIC_OPS" not in env
    if backend is not Backend.JAX:
        assert env["XLA_FLAGS"] == "--xla_cpu_foo"  # the user's own flag is kept, reprokit's removed
    cleared = child_environment(Controls(7, False, backend), base)
    if off == "XLA_FLAGS":
        assert cleared["XLA_FLAGS"] == "--xla_cpu_foo"
    elif off is not None:
        assert off not in cleared


def test_xla_flags_of_no_one_are_removed_entirely():
    assert "XLA_FLAGS" not in determinism_environment(
        Backend.JAX, False, {"XLA_FLAGS": "--xla_gpu_deterministic_ops=true"}
    )


def test_runs_on_two_backends_are_never_compared_bitwise_but_the_determinism_flag_does_not_count():
    tf_run = {"backend": "tensorflow", "tensorflow": "2.21.0", "env": {}}
    jax_run = {"backend": "jax", "jax": "0.10.2", "env": {"XLA_FLAGS": "--xla_gpu_deterministic_ops=true"}}
    assert {"backend", "tensorflow", "jax"} <= set(environment_differences(tf_run, jax_run))
    plain_jax = {**jax_run, "env": {}}
    assert signature(jax_run) == signature(plain_jax)
    assert environment_differences(jax_run, {**jax_run, "prng_impl": "rbg"}) == ("prng_impl",)


def test_a_backend_that_is_not_installed_is_a_usage_error_with_the_command_that_installs_it(monkeypatch):
    import importlib.util

    from reprokit.core.backends import require_installed

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "torch" else real(name))
    with pytest.raises(UsageError, match=r'^the Keras backend torch is not installed here; .*reprokit\[torch\]"$'):
        require_installed(Backend.TORCH)
    assert require_installed(Backend.TENSORFLOW) is Backend.TENSORFLOW

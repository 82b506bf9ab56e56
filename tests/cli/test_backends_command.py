"""``reprokit backends``: which backend runs by default, and what op determinism sets on each."""

from __future__ import annotations

import json

from reprokit.cli.app import main


def test_the_json_names_every_backend_its_version_and_the_default_keras_would_use(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert main(["backends", "-f", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [b["backend"] for b in document] == ["tensorflow", "jax", "torch"]
    assert [b["default"] for b in document] == [False, True, False]
    jax = document[1]
    assert jax["version"] and jax["op_determinism"][0]["setting"] == "XLA_FLAGS=--xla_gpu_deterministic_ops=true"
    assert jax["op_explain"] is False and document[0]["op_explain"] is True


def test_the_table_says_what_each_switch_does(monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    monkeypatch.setenv("COLUMNS", "160")
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "torch.use_deterministic_algorithms(True)" in out and "(default)" in out


def test_a_bad_format_or_default_backend_is_a_one_line_usage_error(monkeypatch, capsys):
    assert main(["backends", "-f", "xml"]) == 2
    monkeypatch.setenv("KERAS_BACKEND", "numpy")
    assert main(["backends"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1] == (
        "reprokit: error: KERAS_BACKEND names the Keras backend 'numpy', which cannot train; "
        "pass --backend tensorflow, jax or torch"
    )

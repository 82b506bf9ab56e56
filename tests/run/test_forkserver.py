"""Runs forked from a pre-imported interpreter are bit-identical to fresh processes (the proof the fork server needs).

For each example of every shape (a ``fit`` script, a custom loop, a model file,
a tf.data pipeline, dropout with checkpoints, a keras-tuner search): a baseline
recorded by two fresh processes (``REPROKIT_FORK_SERVER=0``), then a check of
forked runs against it, step by step and variable by variable. The check's
controlled pair turns op determinism on after the fork (its server imported
without it, for the ops pair too): bit-identical to runs started with
``TF_DETERMINISTIC_OPS=1``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil

import pytest

from helpers import EXAMPLES, reprokit

pytestmark = pytest.mark.e2e

SHAPES = [  # seed_question.py: proven by tests/checking/test_baseline.py's round trip, which does the same
    "tuning.py",
    "custom_loop.py",
    "model_file.py",
    "nondeterministic_pipeline.py",
    "resume/dropout.py",
    pytest.param(
        "search/keras_tuner_search.py",
        marks=pytest.mark.skipif(importlib.util.find_spec("keras_tuner") is None, reason="keras-tuner not installed"),
    ),
]


@pytest.mark.parametrize("example", SHAPES)
def test_a_run_forked_from_a_fork_server_is_bit_identical_to_a_fresh_process(example, tmp_path):
    script = tmp_path / example.split("/")[-1]
    if "/" in example:  # with the helpers beside it
        shutil.copytree(EXAMPLES / example.rsplit("/", 1)[0], tmp_path, dirs_exist_ok=True)
    shutil.copy(EXAMPLES / example, script)
    lock = tmp_path / "fresh.lock.json"
    fresh = {**os.environ, "REPROKIT_FORK_SERVER": "0"}
    recorded = reprokit("baseline", script, "--max-steps", "30", "-o", lock, cwd=tmp_path, env=fresh)
    assert recorded.returncode == 0, recorded.stderr[-2000:]
    checked = reprokit("check", script, "--baseline", lock, "--quick", "--max-steps", "30", "-f", "json", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr[-2000:]
    report = json.loads(checked.stdout)
    assert report["environment"]["process"] == "forked"
    assert report["baseline"]["passed"] is True and report["baseline"]["bitwise"] is True

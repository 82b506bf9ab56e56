"""reprokit as a library: check(), the decorator, controlled(), each run for real."""

import subprocess
import sys
import textwrap

import pytest
import training_functions

import reprokit
from helpers import EXAMPLES, ROOT

pytestmark = pytest.mark.e2e


def test_check_runs_an_importable_function_with_its_arguments_in_fresh_processes():
    report = reprokit.check(training_functions.train, kwargs={"units": 3, "epochs": 2}, quick=True)
    assert report.verdict == "reproducible"
    assert report.script == "training_functions:train"
    assert [r.steps for r in report.runs] == [8, 8]  # 4 batches x 2 epochs: the arguments arrived
    assert [r.mode for r in report.runs] == ["function", "function"]
    reprokit.assert_reproducible(report)


def test_an_error_inside_the_function_surfaces_with_its_own_traceback():
    with pytest.raises(reprokit.ScriptFailedError) as caught:
        reprokit.check(training_functions.train_and_fail, args=("boom from the function",), quick=True)
    text = str(caught.value)
    assert "ValueError: boom from the function" in text
    assert "training_functions.py" in text and "in train_and_fail" in text


def test_verify_raises_not_reproducible_with_the_report_for_an_unseeded_generator():
    with pytest.raises(reprokit.NotReproducibleError) as caught:
        training_functions.train_with_noise.verify()
    report = caught.value.report
    assert report.finding("uncontrolled").detected is True
    assert report.runs[0].stopped_at_max_steps is True and report.runs[0].steps == 4
    with pytest.raises(AssertionError, match="uncontrolled") as failed:
        reprokit.assert_reproducible(report)
    assert "default_rng(3)" in str(failed.value)  # the message carries the fix


def test_a_function_defined_inside_another_cannot_be_checked():
    def local_training():
        pass

    with pytest.raises(reprokit.UsageError, match="expected a module-level function"):
        reprokit.check(local_training)


def test_the_decorator_example_trains_and_verifies_for_real():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "decorated_training.py")], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "accuracy after one training" in result.stdout
    assert "verified: reproducible (29 steps, seed 42)" in result.stdout


def test_reprokit_verify_makes_a_plain_call_verify_a_script_function_first(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import keras, numpy as np, reprokit

            @reprokit.reproducible(seed=5, max_steps=3)
            def train():
                x = np.random.default_rng().random((64, 4)).astype("float32")  # unseeded
                model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
                model.compile("sgd", "mse")
                model.fit(x, x[:, :1], batch_size=16, verbose=0)

            if __name__ == "__main__":
                train()
                print("trained")
            """
        )
    )
    plain = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, check=False)
    assert plain.returncode == 0 and "trained" in plain.stdout
    env = {**__import__("os").environ, "REPROKIT_VERIFY": "1"}
    verified = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=False)
    assert verified.returncode == 1
    assert "reprokit.checking.result.NotReproducibleError" in verified.stderr and "__main__:train" in verified.stderr
    assert "trained" not in verified.stdout


CONTROLLED_IN_A_FRESH_PROCESS = """
import random, warnings
import numpy as np
import tensorflow as tf
from tensorflow.python.framework import config as tf_config
import reprokit

random.seed(11)
np.random.seed(11)
expected = (random.random(), np.random.rand())
random.seed(11)
np.random.seed(11)
assert not tf_config.is_op_determinism_enabled()  # a fresh process: off
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with reprokit.controlled(seed=9) as settings:
        inside = float(tf.random.uniform(()))
print("restored", (random.random(), np.random.rand()) == expected)
with reprokit.controlled(seed=9, warn=False):
    print("same draw", float(tf.random.uniform(())) == inside)
print("warned", [str(w.message) for w in caught])
print("not restored", settings.not_restored)
"""


def test_controlled_restores_the_generators_and_says_what_it_cannot_undo():
    result = subprocess.run(
        [sys.executable, "-c", CONTROLLED_IN_A_FRESH_PROCESS], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    said = {line.split(" ", 1)[0]: line for line in result.stdout.splitlines()}
    assert said["restored"] == "restored True"
    assert said["same"] == "same draw True"
    assert "op determinism stays enabled (TensorFlow cannot switch it off reliably)" in said["warned"]
    assert "op determinism stays enabled" in said["not"]  # settings.not_restored

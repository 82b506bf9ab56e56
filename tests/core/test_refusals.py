"""The backends' refusals under op determinism are findings, not crashes."""

import textwrap

import pytest

from helpers import reprokit
from reprokit.core.refusals import recognize

# Exact texts measured on this machine (../shared/determinism-facts.md), and TF's GPU wording.
TEXTS = {
    "RuntimeError: Random ops require a seed to be set when determinism is enabled. Please set a seed "
    "before running the op, e.g. by calling tf.random.set_seed(1).": ("uncontrolled", None),
    "InvalidArgumentError: {{function_node __wrapped__RandomUniform_device_/job:localhost}} When determinism "
    "is enabled, random ops must have a seed specified. [Op:RandomUniform]": ("uncontrolled", "RandomUniform"),
    "FailedPreconditionError: Timestamp cannot be called when determinism is enabled [Op:Timestamp]": (
        "uncontrolled",
        "Timestamp",
    ),
    'RuntimeError: "from_non_deterministic_state" cannot be called when determinism is enabled.': (
        "uncontrolled",
        "tf.random.Generator.from_non_deterministic_state",
    ),
    'RuntimeError: "get_global_generator" cannot be called if determinism is enabled, unless '
    '"set_global_generator" has already been called.': ("uncontrolled", "tf.random.get_global_generator"),
    "ValueError: tf.image.sample_distorted_bounding_box requires a non-zero seed when determinism is enabled": (
        "uncontrolled",
        "sample_distorted_bounding_box",
    ),
    "UnimplementedError: A deterministic GPU implementation of SparseSoftmaxXentWithLogits is not currently "
    "available. [Op:SparseSoftmaxCrossEntropyWithLogits]": (
        "nondeterministic_ops",
        "SparseSoftmaxCrossEntropyWithLogits",
    ),
    # PyTorch's wording (torch.use_deterministic_algorithms(True), an op with no deterministic CUDA kernel)
    "RuntimeError: index_add_cuda_ does not have a deterministic implementation, but you set "
    "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this operation, or you "
    "can use the 'warn_only=True' option, if that's acceptable for your application.": (
        "nondeterministic_ops",
        "index_add_cuda_",
    ),
}


@pytest.mark.parametrize(("text", "expected"), TEXTS.items())
def test_each_known_refusal_is_recognized_with_its_source_and_op(text, expected):
    refusal = recognize(text, "/src/train.py", 12)
    assert (refusal.source, refusal.op) == expected
    assert refusal.where == "train.py:12"
    assert refusal.meaning and refusal.options


def test_an_ordinary_error_is_not_a_refusal():
    assert recognize("ValueError: shapes (3,) and (4,) not aligned") is None


@pytest.mark.e2e
def test_a_refused_generator_is_an_uncontrolled_finding_with_its_line_and_the_other_runs_still_compared(write_script):
    path = write_script(
        textwrap.dedent(
            """
            import keras
            import numpy as np
            import tensorflow as tf

            x = np.random.RandomState(0).rand(256, 8).astype("float32")
            y = (x.sum(axis=1) > 4).astype("int32")
            noise = tf.random.Generator.from_non_deterministic_state()
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x + noise.normal(x.shape) * 0.01, y, epochs=1, batch_size=64, verbose=0)
            """
        )
    )
    result = reprokit("check", path, "--format", "json")
    assert result.returncode == 1, result.stderr  # --fail-on uncontrolled (the default)
    doc = result.report
    assert doc["verdict"] == "not_reproducible"
    refusal = doc["determinism_refusal"]
    assert (refusal["source"], refusal["line"]) == ("uncontrolled", 8)
    assert refusal["op"] == "tf.random.Generator.from_non_deterministic_state"
    assert doc["sources"]["uncontrolled"]["detected"] is True
    assert "TensorFlow refused to run the script at train.py:8" in doc["sources"]["uncontrolled"]["evidence"]
    assert "from_seed(seed)" in doc["sources"]["uncontrolled"]["fix"]
    assert doc["sources"]["seed"]["detected"] is None
    assert [r["name"] for r in doc["runs"]] == ["ops-1", "ops-2"]  # the runs without op determinism still ran
    assert [c["name"] for c in doc["comparisons"]] == ["ops"]
    assert reprokit("check", path, "--quick", "--fail-on", "none").returncode == 0
    # No baseline can be written: the same exit code as the check's finding.
    baseline = reprokit("baseline", path, "--output", path.with_name("lock.json"))
    assert baseline.returncode == 1, baseline.stderr
    assert "no baseline was written: TensorFlow refused op determinism" in baseline.stderr
    assert not path.with_name("lock.json").exists()

"""reprokit explain on a computation divergence, and the explanation rule on recorded replays."""

import dataclasses
import textwrap

import pytest

from helpers import recorded_comparison, reprokit
from reprokit.checking.comparison import Divergence
from reprokit.checking.explain import explain_replay, explain_without_replay, nothing_to_explain
from reprokit.run.trace import PipelineCall

D = Divergence("sequential", 3, ("sequential/dense/kernel",), False)


def layer(name, kind, inputs, outputs, call=1):
    return {"layer": name, "class": kind, "call": call, "inputs": inputs, "outputs": outputs}


def test_the_first_layer_with_equal_inputs_and_different_outputs_is_named_with_its_op():
    a = {"layers": [layer("s/dense", "Dense", "x", "h"), layer("s/emb", "Embedding", "h", "e1")], "gradients": {}}
    b = {"layers": [layer("s/dense", "Dense", "x", "h"), layer("s/emb", "Embedding", "h", "e2")], "gradients": {}}
    e = explain_replay("ops", D, a, b)
    assert (e.kind, e.layer, e.layer_class, e.op) == ("forward", "s/emb", "Embedding", "ResourceGather")
    assert "received identical inputs in both runs but returned different outputs" in e.detail


def test_inputs_that_already_differ_point_between_layers():
    a = {"layers": [layer("s/a", "Dense", "x", "h1"), layer("s/b", "Dense", "h1", "o1")], "gradients": {}}
    b = {"layers": [layer("s/a", "Dense", "x", "h1"), layer("s/b", "Dense", "h2", "o2")], "gradients": {}}
    e = explain_replay("ops", D, a, b)
    assert e.layer == "s/b" and "between layers" in e.detail


def test_matching_forward_passes_lead_to_the_gradient_then_to_the_update():
    forward = [layer("s/dense", "Dense", "x", "h")]
    a = {"layers": forward, "gradients": {"sequential/dense/kernel": {"fingerprint": "g1", "sparse": False}}}
    b = {"layers": forward, "gradients": {"sequential/dense/kernel": {"fingerprint": "g2", "sparse": False}}}
    assert explain_replay("ops", D, a, b).kind == "backward"
    same = {"layers": forward, "gradients": {"sequential/dense/kernel": {"fingerprint": "g", "sparse": True}}}
    update = explain_replay("ops", D, same, same)
    assert (update.kind, update.op, update.variable) == ("update", "ResourceScatterAdd", "sequential/dense/kernel")


def test_input_pipeline_divergences_name_the_transformation_without_a_replay():
    d = Divergence("m", 1, ("m/dense/kernel",), True, "order")
    call = PipelineCall("Dataset.interleave(..., num_parallel_calls=8, deterministic=False)", "/x/train.py", 41)
    e = explain_without_replay("ops", d, [call])
    assert e.kind == "pipeline" and "train.py:41: Dataset.interleave" in e.detail
    assert explain_without_replay("ops", D, []) is None  # a computation divergence needs a replay


@pytest.mark.e2e
def test_explain_names_a_custom_layer_that_draws_from_an_unseeded_generator(write_script):
    path = write_script(
        textwrap.dedent(
            """
            import keras
            import numpy as np
            import tensorflow as tf

            rng = np.random.default_rng()


            class Jitter(keras.layers.Layer):
                def call(self, inputs):
                    jitter = lambda t: t + rng.normal(0, 1e-3, t.shape).astype("float32")  # noqa: E731
                    noisy = tf.py_function(jitter, [inputs], tf.float32)
                    noisy.set_shape(inputs.shape)
                    return noisy


            x = np.random.RandomState(0).rand(256, 8).astype("float32")
            y = (x.sum(axis=1) > 4).astype("int32")
            layers = [keras.Input((8,)), keras.layers.Dense(16), Jitter(name="jitter"), keras.layers.Dense(2)]
            model = keras.Sequential(layers)
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, epochs=1, batch_size=64, verbose=0)
            """
        )
    )
    result = reprokit("check", path, "--quick", "--explain", "--format", "json")
    assert result.returncode == 1, result.stderr
    doc = result.report
    assert doc["comparisons"][0]["first_divergence_stage"] == "computation"
    explanation = doc["explanation"]
    assert (explanation["pair"], explanation["step"], explanation["kind"]) == ("controlled", 1, "forward")
    assert (explanation["layer"], explanation["layer_class"]) == ("sequential/jitter", "Jitter")


def test_when_only_the_seed_pair_differs_explain_says_there_is_nothing_to_explain_and_why():
    same = dataclasses.replace(recorded_comparison("controlled-1", "controlled-2"), name="controlled")
    seed = dataclasses.replace(recorded_comparison("controlled-1", "seed-1"), name="seed")
    e = nothing_to_explain([same, dataclasses.replace(same, name="ops"), seed])
    assert (e.kind, e.pair, e.step, e.stage) == ("nothing to explain", "seed", 0, "initialization")
    assert "bit-identical with and without op determinism; only the seed changes the result" in e.detail
    assert "that is expected" in e.detail
    quick = nothing_to_explain([same])
    assert quick.kind == "nothing to explain" and "--quick" in quick.detail
    assert nothing_to_explain([]) is None


XLA_AND_A_PARALLEL_RANDOM_MAP = """
import keras
import numpy as np
import tensorflow as tf

x = np.random.RandomState(0).rand(512, 8).astype("float32")
y = (x.sum(axis=1) > 4).astype("int32")


def noisy(features, label):
    return features + tf.random.normal(tf.shape(features), stddev=0.1), label


dataset = tf.data.Dataset.from_tensor_slices((x, y)).map(noisy, num_parallel_calls=4).batch(32)
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
model.fit(dataset, epochs=1, verbose=0)
"""


@pytest.mark.e2e
def test_a_parallel_map_drawing_random_numbers_under_xla_is_named_and_proven_by_a_sequential_replay(write_script):
    path = write_script(XLA_AND_A_PARALLEL_RANDOM_MAP)
    result = reprokit("check", path, "--explain", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = result.report
    ops = doc["sources"]["nondeterministic_ops"]
    assert ops["detected"] is True
    assert "Stage: unknown: the steps are XLA-compiled (jit_compile=True)" in ops["evidence"]
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if ".map(noisy" in text)
    assert (
        f"Likely cause: train.py:{line}: map(..., num_parallel_calls=...) runs a function that draws"
        in (ops["evidence"])
    )
    (call,) = doc["pipeline"]
    assert (call["line"], call["random"]) == (line, True)
    assert "Dataset.map(noisy, num_parallel_calls=4) draws random numbers" in call["call"]
    explanation = doc["explanation"]
    assert (explanation["pair"], explanation["kind"]) == ("ops", "pipeline")
    assert "replayed with every Dataset.map sequential, two runs stay bit-identical" in explanation["detail"]

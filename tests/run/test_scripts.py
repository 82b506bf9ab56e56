"""Real scripts of every shape, each trained for real in fresh processes (quick checks)."""

import json
import textwrap

import numpy as np
import pytest

from helpers import EXAMPLES, reprokit

pytestmark = pytest.mark.e2e

DATA = """
import numpy as np
x = np.random.RandomState(0).rand(256, 8).astype("float32")
y = (x.sum(axis=1) > 4).astype("int32")
"""


def script(body: str) -> str:
    return "import keras\nimport tensorflow as tf\n" + DATA + textwrap.dedent(body)


def test_the_scripts_own_arguments_are_passed_after_the_double_dash(write_script):
    path = write_script(
        script(
            """
            import argparse
            if __name__ == "__main__":
                parser = argparse.ArgumentParser()
                parser.add_argument("--units", type=int, required=True)
                parser.add_argument("--epochs", type=int, required=True)
                args = parser.parse_args()
                assert (args.units, args.epochs) == (7, 2), args
                layers = [keras.Input((8,)), keras.layers.Dense(args.units), keras.layers.Dense(2)]
                model = keras.Sequential(layers)
                model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
                model.fit(x, y, epochs=args.epochs, batch_size=64, verbose=0)
            """
        )
    )
    args = ("--quick", "--jobs", "2", "--format", "json", "--", "--units", "7", "--epochs", "2")
    result = reprokit("check", path, *args)
    assert result.returncode == 0, result.stderr
    doc = result.report
    assert doc["script_args"] == ["--units", "7", "--epochs", "2"]
    assert [r["steps"] for r in doc["runs"]] == [8, 8]  # 4 batches x 2 epochs: the arguments arrived
    assert doc["comparisons"][0]["identical"] is True  # two runs at once change nothing


def test_a_training_that_diverges_to_nan_identically_is_reproducible(write_script):
    path = write_script(
        script(
            """
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(4), keras.layers.Dense(1)])
            model.compile(keras.optimizers.SGD(1e30), "mse")
            history = model.fit(x, y * 1e20, epochs=2, batch_size=32, verbose=0)
            assert np.isnan(history.history["loss"][-1])
            assert np.isnan(model.layers[0].get_weights()[0]).any()
            """
        )
    )
    result = reprokit("check", path, "--quick", "--format", "json")
    assert result.returncode == 0, result.stderr
    controlled = result.report["comparisons"][0]
    assert controlled["identical"] is True
    assert controlled["final_losses"] == [None, None]  # NaN is not JSON: null
    assert result.report["verdict"] == "reproducible"


def test_a_model_file_is_trained_by_reprokit_and_the_report_goes_to_the_named_file(tmp_path):
    out = tmp_path / "report.json"
    result = reprokit("check", EXAMPLES / "model_file.py", "--quick", "--epochs", "1", "-f", "json", "-o", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    doc = json.loads(out.read_text())
    run = doc["runs"][0]
    assert run["mode"] == "model-file"
    assert run["steps"] == 57  # 1797 digits / batch size 32, one epoch
    assert any("Model file" in note for note in doc["notes"])
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left over


def test_subclassed_train_step_eager_loops_and_several_models_are_each_tracked(write_script):
    path = write_script(
        script(
            """
            class Custom(keras.Model):
                def __init__(self):
                    super().__init__(name="custom")
                    self.dense = keras.layers.Dense(2)

                def call(self, inputs):
                    return self.dense(inputs)

                def train_step(self, data):
                    xb, yb = data
                    with tf.GradientTape() as tape:
                        loss = self.compute_loss(x=xb, y=yb, y_pred=self(xb, training=True))
                    grads = tape.gradient(loss, self.trainable_variables)
                    self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
                    return {"loss": loss}

            custom = Custom()
            custom.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            custom.fit(x, y, epochs=1, batch_size=64, verbose=0)  # 4 steps

            eager = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="eager")
            optimizer = keras.optimizers.SGD(0.1)
            for start in range(0, 256, 32):  # 8 eager steps, no tf.function
                with tf.GradientTape() as tape:
                    logits = eager(x[start:start + 32], training=True)
                    loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                        y[start:start + 32], logits, from_logits=True))
                grads = tape.gradient(loss, eager.trainable_variables)
                optimizer.apply(grads, eager.trainable_variables)

            packed = keras.Sequential([keras.Input((8,)), keras.layers.Dense(1)], name="packed")
            packed.compile("sgd", "mse", steps_per_execution=2)
            # 8 steps, seen 2 at a time
            packed.fit(x, y.astype("float32"), epochs=1, batch_size=32, verbose=0)
            """
        )
    )
    result = reprokit("check", path, "--quick", "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = result.report
    assert doc["runs"][0]["models"] == ["custom", "eager", "packed"]
    assert doc["runs"][0]["steps"] == 4 + 8 + 8
    assert doc["comparisons"][0]["identical"] is True


def test_a_script_that_pins_its_own_seed_and_determinism_is_named_and_both_pairs_are_identical(write_script):
    path = write_script(
        script(
            """
            keras.utils.set_random_seed(0)
            tf.config.experimental.enable_op_determinism()
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(x, y, epochs=1, batch_size=64, verbose=0)
            """
        )
    )
    result = reprokit("check", path, "--format", "json", "--fail-on", "any")
    assert result.returncode == 0, result.stderr
    doc = result.report
    assert doc["sources"]["seed"]["detected"] is False
    assert "train.py:8 keras.utils.set_random_seed(0)" in doc["sources"]["seed"]["evidence"]
    assert doc["script_pins"][0]["line"] == 8
    ops = doc["sources"]["nondeterministic_ops"]
    assert ops["detected"] is False
    assert (
        "enables op determinism itself (train.py:9 tf.config.experimental.enable_op_determinism())" in ops["evidence"]
    )
    assert [r["op_determinism_observed"] for r in doc["runs"]] == [True] * 5
    assert any("ops-1, ops-2" in note for note in doc["notes"])
    assert doc["runs"][0]["history"]["sequential"]["loss"][0] > 0


def test_a_known_race_that_does_not_show_is_checked_with_more_runs_and_reported_as_not_observed(write_script):
    path = write_script(
        script(
            """
            options = tf.data.Options()
            options.deterministic = False  # gives up order, but nothing here runs in parallel
            dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(64).with_options(options)
            model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
            model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            model.fit(dataset, epochs=1, verbose=0)
            """
        )
    )
    result = reprokit("check", path, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = result.report
    ops = doc["sources"]["nondeterministic_ops"]
    assert (ops["status"], ops["detected"], ops["runs"]) == ("not_observed", False, 4)
    assert ops["evidence"].startswith("Not observed in 4 runs with the same seed and default ops")
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "with_options" in text)
    assert f"train.py:{line}: Dataset.with_options(options with deterministic=False)" in ops["evidence"]
    assert "enable_op_determinism()" in ops["fix"]
    assert [r["name"] for r in doc["runs"]] == [
        "controlled-1",
        "controlled-2",
        "ops-1",
        "ops-2",
        "seed-1",
        "ops-3",
        "ops-4",
    ]
    assert doc["sources"]["uncontrolled"]["runs"] == 2


RESUMES = """
import os
import keras
import numpy as np

x = np.load("data/x.npy")  # relative to the current folder: still found
y = (x.sum(axis=1) > 4).astype("int32")
model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
if os.path.exists("ckpt.weights.h5"):  # resume where the last training stopped
    model.load_weights("ckpt.weights.h5")
callbacks = [
    keras.callbacks.ModelCheckpoint("ckpt.weights.h5", save_weights_only=True),
    keras.callbacks.CSVLogger("log.csv"),
]
model.fit(x, y, epochs=2, batch_size=64, verbose=0, callbacks=callbacks)
"""


def test_runs_never_see_each_others_files_and_a_script_that_reads_back_its_own_is_named(tmp_path):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "x.npy", np.random.RandomState(0).rand(256, 8).astype("float32"))
    (tmp_path / "train.py").write_text(RESUMES)
    result = reprokit("check", "train.py", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "train.py"]  # nothing left behind
    assert [p.name for p in (tmp_path / "data").iterdir()] == ["x.npy"]
    doc = result.report
    assert doc["comparisons"][0]["identical"] is True  # each run started from the same, clean folder
    files = doc["sources"]["written_files"]
    assert files["detected"] is True
    assert "A second training in the folder the first wrote to (ckpt.weights.h5, log.csv) differs" in files["evidence"]
    assert {tuple(r["files_written"]) for r in doc["runs"]} == {("ckpt.weights.h5", "log.csv")}
    assert [r["name"] for r in doc["runs"]][-1] == "files-1"
    assert any("private working folder" in note for note in doc["notes"])

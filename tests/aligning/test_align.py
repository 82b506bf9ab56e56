"""``reprokit align`` through the CLI, on tiny models trained for real in a fresh process."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import page_verdict, plots, rendered, reprokit, words

pytestmark = pytest.mark.e2e

TRAIN = """
import keras, numpy as np
from sklearn.datasets import load_digits

digits = load_digits()
x = (digits.data / 16).astype("float32")
y = keras.utils.to_categorical(digits.target, 10)
np.savez("digits.npz", x=x, y=y)
for seed in (1, 2):  # the seed question's network, twice
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(30, activation="sigmoid"),
                              keras.layers.Dense(10, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.SGD(3.0), loss="mean_squared_error")
    model.fit(x, y, epochs=2, batch_size=10, verbose=0)
    model.save(f"mlp{seed}.keras")
for seed in (1, 2):  # a residual connection
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((64,))
    h = keras.layers.Dense(16, activation="relu")(inputs)
    h2 = keras.layers.Dense(16, activation="relu")(h)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Add()([h, h2]))
    model = keras.Model(inputs, out)
    model.compile("adam", "categorical_crossentropy")
    model.fit(x, y, epochs=1, verbose=0)
    model.save(f"residual{seed}.keras")
"""


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("align")
    subprocess.run([sys.executable, "-c", TRAIN], cwd=folder, check=True, capture_output=True, timeout=300)
    return folder


def test_two_seeds_differ_less_once_their_hidden_units_are_matched_and_the_permutation_is_verified(models):
    done = reprokit("align", "mlp1.keras", "mlp2.keras", "--data", "digits.npz", "-f", "json", cwd=models)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["verification_max_output_difference"] <= 1e-5  # matched B computes what B computes
    assert 0 < doc["relative_l2_after"] < doc["relative_l2_before"]
    assert doc["mean_cka"] > doc["mean_cka_untrained"] + 0.1
    assert doc["rows"] == 1797 and doc["warnings"] == []
    barrier = doc["loss_barrier"]
    assert len(barrier["losses"]) == 11 and barrier["height"] == pytest.approx(
        max(
            v - ((1 - i / 10) * barrier["losses"][0] + i / 10 * barrier["losses"][-1])
            for i, v in enumerate(barrier["losses"])
        )
    )
    hidden = doc["layers"][0]
    assert hidden["aligned"] and hidden["units"] == 30 and hidden["after"] < hidden["before"]
    args = ("align", "mlp1.keras", "mlp2.keras", "--data", "digits.npz", "-f", "json", "-o", "a.json")
    again = reprokit(*args, "-f", "html=align.html", cwd=models)
    assert again.returncode == 0 and again.stdout == ""
    assert json.loads((models / "a.json").read_text()) == doc  # the same models give the same figures
    page = rendered(models / "align.html", models)  # the same figures, as a page, in the browser
    assert page_verdict(page).startswith("the order of the units explains ")
    assert plots(page) == {
        "align-distance": "Distance per layer, before and after matching units",
        "align-cka": "Representation similarity per layer (linear CKA)",
        "align-barrier": "Loss along the straight path from A to matched B",
    }


def test_a_residual_connection_is_refused_per_layer_and_still_gets_the_functional_measures(models):
    formats = ["-f", "rich", "-f", f"json={models / 'residual.json'}"]
    done = reprokit("align", "residual1.keras", "residual2.keras", "--data", "digits.npz", *formats, cwd=models)
    assert done.returncode == 0, done.stderr
    text = words(done.stdout)
    assert "Why are the weights different?" in text and "no hidden layer could be aligned" in text
    assert "its units feed add (Add)" in text
    doc = json.loads((models / "residual.json").read_text())
    refused = [layer for layer in doc["layers"] if layer["kind"] == "Dense" and "Add" in (layer["note"] or "")]
    assert len(refused) == 2 and all(layer["cka"] is not None for layer in refused)
    assert doc["explained_by_order"] is None and doc["prediction_agreement"] is not None


def test_align_without_data_warns_that_random_inputs_say_little(models):
    done = reprokit("align", "mlp1.keras", "mlp2.keras", "-f", "json", cwd=models)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 256 and json.loads(done.stdout)["loss_barrier"] is None
    assert "random inputs" in done.stderr


def test_bad_input_to_align_is_one_line_with_exit_code_2(models):
    other = reprokit("align", "mlp1.keras", "residual1.keras", cwd=models)
    assert (other.returncode, other.stdout) == (2, "")
    assert other.stderr.strip().splitlines() == [
        "reprokit: error: the two models have different architectures: align needs two trainings of one network"
    ]
    missing = reprokit("align", "mlp1.keras", "nowhere.keras", cwd=models)
    assert missing.returncode == 2 and "no such model file: nowhere.keras" in missing.stderr
    csv = reprokit("align", "mlp1.keras", "mlp2.keras", "--data", "mlp1.keras", cwd=models)
    assert csv.returncode == 2 and "expected --data as .npz" in csv.stderr
    assert "Traceback" not in missing.stderr + other.stderr + csv.stderr

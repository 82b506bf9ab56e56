"""A check fingerprints weights at sampled steps; a divergence between two samples is located by a replay."""

import json

import pytest

from helpers import reprokit, words

pytestmark = pytest.mark.e2e

NUDGED = """
import keras, numpy as np
from sklearn.datasets import load_digits

digits = load_digits()
x, y = (digits.data[:640] / 16.0).astype("float32"), digits.target[:640]
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))


class Nudge(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.model.optimizer.iterations.numpy() == 40:  # after step 40, from a generator no seed reaches
            kernel = self.model.layers[0].kernel
            kernel.assign(kernel.numpy() + np.random.default_rng().normal(0, 1e-3, kernel.shape).astype("float32"))


model.fit(x, y, batch_size=32, epochs=4, shuffle=False, verbose=0, callbacks=[Nudge()])
"""


def test_a_divergence_between_two_sampled_steps_is_located_by_a_replay_at_its_exact_step(write_script):
    script = write_script(NUDGED)
    result = reprokit("check", script, "--quick", "-f", "rich", "-f", f"json={script.parent / 'report.json'}")
    assert result.returncode == 1, result.stderr[-2000:]
    doc = json.loads((script.parent / "report.json").read_text())
    (controlled,) = (c for c in doc["comparisons"] if c["name"] == "controlled")
    # the runs fingerprinted their weights after steps 32 and 64 (equal, then different); the replay
    # fingerprinted every step: the weights after step 40 were digested before the callback nudged them, and
    # step 41 trained every variable from the nudged kernel
    assert controlled["first_divergent_step"] == 41 and controlled["first_divergence_located"] is True
    assert controlled["first_divergence_after"] is None
    layers = ("dense", "dense_1")
    assert controlled["first_divergent_variables"] == [
        f"sequential/{n}/{v}" for n in layers for v in ("bias", "kernel")
    ]
    assert "located by a replay" in words(result.stdout)

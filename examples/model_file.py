"""A model file: no training code, just ``build_model()`` and ``load_data()``.

reprokit trains it itself (``--epochs``, default 5; ``--batch-size``,
default 32) with ``model.fit(x, y)``.

What reprokit reports (``reprokit check examples/model_file.py --epochs 2``):
    verdict reproducible; seed-driven: detected; nondeterministic ops and
    uncontrolled: not detected. Exit code 0.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits


def build_model() -> keras.Model:
    model = keras.Sequential(
        [keras.Input(shape=(64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def load_data() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / 16.0).astype("float32"), digits.target

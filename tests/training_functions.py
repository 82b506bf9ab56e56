"""Training functions in an importable module, for the library tests (not collected as tests)."""

import keras
import numpy as np

import reprokit

X = np.random.RandomState(0).rand(128, 8).astype("float32")
Y = (X.sum(axis=1) > 4).astype("int32")


def _model(units: int) -> keras.Model:
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(units), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train(units: int = 4, epochs: int = 1) -> keras.Model:
    model = _model(units)
    model.fit(X, Y, epochs=epochs, batch_size=32, verbose=0)
    return model


@reprokit.reproducible(seed=3, max_steps=4)
def train_with_noise() -> keras.Model:
    noisy = X + np.random.default_rng().normal(0, 0.1, X.shape).astype("float32")  # unseeded
    model = _model(4)
    model.fit(noisy, Y, epochs=1, batch_size=32, verbose=0)
    return model


def train_and_fail(message: str) -> None:
    raise ValueError(message)

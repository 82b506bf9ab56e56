"""A JAX random key made from the clock: uncontrolled randomness.

JAX's random numbers are functional: every draw takes a key, and a key made
from ``int(time.time())`` differs from run to run whatever Keras seeds (reprokit
starts the two controlled runs 3 s apart, so that whole seconds differ too).
Here it draws the Gaussian noise added to the training images. It needs JAX
installed; Keras may train on JAX or TensorFlow (the same mistake in
TensorFlow code is ``tf.random.Generator.from_non_deterministic_state()``).

What reprokit reports (``reprokit check examples/jax_clock_key.py --backend jax``,
and the same with ``--backend tensorflow``):
    verdict not reproducible; uncontrolled: detected (two runs with every seed
    fixed and op determinism on differ from the first step: stage input
    pipeline, other values; lint RK103 names the line); seed-driven: detected
    too. Exit code 1. The fix: ``jax.random.key(seed)`` with a fixed seed.
"""

import time

import jax
import keras
import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    key = jax.random.key(int(time.time()))  # the clock: another key in every second
    x = x + 0.05 * np.asarray(jax.random.normal(key, x.shape), dtype="float32")
    model = keras.Sequential(
        [keras.Input(shape=(64,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, digits.target, epochs=2, batch_size=64, verbose=0)


if __name__ == "__main__":
    main()

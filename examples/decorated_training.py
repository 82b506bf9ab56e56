"""reprokit as a library: a decorated training function, verified in fresh processes.

``@reprokit.reproducible(seed=42)`` makes every call of ``train`` run with
every seed fixed and op determinism on, and returns its result unchanged.
``train.verify(...)`` trains it in fresh processes and raises
``reprokit.NotReproducibleError`` if the runs differ; so does any call when
the environment variable ``REPROKIT_VERIFY=1`` is set, so a CI job can verify
every decorated function without changing the code.

What ``python examples/decorated_training.py`` prints: the accuracy of one
training, then "verified: reproducible" (two fresh-process trainings with
seed 42 were bit-identical). Exit code 0.
"""

import keras
import numpy as np
from sklearn.datasets import load_digits

import reprokit


@reprokit.reproducible(seed=42, max_steps=40)
def train(epochs: int = 2, units: int = 32) -> keras.Model:
    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    model = keras.Sequential(
        [keras.Input(shape=(64,)), keras.layers.Dense(units, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, digits.target, epochs=epochs, batch_size=64, verbose=0)
    return model


if __name__ == "__main__":
    model = train(epochs=5)
    digits = load_digits()
    predictions = np.argmax(model.predict((digits.data / 16.0).astype("float32"), verbose=0), axis=1)
    print(f"accuracy after one training: {np.mean(predictions == digits.target):.3f}")
    report = train.verify(epochs=1, units=16)
    print(f"verified: {report.verdict.replace('_', ' ')} ({report.runs[0].steps} steps, seed {report.seed})")

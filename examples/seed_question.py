"""The classic question: "I trained the same network twice and got different weights."

A [64, 30, 10] network with sigmoid units, the quadratic cost and plain SGD
(the network of the well-known MNIST question, on scikit-learn's bundled 8x8
digits so nothing is downloaded). Two trainings give different weight
matrices; is that a bug?

What reprokit reports (``reprokit check examples/seed_question.py``):
    verdict reproducible; seed-driven: detected (the runs with different seeds
    differ from the initial weights on: stage initialization); nondeterministic ops: not detected;
    uncontrolled: not detected. Exit code 0. The fix is one line:
    ``keras.utils.set_random_seed(...)`` at the top of the script.

Why the weights differ (``reprokit align``, on two trainings saved with
``--seed 1 --save-model a.keras --save-data digits.npz`` and ``--seed 2
--save-model b.keras``): about half of the squared distance is the order of
the 30 hidden units; the rest is another solution, whose hidden layer
represents the digits nearly the same way (linear CKA ~0.98, against ~0.7
for two untrained networks).
"""

import argparse

import keras
import numpy as np
from sklearn.datasets import load_digits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3.0)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--seed", type=int, help="seed everything first (by default nothing is seeded)")
    parser.add_argument("--save-model", help="save the trained model here (.keras), e.g. for reprokit align")
    parser.add_argument("--save-data", help="save the data here (.npz with x and y), e.g. for reprokit align")
    args = parser.parse_args()
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = keras.utils.to_categorical(digits.target, 10)

    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(30, activation="sigmoid"),
            keras.layers.Dense(10, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(learning_rate=args.lr),
        loss="mean_squared_error",
        metrics=["accuracy"],
    )
    history = model.fit(x, y, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    accuracy = history.history["accuracy"][-1]
    weights = model.layers[0].get_weights()[0]
    print(f"training accuracy {accuracy:.3f}; first weights {np.round(weights[0, :3], 4)}")
    if args.save_model:
        model.save(args.save_model)
    if args.save_data:
        np.savez(args.save_data, x=x, y=y)


if __name__ == "__main__":
    main()

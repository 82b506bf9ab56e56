"""The tuning question: "my results change with the seed — is my change real, or a new seed?"

A [64, HIDDEN, 10] network on scikit-learn's bundled digits (nothing is
downloaded), trained with Adam on a fixed 75/25 split and scored on the held
-out quarter with ``model.evaluate`` — the number people report. Change
``--hidden`` or ``--lr`` and ask reprokit whether the test accuracy moved
beyond what another seed would give anyway:

    reprokit seeds examples/tuning.py
    reprokit compare "examples/tuning.py --hidden 32" "examples/tuning.py --hidden 8"
    reprokit compare "examples/tuning.py --hidden 32" "examples/tuning.py --hidden 32 --lr 0.011"
    reprokit tune examples/tuning.py --grid hidden=32,8 --grid lr=0.01,0.011,3.0 --seeds 8

What reprokit reports: the seed pins the script (the repeated seed is
bit-identical); 8 hidden units are worse than 32 beyond seed noise; a learning
rate of 0.011 instead of 0.01 is within seed noise (with the smallest
difference the study could have detected), and 3.0 is worse, settled at the
first look of ``--seeds auto``. Tuned over the grid, 32 hidden units with a
learning rate of 0.01 or 0.011 lead, statistically tied.
"""

import argparse

import keras
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_test, y_train, y_test = train_test_split(x, digits.target, test_size=0.25, random_state=0)

    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(args.hidden, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=args.lr),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy {accuracy:.4f}, test loss {loss:.4f}")


if __name__ == "__main__":
    main()

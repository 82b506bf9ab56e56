"""A keras-tuner random search on digits: is the search itself reproducible?

The script runs its own hyperparameter search, as many do: keras-tuner's
``RandomSearch`` tries ``--trials`` settings of the hidden units and the
learning rate of a [64, units, 10] network on scikit-learn's bundled digits
(nothing is downloaded), one epoch each, and prints the best. reprokit runs
it unchanged and, beside comparing every model trained, compares the
searches: the same trials (hyperparameters, scores, order) and the same best
hyperparameters?

    reprokit check examples/search/keras_tuner_search.py --quick
    reprokit check examples/search/keras_tuner_search.py            # also: does the seed change the choice?

What reprokit reports (``--quick``): verdict reproducible, exit code 0; the
search is reproducible: the same 2 trials and the same best hyperparameters
in both controlled runs (JSON: ``"search": {"reproducible": true, ...}``).
The tuner takes no seed of its own here: keras-tuner then draws one from
Python's ``random``, which reprokit seeds in every run. Without ``--quick``,
the seed pair (seed S + 1) answers whether another seed chooses other
hyperparameters. To reproduce the search outside reprokit, seed everything
once at the top (``--seed``: ``keras.utils.set_random_seed``) or pass
``seed=`` to the tuner.
"""

import argparse

import keras
import keras_tuner
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def build(hp: keras_tuner.HyperParameters) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input(shape=(64,)),
            keras.layers.Dense(hp.Choice("units", [8, 16, 32]), activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    learning_rate = hp.Float("learning_rate", 1e-3, 1e-1, sampling="log")
    model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None, help="seed everything (off: reprokit seeds each run)")
    args = parser.parse_args()
    if args.seed is not None:
        keras.utils.set_random_seed(args.seed)

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(x, digits.target, test_size=0.25, random_state=0)

    tuner = keras_tuner.RandomSearch(
        build,
        objective="val_accuracy",
        max_trials=args.trials,
        directory="tuner",  # reprokit runs each training in a private folder: the runs never share it
        project_name="digits",
        overwrite=True,
    )
    tuner.search(x_train, y_train, epochs=args.epochs, validation_data=(x_val, y_val), verbose=0)
    print("best hyperparameters:", tuner.get_best_hyperparameters(1)[0].values)


if __name__ == "__main__":
    main()

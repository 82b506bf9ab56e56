"""An Optuna study that trains a small Keras model per trial: is the study reproducible?

Each trial trains a [64, units, 10] network on scikit-learn's bundled digits
(nothing is downloaded) for one epoch with the units and learning rate the
sampler suggests, and returns its validation accuracy; the study maximizes
it over ``--trials`` trials.

    reprokit check examples/search/optuna_search.py --quick
    reprokit check examples/search/optuna_search.py --quick -- --unseeded

What reprokit reports (``--quick``): verdict reproducible, exit code 0; the
study is reproducible: the same 2 trials and the same best hyperparameters in
both controlled runs. With ``--unseeded`` the sampler gets no seed, as
``optuna.create_study()`` does by default: Optuna's samplers then draw from
fresh OS entropy, which no global seed reaches, so every run tries other
hyperparameters. reprokit reports the search not reproducible (trial 1
differs, with both runs' hyperparameters), and the models trained differ
too: verdict not reproducible, exit code 1. The fix: give the sampler a
seed, ``optuna.samplers.TPESampler(seed=...)``.
"""

import argparse

import keras
import optuna
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--sampler-seed", type=int, default=0)
    parser.add_argument("--unseeded", action="store_true", help="no sampler seed: Optuna's default")
    args = parser.parse_args()

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    x_train, x_val, y_train, y_val = train_test_split(x, digits.target, test_size=0.25, random_state=0)

    def objective(trial: optuna.Trial) -> float:
        model = keras.Sequential(
            [
                keras.Input(shape=(64,)),
                keras.layers.Dense(trial.suggest_categorical("units", [8, 16, 32]), activation="relu"),
                keras.layers.Dense(10, activation="softmax"),
            ]
        )
        learning_rate = trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True)
        model.compile(keras.optimizers.Adam(learning_rate), "sparse_categorical_crossentropy", metrics=["accuracy"])
        model.fit(x_train, y_train, epochs=args.epochs, batch_size=32, verbose=0)
        return float(model.evaluate(x_val, y_val, verbose=0)[1])

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=None if args.unseeded else args.sampler_seed)
    study = optuna.create_study(study_name="digits", direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=args.trials)
    print("best hyperparameters:", study.best_params)


if __name__ == "__main__":
    main()

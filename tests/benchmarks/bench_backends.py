"""What reprokit's observation costs on each Keras backend (TensorFlow, JAX, PyTorch).

    python tests/benchmarks/bench_backends.py [--repeat 3]

For each installed backend, prints two ratios (lower is better):

* per-step overhead: the median epoch time of ``fit`` on the digits MLP of
  ``examples/seed_question.py`` (batch 10, 180 steps an epoch) in a process
  with reprokit's hooks installed (every step fingerprinted) ÷ in a process
  without them;
* a whole ``reprokit check --quick`` of that example ÷ a hand-written "train
  twice in two processes" on the same backend.

Not a test: it asserts nothing. Timings depend on the machine and its load;
compare ratios from one run only.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "seed_question.py"

EPOCHS = """
import sys, time
observed = sys.argv[1] == "1"
if observed:
    from reprokit.core.backends import Backend
    from reprokit.core.controls import Controls
    from reprokit.protocol import WorkerConfig
    from reprokit.worker import backends, instrument
    from reprokit.worker.recorder import Recorder
    import os
    framework = backends.load(Backend.parse(os.environ["KERAS_BACKEND"]))
    framework.apply(Controls(1, True, framework.backend))
    recorder = Recorder(lambda event: None, framework.tensors)
    framework.install(recorder, WorkerConfig("x.py", (), seed=1, op_determinism=True, events_fd=-1, arrays_path=""))
    instrument.install(recorder, framework)
import keras, numpy as np
from sklearn.datasets import load_digits
keras.utils.set_random_seed(1)
digits = load_digits()
x, y = (digits.data / 16.0).astype("float32"), keras.utils.to_categorical(digits.target, 10)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(30, activation="sigmoid"),
                          keras.layers.Dense(10, activation="sigmoid")])
model.compile(keras.optimizers.SGD(3.0), "mean_squared_error")
model.fit(x, y, batch_size=10, epochs=1, verbose=0)  # compiled now
times = []
for _ in range(5):
    start = time.perf_counter()
    model.fit(x, y, batch_size=10, epochs=1, verbose=0)
    times.append(time.perf_counter() - start)
print(sorted(times)[2])
"""

TWICE = """
import subprocess, sys
procs = [subprocess.Popen([sys.executable, sys.argv[1]]) for _ in range(2)]
sys.exit(max(p.wait() for p in procs))
"""


def epoch_time(backend: str, observed: bool) -> float:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", EPOCHS, "1" if observed else "0"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def wall(command: list[str], backend: str) -> float:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    subprocess.run(command, env=env, capture_output=True, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    installed = [b for b, module in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch"))
                 if importlib.util.find_spec(module)]  # fmt: skip
    print(f"{'backend':<11} {'per-step overhead':>18} {'check --quick ÷ train twice':>28}")
    for backend in installed:
        steps, checks = [], []
        for _ in range(args.repeat):
            steps.append(epoch_time(backend, True) / epoch_time(backend, False))
            check = [sys.executable, "-m", "reprokit", "check", str(DIGITS), "--quick", "--backend", backend]
            checks.append(wall(check, backend) / wall([sys.executable, "-c", TWICE, str(DIGITS)], backend))
        print(f"{backend:<11} {statistics.median(steps):>18.2f} {statistics.median(checks):>28.2f}")


if __name__ == "__main__":
    main()

"""Every figure of reprokit's performance targets, from one run.

    python tests/benchmarks/bench_check.py [--repeat 3] [--sizes 1M,10M,100M,300M] [--seeds 10]

Prints medians over ``--repeat`` interleaved rounds, then one table of every
target with whether it holds (lower is better):

* per-step overhead of reprokit's observation: ``fit`` time with it ÷
  without, in one process, for the digits MLP, a ~1.2M-parameter conv net
  and MLPs of each ``--sizes`` (default ~1 M, ~10 M and ~100 M parameters;
  every figure a median of ``--repeat`` processes, one a round),
  with the weights fingerprinted at sampled steps (as a check's runs do) and
  at every step (as a baseline's and a resume check's runs do). The measured
  epochs lie past the start of the sampling schedule (from step 4098), where
  one step in 64 digests the weights, as in most of any long training; the
  log2(steps) snapshot steps of a training's start are not in them. An
  epoch is a block of 64 steps (128 for the digits MLP), each with its one
  digest step, and each arm trains at least 4 s of them, interleaved; the
  figure is the ratio of their median epochs, which a pause of the machine
  during a few epochs cannot move (the largest MLPs, with 8-step epochs: of
  their total times);
* ``reprokit check --quick`` and a full ``reprokit check`` of the digits
  example, each ÷ a hand-written "train twice in two processes and compare
  the weights with np.array_equal";
* time to verdict on the nondeterministic-ops example ÷ a ``--full`` check;
* ``reprokit seeds`` of the tuning example ÷ N plain ``python`` runs of it at
  the same concurrency (``bench_seeds.py`` alone has more of its figures);
* the same study, ``--no-repeat``, on a Ray cluster running on this machine
  ÷ on the local executor (``bench_ray.py`` alone also measures a Ray
  instance started by the command);
* peak memory of the reprokit parent process checking each MLP size (and
  whether it imported TensorFlow).

Not a test: it asserts nothing and takes about 25 minutes on 2 cores (more with 300M).
Timings depend on the machine and its load; compare ratios from one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "seed_question.py"
OPS = ROOT / "examples" / "nondeterministic_pipeline.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

HAND_WRITTEN = """
import runpy, sys
import keras, numpy as np

trained = []
fit = keras.Model.fit
def remember(self, *args, **kwargs):
    trained.append(self)
    return fit(self, *args, **kwargs)
keras.Model.fit = remember
script, out = sys.argv[1], sys.argv[2]
sys.argv = [script]
runpy.run_path(script, run_name="__main__")
np.savez(out, *[w.numpy() for w in trained[-1].weights])
"""
"""One training of the script, saving the final weights (what a user's own script would do)."""

OVERHEAD = """
import statistics, sys, time
import keras, numpy as np
from reprokit.core.backends import Backend
from reprokit.protocol import WorkerConfig
from reprokit.worker import backends, instrument
from reprokit.worker.recorder import Recorder

kind, sampled = sys.argv[1], sys.argv[2] == "sampled"
rng = np.random.default_rng(0)

def build():
    if kind == "mlp":  # the digits MLP of examples/seed_question.py
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(30, activation="sigmoid"),
                                  keras.layers.Dense(10, activation="softmax")])
    elif kind == "conv":  # a conv net of ~1.2M parameters on 28x28 images
        model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                                  keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
                                  keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"),
                                  keras.layers.Dense(10)])
    else:  # an MLP of about width**2 parameters
        width = int(kind)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(width, activation="relu"),
                                  keras.layers.Dense(width, activation="relu"), keras.layers.Dense(10)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=kind != "mlp"))
    return model

# An epoch is 64 steps (a block: one step in it digests the weights, as one in 64 of a long training does),
# except for the largest MLPs, whose 8-step epochs are summed over their 64 steps.
if kind == "mlp":
    from sklearn.datasets import load_digits
    digits = load_digits()
    x, y = (digits.data[:1280] / 16.0).astype("float32"), digits.target[:1280]
    batch, epochs = 10, 9  # 128 steps an epoch
elif kind == "conv":
    x, y = rng.random((2048, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 2048)
    batch, epochs = 32, 5
else:
    steps = 64 if int(kind) < 5000 else 8
    x, y = rng.random((32 * steps, 64), dtype="float32"), rng.integers(0, 10, 32 * steps)
    batch, epochs = 32, 5 if steps == 64 else 8

def warmed():
    keras.utils.set_random_seed(1)
    model = build()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)  # every batch shape traced now: no retrace later
    model.optimizer.iterations.assign(4097)  # past the schedule's start: a digest every 64th step (SGD ignores it)
    return model

def epoch(model):
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return time.perf_counter() - start

plain = warmed()  # traced before the hooks exist: its steps are never observed
framework = backends.load(Backend.TENSORFLOW)
recorder = Recorder(lambda event: None, framework.tensors, sampled=sampled)
config = WorkerConfig("x.py", (), seed=1, op_determinism=False, events_fd=-1, arrays_path="", sampled=sampled)
framework.install(recorder, config)
instrument.install(recorder, framework)
observed = warmed()  # traced with them: every step observed
times = {"plain": [], "observed": []}
while len(times["plain"]) < epochs or sum(times["plain"]) < 4.0:  # interleaved epochs in this one process,
    times["plain"].append(epoch(plain))  # at least 4 s of each
    times["observed"].append(epoch(observed))
if len(x) // batch % 64 == 0:  # alike epochs, each with its digest step: medians, which a pause of the machine
    ratio = statistics.median(times["observed"]) / statistics.median(times["plain"])  # in a few cannot move
else:
    ratio = sum(times["observed"]) / sum(times["plain"])  # totals: every digest step counts
print(ratio, plain.count_params())
"""
"""Epoch time of ``fit`` with reprokit's per-step observation ÷ without (medians), interleaved in one process.

Its arguments: the model (``mlp``, ``conv`` or an MLP's width) and ``sampled`` (the weights fingerprinted at sampled
steps, as a check's runs do) or ``every`` (at every step, as a baseline's and a resume check's runs do)."""

BIG_MODEL = """
import keras, numpy as np
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).random((256, 64), dtype="float32")
y = np.random.default_rng(1).integers(0, 10, 256)
model = keras.Sequential([keras.Input((64,)), keras.layers.Dense({width}, activation="relu"),
                          keras.layers.Dense({width}, activation="relu"), keras.layers.Dense(10)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, batch_size=32, epochs=1, verbose=0)
"""
"""A training script whose model has about width**2 parameters."""

PARENT_MEMORY = """
import resource, sys
from pathlib import Path
from reprokit import CheckOptions, Target, run_check
report = run_check(CheckOptions(Target(Path(sys.argv[1])), quick=True))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "tensorflow" in sys.modules, report.verdict)
"""
"""Runs a check in this process and reports this (the parent) process's peak RSS in MiB."""


def wall(command: list[str]) -> float:
    start = time.monotonic()
    subprocess.run(command, check=False, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - start


def hand_written_pair(script: Path) -> float:
    """Two trainings in two processes, one after the other, then np.array_equal on every weight."""
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        outs = [Path(tmp) / f"run{i}.npz" for i in (1, 2)]
        for out in outs:
            subprocess.run(
                [sys.executable, "-c", HAND_WRITTEN, str(script), str(out)],
                check=True,
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        import numpy as np

        with np.load(outs[0]) as a, np.load(outs[1]) as b:
            _ = all(np.array_equal(a[k], b[k]) for k in a.files)
    return time.monotonic() - start


def reprokit_check(*args: str) -> float:
    return wall([sys.executable, "-m", "reprokit", "check", *args])


def fit_overhead(model: str, sampled: bool = True) -> tuple[float, int]:
    """Per-step overhead (see ``OVERHEAD``) and the model's parameters."""
    how = "sampled" if sampled else "every"
    out = subprocess.run(
        [sys.executable, "-c", OVERHEAD, model, how], check=True, env=ENV, capture_output=True, text=True
    ).stdout.split()
    return float(out[0]), int(out[1])


def parent_memory(width: int) -> tuple[float, bool, int]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / f"dense_{width}.py"
        script.write_text(textwrap.dedent(BIG_MODEL.format(width=width)))
        out = subprocess.run(
            [sys.executable, "-c", PARENT_MEMORY, str(script)], check=True, env=ENV, capture_output=True, text=True
        ).stdout.split()
    params = 64 * width + width + width * width + width + width * 10 + 10
    return float(out[0]), out[1] == "True", params


CONV_SCRIPT = """
import keras, numpy as np
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
x, y = rng.random((2048, 28, 28, 1), dtype="float32"), rng.integers(0, 10, 2048)
model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(32, 3, activation="relu"),
                          keras.layers.Conv2D(64, 3, activation="relu"), keras.layers.MaxPooling2D(),
                          keras.layers.Flatten(), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)])
model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.fit(x, y, batch_size=64, epochs=3, verbose=0)
"""
"""The small conv net of the GPU figure: a whole script, trained as a user would."""


def gpu_figures(repeat: int) -> None:
    """On a GPU: a check of a small conv net ÷ one plain training, and whether its verdict matches ``--jobs 1``."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "conv.py"
        script.write_text(textwrap.dedent(CONV_SCRIPT))
        plain = statistics.median(wall([sys.executable, str(script)]) for _ in range(repeat))
        shared = statistics.median(reprokit_check(str(script)) for _ in range(repeat))
        verdicts = []
        for jobs in ([], ["--jobs", "1"]):
            out = subprocess.run(
                [sys.executable, "-m", "reprokit", "check", str(script), *jobs, "-f", "json"],
                env=ENV,
                capture_output=True,
                text=True,
                check=False,
            )
            doc = json.loads(out.stdout)
            verdicts.append(
                (doc["verdict"], [(c["name"], c["identical"], c["first_divergent_step"]) for c in doc["comparisons"]])
            )
    print("on the GPU (runs share it; target: check ÷ one training ≤ 2.0, verdicts as with --jobs 1):")
    print(f"  one plain training {plain:.2f} s, reprokit check {shared:.2f} s: ratio {shared / plain:.2f}")
    print(f"  verdict and comparisons the same as --jobs 1: {verdicts[0] == verdicts[1]} ({verdicts[0][0]})")


def size_row(width: int, repeat: int) -> tuple[tuple[float, int], float, tuple[float, bool, int]]:
    """An MLP size's medians over ``repeat`` processes each: overhead sampled and every step; parent peak memory."""
    sampled, every = [], []
    for i in range(repeat):  # interleaved, like the rounds above
        overhead, params = fit_overhead(str(width))
        sampled.append(overhead)
        every.append(fit_overhead(str(width), sampled=False)[0])
        print(
            f"round {i + 1}: {params} parameters: {sampled[-1]:.3f} sampled, {every[-1]:.3f} every step",
            file=sys.stderr,
        )
    return (statistics.median(sampled), params), statistics.median(every), parent_memory(width)


SIZES = "1M,10M,100M"
"""The MLP sizes measured by default (``--sizes``): about 1 M, 10 M and 100 M parameters."""


def widths(sizes: str) -> list[int]:
    """The MLP widths for ``--sizes`` (``1M,10M,300M``: parameters, with an optional k, M or G)."""
    found = []
    for given in sizes.split(","):
        size = given.strip().upper()
        scale = {"K": 1e3, "M": 1e6, "G": 1e9}.get(size[-1:], 1)
        params = float(size.rstrip("KMG")) * scale
        found.append(max(8, round((params - 80) ** 0.5 - 38)))  # width² + 76·width + … parameters
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--gpu", action="store_true", help="the GPU figures even where no NVIDIA GPU is visible")
    parser.add_argument("--sizes", default=SIZES, help=f"MLP sizes in parameters (default {SIZES}; up to 300M)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds of the seed-study rows (default 10)")
    arguments = parser.parse_args()
    repeat, seeds = arguments.repeat, arguments.seeds
    from bench_ray import cluster
    from bench_seeds import plain_runs, study

    from reprokit.core.controls import default_jobs

    jobs = default_jobs(seeds + 1)
    measures: dict[str, Callable[[], float]] = {
        "hand-written pair, digits": lambda: hand_written_pair(DIGITS),
        "reprokit check --quick, digits": lambda: reprokit_check("--quick", str(DIGITS)),
        "reprokit check, digits": lambda: reprokit_check(str(DIGITS)),
        "reprokit check, ops example": lambda: reprokit_check(str(OPS)),
        "reprokit check --full, ops example": lambda: reprokit_check("--full", str(OPS)),
        "fit overhead, digits MLP": lambda: fit_overhead("mlp")[0],
        "fit overhead, conv net": lambda: fit_overhead("conv")[0],
        "fit overhead every step, digits MLP": lambda: fit_overhead("mlp", sampled=False)[0],
        f"reprokit seeds, {seeds} seeds": lambda: study(seeds, jobs),
        f"{seeds} plain runs": lambda: plain_runs(seeds, jobs),
    }
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for i in range(repeat):  # interleaved: every measure once per round
        for name, measure in measures.items():
            samples[name].append(measure())
            print(f"round {i + 1}: {name}: {samples[name][-1]:.3f}", file=sys.stderr)
    ray_jobs = default_jobs(seeds)
    local, on_ray = f"seeds --no-repeat {seeds}, local", f"seeds --no-repeat {seeds}, Ray cluster"
    samples[local], samples[on_ray] = [], []
    with cluster(ray_jobs):  # one Ray cluster on this machine for every round, found without --ray-address
        for i in range(repeat):
            samples[local].append(study(seeds, ray_jobs, repeat=False))
            samples[on_ray].append(study(seeds, ray_jobs, "--executor", "ray", repeat=False))
            print(f"round {i + 1}: {local}: {samples[local][-1]:.1f}, Ray: {samples[on_ray][-1]:.1f}", file=sys.stderr)
    median = {name: statistics.median(values) for name, values in samples.items()}
    sizes = [size_row(width, repeat) for width in widths(arguments.sizes)]

    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {repeat} rounds, medians")
    for name, value in median.items():
        unit = "" if name.startswith("fit overhead") else " s"
        print(f"  {name:40s} {value:8.2f}{unit}")
    print("per model size (MLPs; overhead: fit observed ÷ not, median of one process a round, sampled as in a check;")
    print("  every step: a baseline's or resume check's runs; parent peak of a check --quick):")
    header = f"{'parameters':>12s} {'overhead':>9s} {'every step':>11s} {'parent peak':>12s}"
    print(f"  {header} {'parent imported TF':>19s}")
    for (overhead, params), every, (mib, imported_tf, _) in sizes:
        print(f"  {params / 1e6:11.1f}M {overhead:9.2f} {every:11.2f} {mib:8.0f} MiB {imported_tf!s:>19s}")
    hand = median["hand-written pair, digits"]
    targets = [
        ("per-step overhead, digits MLP", median["fit overhead, digits MLP"], 1.05),
        ("per-step overhead, ~1.2M conv net", median["fit overhead, conv net"], 1.05),
        *[(f"per-step overhead, {params / 1e6:.3g}M MLP", overhead, 1.05) for (overhead, params), _, _ in sizes],
        ("full check ÷ hand-written pair", median["reprokit check, digits"] / hand, 1.0),
        (
            f"seed study ÷ {seeds} plain runs",
            median[f"reprokit seeds, {seeds} seeds"] / median[f"{seeds} plain runs"],
            1.05,
        ),
        (
            "Ray seed study ÷ local",
            median[on_ray] / median[local],
            1.10,
        ),
        *[(f"parent peak MiB, {params / 1e6:.3g}M MLP", mib, 250.0) for (_, params), _, (mib, _, _) in sizes],
    ]
    others = [
        ("check --quick ÷ hand-written pair", median["reprokit check --quick, digits"] / hand),
        ("per-step overhead every step, digits MLP", median["fit overhead every step, digits MLP"]),
        (
            "time to verdict ÷ --full, ops example",
            median["reprokit check, ops example"] / median["reprokit check --full, ops example"],
        ),
    ]
    print(f"  {'target':46s} {'now':>8s} {'target':>8s}  holds")
    for name, value, target in targets:
        shown, limit = (f"{value:8.0f}", f"{target:6.0f}") if target > 10 else (f"{value:8.2f}", f"{target:6.2f}")
        print(f"  {name:46s} {shown} ≤ {limit}  {'yes' if value <= target else 'NO'}")
    print("other figures:")
    for name, ratio in others:
        print(f"  {name:46s} {ratio:8.2f}")
    from reprokit.core.controls import visible_gpus

    if visible_gpus() or arguments.gpu:
        gpu_figures(repeat)
    else:
        print("on a GPU: no NVIDIA GPU visible here; the GPU figures are skipped (run on one, or with --gpu)")
    print(json.dumps({"medians": median, "targets": {n: v for n, v, _ in targets}}), file=sys.stderr)


if __name__ == "__main__":
    main()

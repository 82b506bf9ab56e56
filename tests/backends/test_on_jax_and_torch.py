"""The same check, studies and alignment on JAX and PyTorch: real trainings in fresh processes.

One check of each script, with ``--quick`` where the verdict needs only the
controlled pair; the TensorFlow verdicts of the backend-free examples are
those of ``tests/test_examples.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from helpers import EXAMPLES, TINY, reprokit
from reprokit.core.vocabulary import Outcome

pytestmark = pytest.mark.e2e


def checked(example: str, backend: str, *options: str) -> dict:
    result = reprokit("check", EXAMPLES / example, "--backend", backend, "-f", "json", *options)
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return json.loads(result.stdout)


def source(report: dict, name: str) -> dict:
    return report["sources"][name]


def pair(report: dict, name: str) -> dict:
    return next(c for c in report["comparisons"] if c["name"] == name)


def test_on_jax_a_script_reprokit_seeds_is_reproducible_and_the_seed_changes_the_initial_weights():
    report = checked("seed_question.py", "jax", "--max-steps", "30")
    assert report["verdict"] == "reproducible"
    assert source(report, "seed")["status"] == "detected"
    assert pair(report, "seed")["first_divergence_stage"] == "initialization"
    assert pair(report, "controlled")["identical"] and pair(report, "ops")["identical"]
    environment = report["environment"]
    assert environment["backend"] == "jax" and environment["jax"] and "tensorflow" not in environment
    assert environment["env"]["XLA_FLAGS"] == "--xla_gpu_deterministic_ops=true"  # the controlled runs' profile


def test_on_jax_an_unseeded_default_rng_is_uncontrolled_as_on_tensorflow():
    report = checked("unseeded_augmentation.py", "jax", "--quick")
    assert report["verdict"] == "not_reproducible"
    assert source(report, "uncontrolled")["status"] == "detected"
    assert pair(report, "controlled")["first_divergence_stage"] == "input pipeline"


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])  # JAX draws the noise; Keras trains on either
def test_a_jax_key_made_from_the_clock_is_uncontrolled_on_both_backends(backend):
    report = checked("jax_clock_key.py", backend, "--quick")
    assert source(report, "uncontrolled")["status"] == "detected"
    assert report["environment"]["backend"] == backend
    assert any(f["code"] == "RK103" for f in report["lint"])


def test_a_stateless_jax_loop_diverges_at_a_step_and_in_variables_named_by_the_check():
    report = checked("jax_stateless_loop.py", "jax", "--quick")
    assert source(report, "uncontrolled")["status"] == "detected"  # an unseeded default_rng() shuffle
    controlled = pair(report, "controlled")
    assert controlled["first_divergent_step"] == 29  # the first step of the first shuffled epoch
    assert controlled["first_divergent_model"] == "sequential"
    assert "sequential/dense/kernel" in controlled["first_divergent_variables"]
    assert controlled["input_change"] == "order"
    assert all(run["steps"] >= 29 for run in report["runs"])  # runs may stop once the divergence is proven


def test_on_torch_an_unseeded_default_rng_is_uncontrolled_too():
    report = checked("unseeded_augmentation.py", "torch", "--quick")
    assert source(report, "uncontrolled")["status"] == "detected"
    assert report["environment"]["backend"] == "torch" and report["environment"]["op_determinism"] is True


def test_seeds_and_a_cross_backend_compare_run_on_jax(tmp_path):
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    study = ["--study-dir", str(tmp_path / "studies"), "-f", "json"]
    seeds = reprokit("seeds", script, "--backend", "jax", "--seeds", "1", *study)
    assert seeds.returncode == 0, seeds.stderr[-2000:]
    assert json.loads(seeds.stdout)["pinned"] is True  # the repeat of seed S on JAX matched it
    # --resume: the JAX variant's seed S is the seed study's run
    compare = reprokit(
        "compare", script, "--backend", "tensorflow", "--backend", "jax", "--seeds", "6", "--resume", *study
    )
    assert compare.returncode == 0, compare.stderr[-2000:]
    document = json.loads(compare.stdout)
    labels = [v["label"] for v in document["variants"]]
    assert labels == [f"{script} [tensorflow]", f"{script} [jax]"]
    (contrast,) = document["comparisons"]
    assert contrast["outcome"] in {o.value for o in Outcome}  # a verdict on the backend, beyond seed noise or not


TWO_TRAININGS = """
import sys
import keras, numpy as np
from sklearn.datasets import load_digits
folder = sys.argv[1]
digits = load_digits()
x, y = (digits.data / 16.0).astype("float32"), digits.target
np.savez(f"{folder}/digits.npz", x=x, y=y)
for seed in (1, 2):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=2, batch_size=64, verbose=0)
    model.save(f"{folder}/{seed}.keras")
"""


def test_align_reads_keras_files_saved_by_a_jax_training(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    command = [sys.executable, "-c", TWO_TRAININGS, str(tmp_path)]
    trained = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    assert trained.returncode == 0, trained.stderr[-2000:]
    aligned = reprokit("align", tmp_path / "1.keras", tmp_path / "2.keras", "--data", tmp_path / "digits.npz")
    assert aligned.returncode == 0, aligned.stderr[-2000:]
    assert "order of hidden units" in aligned.stdout


CONTROLLED_ON_TORCH = """
import warnings
import torch
import reprokit

torch.manual_seed(0)
before = torch.rand(1).item()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    with reprokit.controlled(seed=3) as settings:
        inside = torch.are_deterministic_algorithms_enabled()
        first = torch.rand(1).item()
torch.manual_seed(3)
seeded = first == torch.rand(1).item()  # the block drew what seed 3 draws
print(inside, torch.are_deterministic_algorithms_enabled(), seeded, settings.not_restored)
"""


def test_controlled_on_torch_seeds_torch_and_restores_its_determinism_setting():
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONHASHSEED": "3"}
    done = subprocess.run(
        [sys.executable, "-c", CONTROLLED_ON_TORCH], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    inside, after, seeded, not_restored = done.stdout.strip().split(" ", 3)
    assert (inside, after, seeded, not_restored) == ("True", "False", "True", "[]")

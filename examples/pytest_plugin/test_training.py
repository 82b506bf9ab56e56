"""reprokit's pytest plugin, as a project's own tests would use it.

Run with ``pytest examples/pytest_plugin`` (the plugin comes with reprokit):

* the ``reprokit_check`` fixture checks a training script in fresh processes
  and ``reprokit.assert_reproducible`` fails with the report as its message;
* ``@pytest.mark.reproducible`` runs a test body with every seed fixed and
  op determinism on; the seed is in pytest's header (``--reprokit-seed``).

What pytest reports: 2 passed.
"""

from pathlib import Path

import keras
import numpy as np
import pytest

import reprokit

EXAMPLES = Path(__file__).resolve().parent.parent


def test_the_training_script_is_reproducible(reprokit_check):
    report = reprokit_check(EXAMPLES / "seed_question.py", args=["--epochs", "1"], quick=True, max_steps=30)
    reprokit.assert_reproducible(report)


@pytest.mark.reproducible(seed=7)
def test_a_model_initialized_twice_under_the_marker_starts_from_the_same_weights():
    first = keras.layers.Dense(4)
    first.build((None, 3))
    keras.utils.set_random_seed(7)  # what the marker did before the test body
    second = keras.layers.Dense(4)
    second.build((None, 3))
    np.testing.assert_array_equal(first.kernel.numpy(), second.kernel.numpy())

"""The words of a finding: what each source of differences is, its fix, and where two runs went apart."""

from __future__ import annotations

from collections.abc import Sequence

from reprokit.checking.comparison import Comparison, Divergence, short_name
from reprokit.core.backends import Backend
from reprokit.core.vocabulary import Source
from reprokit.run.trace import Pin
from reprokit.weights.words import why

EXPLANATIONS = {  # what each source is, in plain words
    Source.SEED: (
        "Random initialization, shuffling and dropout draw from generators that "
        "your script does not seed, so every training starts from other random "
        "numbers. This is expected, and fixed by seeding everything once at the top "
        "of the script."
    ),
    Source.NONDETERMINISTIC_OPS: (
        "Some TensorFlow kernels do not compute in a fixed order (parallel "
        "reductions, atomic updates, tf.data pipelines that give up order for "
        "speed), so two trainings with the same seed still differ in the last "
        "bits, and the differences grow. TensorFlow op determinism makes them "
        "deterministic, usually at a small cost in speed."
    ),
    Source.WRITTEN_FILES: (
        "The script writes files (checkpoints, logs, saved models) into the current folder and reads "
        "them back when it starts again, so every training depends on what the last one left behind: "
        "two trainings in one folder differ although each one alone is reproducible."
    ),
    Source.RESUME: (
        "A training that is stopped (a preempted machine, a time limit) and started again resumes exactly "
        "only if its checkpoint holds everything the next step depends on: the weights, the optimizer's "
        "iterations, learning rate and slots, the position in the data and its shuffle order, the state of "
        "the random generators behind dropout and augmentation, and the callbacks' counters. Whatever it "
        "misses, the resumed training silently computes another model."
    ),
    Source.UNCONTROLLED: (
        "Something in the training draws randomness that neither the global seeds "
        "nor op determinism reach: an unseeded np.random.default_rng() or "
        "random.Random(), random.SystemRandom() (which cannot be seeded), the "
        "clock, os.urandom, or file or set order. Two "
        "trainings with every setting fixed still differ; only the script can fix it."
    ),
}

FIXES = {  # the code that fixes each source ({seed}: the check's seed)
    Source.SEED: (
        "import keras\n\n"
        "# at the top of the script, before any model or dataset is built\n"
        "# seeds random, NumPy, Keras and its backend (TensorFlow, JAX or PyTorch):\n"
        "keras.utils.set_random_seed({seed})"
    ),
    Source.NONDETERMINISTIC_OPS: (
        "import tensorflow as tf\n\n"
        "# before building the model (or run with TF_DETERMINISTIC_OPS=1)\n"
        "tf.config.experimental.enable_op_determinism()"
    ),
    Source.WRITTEN_FILES: (
        "# give every training a folder of its own for what it writes ...\n"
        'out = Path("runs") / time.strftime("%Y%m%d-%H%M%S")\n'
        "out.mkdir(parents=True)\n"
        'checkpoint = keras.callbacks.ModelCheckpoint(out / "ckpt.weights.h5", save_weights_only=True)\n'
        "# ... and resume only when asked to (e.g. a --resume PATH option)"
    ),
    Source.UNCONTROLLED: (
        "# seed every generator the script creates itself ...\n"
        "rng = np.random.default_rng({seed})  # not default_rng()\n"
        "py_rng = random.Random({seed})       # not random.Random() or random.SystemRandom()\n"
        "# ... and keep the clock, os.urandom and unsorted\n"
        "# file lists out of training:\n"
        "files = sorted(os.listdir(data_dir))"
    ),
}


def where(c: Comparison, started_from: str = "") -> str:
    """Where ``c`` first differs, in words; ``started_from`` replaces the initialization stage's sentence."""
    d = c.divergence
    if d is None:
        return ""
    if d.after is not None:
        at = f"between steps {d.after} and {d.step} (their weights were fingerprinted at sampled steps only)"
    else:
        at = "in the initial weights (before the first step)" if d.step == 0 else f"from step {d.step}"
        at += " (located by a replay that fingerprinted every step)" if d.located else ""
    names = [short_name(d.model, v) for v in d.variables]
    variables = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    stage = f" {started_from}" if started_from and d.stage == "initialization" else stage_sentence(d, c.xla_steps)
    return f"{at} of {d.model}" + (f" ({variables})" if variables else "") + "." + stage


CHANGES = {
    "order": "the same examples, in another order",
    "values": "other examples or other values",
}


def stage_sentence(d: Divergence, xla_steps: bool = False) -> str:
    """One sentence naming the stage where two runs first went apart (or why it is unknown)."""
    if d.stage is None and xla_steps and d.step > 0:
        return (
            " Stage: unknown: the steps are XLA-compiled (jit_compile=True), so their input batches could not "
            "be observed; reprokit explain can test the input pipeline by replaying it."
        )
    if d.stage == "initialization":
        return " The model was built from other random numbers."
    if d.stage == "input pipeline":
        how = f" ({CHANGES[d.input_change]})" if d.input_change else ""
        return (
            f" Stage: input pipeline: the weights before step {d.step} were identical but its input batch differs{how}."
        )
    if d.stage == "computation":
        return (
            f" Stage: computation: the weights before step {d.step} and its input batch were identical, "
            "the weights after it are not (the forward/backward ops or the update)."
        )
    return ""


def why_weights(c: Comparison) -> str:
    """Why the seed pair's weights differ: the order of hidden units, or another solution (with data)."""
    several = len(c.alignments) > 1
    return "".join(" " + why(m.alignment, m.model if several else None) for m in c.alignments)


def step_of(c: Comparison) -> str:
    """``step 7 of sequential``: where a pair that differs first differs."""
    d = c.divergence
    assert d is not None
    return f"{d.steps} of {d.model}"


def pins_text(pins: Sequence[Pin], kind: str) -> str:
    """The script's own calls that fix ``kind`` (``seed`` or ``determinism``): ``train.py:4 tf.random.set_seed(0)``."""
    calls = [f"{_short(p.file)}:{p.line} {p.call}" for p in pins if p.kind == kind]
    return "; ".join(dict.fromkeys(calls))


def _short(path: str) -> str:
    return path.rsplit("/", 1)[-1]


OPS_FIXES = {  # the nondeterministic-ops fix on each backend other than TensorFlow (FIXES has TensorFlow's)
    Backend.JAX: (
        "# in the environment, before JAX starts (deterministic XLA kernels on GPU):\n"
        "#   XLA_FLAGS=--xla_gpu_deterministic_ops=true python train.py\n"
        "import os\n\n"
        'os.environ["XLA_FLAGS"] = os.environ.get("XLA_FLAGS", "") + " --xla_gpu_deterministic_ops=true"'
    ),
    Backend.TORCH: (
        "import os\n\n"
        "import torch\n\n"
        "# before CUDA starts; cuBLAS needs it for deterministic matrix products\n"
        'os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")\n'
        "torch.use_deterministic_algorithms(True)"
    ),
}

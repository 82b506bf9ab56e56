"""Seeding rules (RK101–RK103): random generators that no global seed reaches."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from reprokit.core.vocabulary import Source
from reprokit.lint.astutil import calls, dotted_name, named, no_seed
from reprokit.lint.registry import Detection, Family, Rule

UNSEEDED = ("default_rng", "RandomState", "SeedSequence")  # NumPy generators seeded from OS entropy by default


def unseeded_generators(tree: ast.Module) -> Iterator[Detection]:
    """RK101: NumPy generators, bit generators and ``random.Random()`` built without a seed."""
    for call in calls(tree):
        name = dotted_name(call.func)
        last = name.split(".")[-1]
        if last in UNSEEDED and (name == last or name.endswith("random." + last)):
            if no_seed(call) and name.split(".")[0] not in ("tf", "tensorflow"):
                yield call, f"{name}() without a seed draws fresh OS entropy in every run.", f"{last}(seed)"
        elif name in ("random.Random", "Random") and no_seed(call):
            yield call, "random.Random() without a seed is seeded from OS entropy.", "random.Random(seed)"
        elif name in ("random.SystemRandom", "SystemRandom", "secrets.SystemRandom"):
            yield call, f"{name}() reads OS entropy and cannot be seeded at all.", "random.Random(seed)"
        elif named(name, "random.Generator") and call.args and isinstance(call.args[0], ast.Call):
            bit = call.args[0]
            if named(dotted_name(bit.func), "PCG64", "MT19937", "Philox", "SFC64", "PCG64DXSM") and no_seed(bit):
                bit_name = dotted_name(bit.func)
                yield bit, f"{bit_name}() without a seed draws fresh OS entropy.", f"{bit_name}(seed)"


def non_deterministic_state(tree: ast.Module) -> Iterator[Detection]:
    """RK102: ``tf.random.Generator.from_non_deterministic_state()``."""
    for call in calls(tree):
        if dotted_name(call.func).endswith("Generator.from_non_deterministic_state"):
            yield (
                call,
                "tf.random.Generator.from_non_deterministic_state() is seeded from OS entropy.",
                "tf.random.Generator.from_seed(seed)",
            )


ENTROPY = ("time.time", "time.time_ns", "time.perf_counter", "time.monotonic", "os.urandom", "uuid.uuid4", "uuid.uuid1")
SEED_TAKERS = (
    "seed",
    "set_seed",
    "set_random_seed",
    "default_rng",
    "RandomState",
    "Random",
    "from_seed",
    "manual_seed",
    "PRNGKey",  # jax.random.PRNGKey(seed)
)
KEY_MAKERS = ("random.key", "random.PRNGKey")  # JAX: a key is a seed


def clock_seeds(tree: ast.Module) -> Iterator[Detection]:
    """RK103: a seed argument computed from the clock or OS entropy."""
    for call in calls(tree):
        name = dotted_name(call.func)
        takes_seed = name.split(".")[-1] in SEED_TAKERS or name.endswith(KEY_MAKERS)
        arguments = [*call.args[:1]] if takes_seed else []
        arguments += [k.value for k in call.keywords if k.arg == "seed"]
        for argument in arguments:
            source = next((n for n in calls(argument) if _entropy(dotted_name(n.func))), None)
            if source is not None:
                yield (
                    call,
                    f"the seed comes from {dotted_name(source.func)}(), so every run gets another one.",
                    "use a fixed seed (or record the one you draw and pass it back to replay)",
                )


def _entropy(name: str) -> bool:
    return name in ENTROPY or name.startswith("secrets.") or named(name, "datetime.now", "datetime.utcnow")


RULES = (
    Rule(
        code="RK101",
        name="unseeded-random-generator",
        family=Family.SEEDING,
        message="an unseeded generator: `np.random.default_rng()`, `np.random.RandomState()`, "
        "`np.random.SeedSequence()`, `random.Random()`, `random.SystemRandom()`, `np.random.Generator(PCG64())`",
        fix="pass the generator a seed: `np.random.default_rng(seed)`, `random.Random(seed)` (also in place of "
        "`random.SystemRandom()`, which ignores any seed), `PCG64(seed)`",
        rationale="Without a seed these generators draw fresh OS entropy in every run, and "
        "`keras.utils.set_random_seed` does not reach them: it seeds `random`, NumPy's legacy global generator, "
        "TensorFlow's global seed and Keras' SeedGenerator only. Measured (TensorFlow 2.21, Keras 3.15.1, CPU): "
        "`np.random.default_rng()` (also inside a `py_function`) and a new `random.Random()` gave 3 different "
        "results in 3 processes, with the seeds fixed, with op determinism on and off alike. "
        "`random.SystemRandom()` reads `os.urandom` for every draw: no seed reaches it.",
        source=Source.UNCONTROLLED,
        gpu_only=False,
        detect=unseeded_generators,
    ),
    Rule(
        code="RK102",
        name="generator-from-non-deterministic-state",
        family=Family.SEEDING,
        message="`tf.random.Generator.from_non_deterministic_state()`",
        fix="`tf.random.Generator.from_seed(seed)`",
        rationale="The generator is seeded from OS entropy, so no global seed reaches it and every run draws "
        "other numbers. Under op determinism TensorFlow refuses it: `RuntimeError: "
        '"from_non_deterministic_state" cannot be called when determinism is enabled.` (TensorFlow 2.21, CPU).',
        source=Source.UNCONTROLLED,
        gpu_only=False,
        detect=non_deterministic_state,
    ),
    Rule(
        code="RK103",
        name="seed-from-clock-or-entropy",
        family=Family.SEEDING,
        message="a seed (or a JAX key) taken from the clock or OS entropy (`time.time()`, `datetime.now()`, "
        "`uuid`, `os.urandom`, `secrets`)",
        fix="use a fixed seed (or record the one you draw and pass it back to replay)",
        rationale="A seed computed from the clock or from OS entropy is another seed in every run, so seeding "
        "controls nothing unless the seed is recorded and passed back. Measured (TensorFlow 2.21, Keras 3.15.1, "
        "CPU): clock-derived seeds and `os.urandom` gave 3 different results in 3 processes, with op determinism "
        "on and off alike.",
        source=Source.UNCONTROLLED,
        gpu_only=False,
        detect=clock_seeds,
    ),
)

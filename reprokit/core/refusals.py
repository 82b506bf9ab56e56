"""A backend's refusals under op determinism, recognized and explained.

With op determinism on, TensorFlow raises instead of running something it
cannot make deterministic: an op with no deterministic kernel (on GPU), a
random op without a seed, a generator seeded from OS entropy, the clock.
PyTorch's ``use_deterministic_algorithms(True)`` raises for an op with no
deterministic implementation.
Such a refusal is a finding about the script, not a crash: this module turns
the error text into what it means and what the user can do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reprokit.core.errors import EXIT_FAILED_CHECK, ScriptFailedError
from reprokit.core.vocabulary import Source


@dataclass(frozen=True)
class Refusal:
    """The backend refused to run a part of the script with op determinism on.

    Attributes:
        source: uncontrolled randomness or nondeterministic ops.
        error: the error's last line, as the backend wrote it.
        op: the op or API refused, where the message names it.
        file: the script file of the innermost user frame, if known.
        line: its line.
        meaning: what the refusal means, in plain words.
        options: what the user can do, one option per line.
    """

    source: Source
    error: str
    op: str | None
    file: str | None
    line: int | None
    meaning: str
    options: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", Source(self.source))  # from a run's JSON event

    @property
    def where(self) -> str:
        if self.file is None:
            return ""
        return f"{self.file.rsplit('/', 1)[-1]}:{self.line}"


_SEEDLESS = (
    "a random op ran without a seed, so its numbers would change from run to run",
    "give the op a seed (tf.random.normal(..., seed=1)), or use a seeded generator: "
    "tf.random.Generator.from_seed(seed)",
)
_ENTROPY_GENERATOR = (
    "a random generator is seeded from OS entropy, so its numbers change from run to run",
    "create it with tf.random.Generator.from_seed(seed) instead of from_non_deterministic_state(); "
    "or call tf.random.set_global_generator(tf.random.Generator.from_seed(seed)) first",
)
_CLOCK = (
    "the training reads the clock (tf.timestamp), so what depends on it changes from run to run",
    "keep tf.timestamp() out of anything that feeds training (seeds, shuffling, augmentation); "
    "time the run outside the tf.function",
)
_NO_TORCH_KERNEL = (
    "this PyTorch op has no deterministic implementation on this device, so its results can change "
    "from run to run in the last bits",
    "use a deterministic alternative for the op, run that part on CPU, or let it through with "
    "torch.use_deterministic_algorithms(True, warn_only=True) and accept its nondeterminism",
)
_NO_KERNEL = (
    "this op has no deterministic implementation on this device, so its results can change "
    "from run to run in the last bits",
    "use a deterministic alternative for the op (see the TensorFlow determinism notes), run that part "
    "on CPU, or accept the nondeterminism and keep op determinism off for this model",
)

PATTERNS: tuple[tuple[re.Pattern[str], Source, tuple[str, str], str | None], ...] = (
    (
        re.compile(r"Random ops require a seed to be set when determinism is enabled"),
        Source.UNCONTROLLED,
        _SEEDLESS,
        None,
    ),
    (
        re.compile(r"When determinism is enabled, random ops must have a seed specified"),
        Source.UNCONTROLLED,
        _SEEDLESS,
        None,
    ),
    (
        re.compile(r'"from_non_deterministic_state" cannot be called when determinism is enabled'),
        Source.UNCONTROLLED,
        _ENTROPY_GENERATOR,
        "tf.random.Generator.from_non_deterministic_state",
    ),
    (
        re.compile(r'"get_global_generator" cannot be called if determinism is enabled'),
        Source.UNCONTROLLED,
        _ENTROPY_GENERATOR,
        "tf.random.get_global_generator",
    ),
    (re.compile(r"Timestamp cannot be called when determinism is enabled"), Source.UNCONTROLLED, _CLOCK, "Timestamp"),
    (
        re.compile(r"(\w+) requires a non-zero seed"),
        Source.UNCONTROLLED,
        _SEEDLESS,
        None,
    ),
    (
        re.compile(
            r"[Dd]eterministic (?:GPU )?implementation.*not (?:currently )?available|UnimplementedError.*determinis"
        ),
        Source.NONDETERMINISTIC_OPS,
        _NO_KERNEL,
        None,
    ),
    (
        re.compile(r"(\w+) does not have a deterministic implementation, but you set .?torch\.use_deterministic"),
        Source.NONDETERMINISTIC_OPS,
        _NO_TORCH_KERNEL,
        None,
    ),
)

_OP_NAME = re.compile(r"\[Op:(\w+)\]")


def recognize(error: str, file: str | None = None, line: int | None = None) -> Refusal | None:
    """The refusal ``error`` (an exception's text) stands for, or None if it is none."""
    for pattern, source, (meaning, options), known_op in PATTERNS:
        match = pattern.search(error)
        if match is None:
            continue
        named = _OP_NAME.search(error)
        op = named.group(1) if named else known_op or (match.group(1) if match.groups() else None)
        last = error.strip().splitlines()[-1] if error.strip() else error
        return Refusal(source, last, op, file, line, meaning, options)
    return None


class DeterminismRefusedError(ScriptFailedError):
    """The backend refused to run the script with op determinism on.

    A finding rather than a crash: a check goes on without the runs that need
    op determinism and reports the refusal. Where no report can carry it (a
    baseline), it fails the check with exit code 1, as the refusal's finding
    does under the default ``--fail-on``.
    """

    exit_code = EXIT_FAILED_CHECK

    def __init__(self, message: str, run: str, details: str, refusal: Refusal) -> None:
        super().__init__(message, run, details)
        self.refusal = refusal

"""The configurations ``reprokit tune`` trains: a grid of hyperparameter values, and how a script receives them.

``--grid lr=0.1,0.01 --grid hidden=8,32`` names two axes; every combination
is one configuration (here four), in the order the axes and values were
written, the last axis changing fastest. A configuration reaches the script
in one of two ways (:class:`Passing`):

- ``ARGS`` (the default): as command-line options, ``--lr 0.1 --hidden 8``,
  after the script's own arguments (argparse takes the last occurrence of
  an option, so a grid value overrides one given by hand);
- ``ENV``: for scripts without options, as environment variables:
  ``REPROKIT_PARAMS`` holds every value as a JSON object of strings
  (``{"lr": "0.1", "hidden": "8"}``), and ``REPROKIT_PARAM_LR=0.1`` each one
  (the name upper-cased, ``-`` as ``_``). A script reads them with
  ``json.loads(os.environ.get("REPROKIT_PARAMS", "{}"))``.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Word
from reprokit.run.runner import Target

PARAMS_VARIABLE = "REPROKIT_PARAMS"
"""The environment variable holding a configuration's values as a JSON object (``Passing.ENV``)."""
PARAM_PREFIX = "REPROKIT_PARAM_"
"""The prefix of the one variable per value (``REPROKIT_PARAM_LR``) (``Passing.ENV``)."""
MAX_CONFIGURATIONS = 256
"""More configurations than this is a mistake in the grid, not a study (refused before any run)."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


class Passing(Word):
    """How a configuration's values reach the script."""

    ARGS = "args"  # --name value
    ENV = "env"  # REPROKIT_PARAMS and REPROKIT_PARAM_NAME


@dataclass(frozen=True)
class Axis:
    """One hyperparameter of the grid and the values it takes, as written."""

    name: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Configuration:
    """One point of the grid: a value for every axis, in the axes' order."""

    values: tuple[tuple[str, str], ...]

    @property
    def label(self) -> str:
        """How reports name it: ``lr=0.1 hidden=8``."""
        return " ".join(f"{name}={value}" for name, value in self.values)

    def args(self) -> tuple[str, ...]:
        """The command-line options that pass it (``Passing.ARGS``)."""
        return tuple(word for name, value in self.values for word in (f"--{name}", value))

    def env(self) -> tuple[tuple[str, str], ...]:
        """The environment variables that pass it (``Passing.ENV``)."""
        each = tuple((PARAM_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper(), v) for name, v in self.values)
        return ((PARAMS_VARIABLE, json.dumps(dict(self.values))), *each)


def parse_axis(spec: str) -> Axis:
    """``NAME=V1,V2,…`` as an :class:`Axis` (a leading ``--`` on the name is dropped).

    Raises:
        UsageError: no ``=``, a name that is no option name, an empty value, or a value twice.
    """
    name, sep, values = spec.partition("=")
    name = name.strip().removeprefix("--")
    if not sep or not _NAME.fullmatch(name):
        raise UsageError(f"expected --grid NAME=V1,V2,… (e.g. --grid lr=0.1,0.01), received {spec!r}")
    found = tuple(v.strip() for v in values.split(","))
    if any(not v for v in found):
        raise UsageError(f"expected non-empty values in --grid {name}=…, received {spec!r}")
    if len(set(found)) != len(found):
        raise UsageError(f"expected each value once in --grid {name}=…, received {spec!r}")
    return Axis(name, found)


def parse_grid(specs: Sequence[str]) -> tuple[Axis, ...]:
    """Every ``--grid`` option as axes.

    Raises:
        UsageError: no axis, a bad axis (:func:`parse_axis`), an axis named
            twice, fewer than two configurations, or more than
            :data:`MAX_CONFIGURATIONS`.
    """
    axes = tuple(parse_axis(spec) for spec in specs)
    if not axes:
        raise UsageError("expected at least one --grid NAME=V1,V2,…, received none")
    names = [a.name for a in axes]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UsageError(f"expected each --grid name once, received {', '.join(twice)} more than once")
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count < 2:
        raise UsageError(f"expected a grid of at least two configurations, received {count}")
    if count > MAX_CONFIGURATIONS:
        raise UsageError(f"expected at most {MAX_CONFIGURATIONS} configurations, received a grid of {count}")
    return axes


def configurations(axes: Sequence[Axis]) -> tuple[Configuration, ...]:
    """Every combination of the axes' values, the last axis changing fastest."""
    names = [a.name for a in axes]
    return tuple(Configuration(tuple(zip(names, combo))) for combo in itertools.product(*(a.values for a in axes)))


def target_of(
    script: Path, args: Sequence[str], configuration: Configuration, passing: Passing, folder: Path | None = None
) -> Target:
    """The training of one configuration: the script with its arguments, and the configuration passed as asked."""
    if passing is Passing.ARGS:
        return Target(script, (*args, *configuration.args()), folder=folder)
    return Target(script, tuple(args), folder=folder, env=configuration.env())

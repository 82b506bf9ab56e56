"""The baseline file (``reprokit.lock.json``): read, validated whole, and the commands that make it.

A baseline is read and every field checked before any run starts, so a
hand-edited or damaged file is a one-line error naming the field (exit 2),
never a crash after a training. The document is written by
:func:`reprokit.checking.baseline.from_trace`; its fields are documented in the README.
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from reprokit.checking.resume import Resumed
from reprokit.core.errors import UsageError
from reprokit.core.paths import kind, require_file

SCHEMA_VERSION = 3  # 3: traced steps carry on-device digests (2: CRC-32 of every step; 1: BLAKE2b)
KIND = "reprokit-baseline"
DEFAULT_PATH = Path("reprokit.lock.json")


def script_hash(script: Path) -> str | None:
    """SHA-256 of the script's source (None if it cannot be read)."""
    try:
        return hashlib.sha256(Path(script).read_bytes()).hexdigest()
    except OSError:
        return None


def args_hash(args: Sequence[str]) -> str:
    """SHA-256 of the script's arguments."""
    return hashlib.sha256(json.dumps(list(args)).encode()).hexdigest()


def command(
    verb: str, script: Path, path: Path, args: Sequence[str], config: Mapping[str, Any], resume: Any = None
) -> str:
    """The reprokit command line that records (``baseline``) or rewrites (``update``) this baseline.

    ``resume``: the baseline's resume check (a :class:`~reprokit.checking.runs.ResumeAt`), if it has one.
    """
    words = ["reprokit", "baseline", str(script)] if verb == "baseline" else ["reprokit", "check", str(script)]
    if verb == "baseline":
        words += [] if Path(path) == DEFAULT_PATH else ["--output", str(path)]
    else:
        words += ["--baseline", str(path), "--update-baseline"]
    for key, value in config.items():
        if value is not None:
            words += [f"--{key.replace('_', '-')}", str(value)]
    if resume is not None:
        words += resume.option.split()
    if args:
        words += ["--", *args]
    return shlex.join(words)


def load(
    path: Path,
    script: Path,
    args: Sequence[str],
    config: Mapping[str, Any],
    given: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Reads a baseline, validates every field, and checks it is for this script and configuration.

    Args:
        path: the baseline file.
        script: the script being checked.
        args: its arguments.
        config: reprokit's settings that a baseline is only compared under
            (``max_steps``; ``epochs`` and ``batch_size`` for model files).
        given: the settings the user gave, for the command that creates a
            missing baseline (default: ``config``).

    Raises:
        UsageError: the file is missing, unreadable, not a baseline, of another
            schema version, has a field of the wrong type, or is for another
            script, arguments or step budget.
    """
    if kind(Path(path)) not in (None, "missing"):
        require_file(Path(path), "baseline")  # says what it is instead: a FIFO would block the read
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        create = command("baseline", script, path, args, config if given is None else given)
        raise UsageError(f"baseline not found: {path} (create it with: {create})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read baseline {path}: {e}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"baseline {path} is not valid JSON (line {e.lineno}): {e.msg}") from None
    if not isinstance(document, dict) or document.get("kind") != KIND:
        raise UsageError(f"expected a reprokit baseline in {path}, received another kind of JSON file")
    version = document.get("schema_version")
    if version != SCHEMA_VERSION:
        raise UsageError(
            f"baseline {path} has schema version {version!r}; this reprokit reads version "
            f"{SCHEMA_VERSION} (recreate it with --update-baseline)"
        )
    problem = _first_problem(document)
    if problem is not None:
        raise UsageError(f"baseline {path} is incomplete or corrupt: {problem}")
    recorded = (Path(path).parent / document["script"]).resolve()
    if recorded != Path(script).resolve():
        raise UsageError(f"baseline {path} is for {document['script']}, not for {script}")
    if document["script_args"] != list(args):
        raise UsageError(
            f"baseline {path} was made with script arguments {document['script_args']}; this check passes {list(args)}"
        )
    for key, recorded_value in document["config"].items():  # model-file settings only if it was one
        if config.get(key) != recorded_value:
            option = f"--{key.replace('_', '-')}"
            made, now = _setting(option, recorded_value), _setting(option, config.get(key))
            raise UsageError(
                f"baseline {path} was made with {made}; this check uses {now} "
                f"(a baseline is only compared under the same settings)"
            )
    return document


def _setting(option: str, value: Any) -> str:
    return f"no {option}" if value is None else f"{option} {value}"


# -- validation: every field, with its path in the document ------------------
Check = Callable[[Any], bool]


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number_or_null(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _str(value: Any) -> bool:
    return isinstance(value, str)


def _fingerprints(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())


def _describe(value: Any) -> str:
    names = {
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        str: "a string",
        list: "a list",
        dict: "an object",
    }
    shown = json.dumps(value) if not isinstance(value, dict | list) else ""
    return names.get(type(value), "null" if value is None else type(value).__name__) + (f" {shown}" if shown else "")


_TOP: tuple[tuple[str, str, Check], ...] = (
    ("script", "a string", _str),
    ("script_args", "a list of strings", lambda v: isinstance(v, list) and all(isinstance(a, str) for a in v)),
    ("seed", "an integer from 0", lambda v: _int(v) and v >= 0),
    ("config", "an object", lambda v: isinstance(v, dict)),
    ("environment", "an object", lambda v: isinstance(v, dict)),
    ("models", "an object", lambda v: isinstance(v, dict)),
)
_MODEL: tuple[tuple[str, str, Check], ...] = (
    ("steps", "an integer from 0", lambda v: _int(v) and v >= 0),
    ("initial_weights", "an object of fingerprints or null", lambda v: v is None or _fingerprints(v)),
    ("final_weights", "an object of fingerprints", _fingerprints),
    (
        "history",
        "an object of lists of numbers",
        lambda v: isinstance(v, dict) and all(isinstance(s, list) and all(map(_number_or_null, s)) for s in v.values()),
    ),
    (
        "step_fingerprints",
        "an object of step numbers to fingerprints",
        lambda v: _fingerprints(v) and all(k.isdigit() for k in v),
    ),
)


_RESUME: tuple[tuple[str, str, Check], ...] = (
    ("stopped_after", "an integer from 1", lambda v: _int(v) and v >= 1),
    ("verdict", "a resume verdict", lambda v: v in {r.value for r in Resumed}),
    ("resumed_from", "an integer from 0 or null", lambda v: v is None or (_int(v) and v >= 0)),
)


def _first_problem(document: Mapping[str, Any]) -> str | None:
    """The first field that is missing or of the wrong type, as ``path: expected …, received …``."""
    found = _problem(document, _TOP, "")
    if found is not None:
        return found
    for key, value in document["config"].items():
        if not (value is None or _int(value)):
            return f"config.{key}: expected an integer or null, received {_describe(value)}"
    if "resume" in document:
        found = _problem(document["resume"], _RESUME, "resume.") if isinstance(document["resume"], dict) else None
        if not isinstance(document["resume"], dict):
            return f"resume: expected an object, received {_describe(document['resume'])}"
        if found is not None:
            return found
    for name, entry in document["models"].items():
        if not isinstance(entry, dict):
            return f"models.{name}: expected an object, received {_describe(entry)}"
        found = _problem(entry, _MODEL, f"models.{name}.")
        if found is not None:
            return found
        losses = entry.get("losses", [])
        pairs = isinstance(losses, list) and all(
            isinstance(p, list) and len(p) == 2 and _int(p[0]) and _number_or_null(p[1]) for p in losses
        )
        if not pairs:
            return f"models.{name}.losses: expected a list of [step, loss] pairs, received {_describe(losses)}"
    return None


def _problem(document: Mapping[str, Any], fields: Sequence[tuple[str, str, Check]], prefix: str) -> str | None:
    for key, expected, valid in fields:
        if key not in document:
            return f"{prefix}{key} is missing"
        if not valid(document[key]):
            return f"{prefix}{key}: expected {expected}, received {_describe(document[key])}"
    return None

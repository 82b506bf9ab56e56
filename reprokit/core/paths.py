"""The paths a user gives reprokit: inputs that must be regular files, outputs that must never destroy anything.

Every path is checked before it is opened and before any run: a FIFO would
block the read forever, a device would read without end, and an output path
that names the script, an input or a file the script's folder already held
would lose the user's work (a report written over ``train.py``). Everything
here raises :class:`~reprokit.core.errors.UsageError` (exit 2) with one line.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path

from reprokit.core.errors import UsageError

SOURCE_SUFFIXES = frozenset({".py", ".pyw", ".pyi", ".pyx", ".ipynb"})
"""Python sources: never an output."""

OURS = b"reprokit"
"""What every file reprokit writes (reports, baselines) holds near its start: such a file may be written again."""


def kind(path: Path) -> str | None:
    """What ``path`` is when it is not a regular file ("a FIFO (named pipe)", "a folder", …; None: a regular file).

    Symbolic links are followed; a missing path is "missing".
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "missing"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "not a regular file"


def require_file(path: Path, what: str) -> None:
    """Raises unless ``path`` is a readable regular file, saying what it is instead (``what``: "script", "baseline")."""
    found = kind(path)
    if found == "missing":
        raise UsageError(f"{what} not found: {path}")
    if found is not None:
        raise UsageError(f"expected the {what} to be a regular file, received {found}: {path}")
    if not os.access(path, os.R_OK):
        raise UsageError(f"the {what} is not readable: {path}")


def check_outputs(outputs: Sequence[Path], inputs: Iterable[Path] = (), folders: Iterable[Path] = ()) -> None:
    """Refuses, before any run, an output path that could not be written or would destroy a file.

    Args:
        outputs: the files the command will write.
        inputs: the files it reads (scripts, models, data, a baseline): never written over.
        folders: the folders of the scripts it runs. A file they held before
            the command may be written over only if reprokit wrote it (a report
            or baseline of an earlier run): never a data file the runs read.

    Raises:
        UsageError: an output is a Python source, an input, a folder or
            other non-regular file, a file of the script's folder that
            reprokit did not write, twice the same path, or lies in a folder
            that does not exist or cannot be written.
    """
    protected = {identity: p for p in inputs if (identity := _identity(p)) is not None}
    roots = [Path(f).resolve() for f in folders]
    seen: dict[Path, Path] = {}
    for output in outputs:
        resolved = output.resolve()
        if resolved in seen:
            raise UsageError(f"two outputs name the same file: {output}")
        seen[resolved] = output
        if output.suffix.lower() in SOURCE_SUFFIXES:
            raise UsageError(f"refusing to write a report to a Python source: {output} (name a .json, .md, … file)")
        identity = _identity(output)
        if identity is not None and identity in protected:
            raise UsageError(f"refusing to write over {protected[identity]}: the command reads it")
        found = kind(output)
        if found != "missing":
            if found is not None:
                raise UsageError(f"expected an output file, received {found}: {output}")
            if any(resolved.is_relative_to(root) for root in roots) and not _written_by_us(output):
                raise UsageError(
                    f"refusing to write over {output}: the script's folder held it before, and reprokit did not "
                    "write it (name a new file, or move it first)"
                )
        parent = resolved.parent
        if not parent.is_dir():
            raise UsageError(f"the folder of the output does not exist: {output.parent} (create it first)")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UsageError(f"the folder of the output cannot be written: {output.parent}")


def _identity(path: Path) -> tuple[int, int] | None:
    """The file's device and inode (the same file under any name), None when it does not exist."""
    try:
        found = os.stat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino)


def _written_by_us(path: Path) -> bool:
    """Whether a regular file's first 4 KiB mention reprokit (every report and baseline it writes does)."""
    try:
        with open(path, "rb") as f:
            return OURS in f.read(4096).lower()
    except OSError:
        return False

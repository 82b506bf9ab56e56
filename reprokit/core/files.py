"""Writing the files a user asked for: atomically, and as strict JSON."""

from __future__ import annotations

import json
import math
import os
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def json_text(document: Any) -> str:
    """Indented, strict JSON: non-finite floats (a NaN loss) become null."""
    return json.dumps(finite(document), indent=2, allow_nan=False) + "\n"


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float, however deeply nested, replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def write_atomic(path: Path, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` so that readers see the old or the new file, never half of one."""
    with atomic_file(path) as f:
        f.write(text.encode("utf-8"))


@contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """A binary file that replaces ``path`` whole when the block ends (and is removed if it fails).

    The file gets the mode any other tool would give it: that of the file it
    replaces, else 0666 less the user's umask (not the 0600 of a temporary file).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _mode_for(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_UMASK_LOCK = threading.Lock()


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        with _UMASK_LOCK:  # os.umask can only be read by setting it
            umask = os.umask(0o022)
            os.umask(umask)
        return 0o666 & ~umask

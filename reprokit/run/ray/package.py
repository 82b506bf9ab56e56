"""The files a run needs on another machine, and the files it sends back: tars made and unpacked.

:func:`package` makes the user's folder into one tar per command (Ray keeps
it in its object store); :func:`unpack` makes it a run's private folder on a
node; :func:`files_of` and :func:`extract` carry the files a run wrote back
to the parent (a later run may start among them, see
:func:`reprokit.run.workdirs.carry`).
"""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
from pathlib import Path

from reprokit.run.workdirs import LINKED_WHOLE, Mirror

PACKAGE_LIMIT = 512 << 20
"""Bytes of the user's folder sent to other machines at most (as Ray's own ``working_dir``)."""

FILES_BACK_LIMIT = 64 << 20
"""Bytes of written files a run sends back at most (a later run may start among them)."""


def package(folder: Path, script: Path, skip: Path | None = None) -> tuple[bytes, str]:
    """The user's folder as a tar for other machines, and the script's path inside it.

    Folders a run never needs mirrored (``.git``, virtual environments,
    caches: :data:`reprokit.run.workdirs.LINKED_WHOLE`) are left out; a script
    outside the folder is added as ``.reprokit-script/NAME``.

    Raises:
        ValueError: the folder holds more than :data:`PACKAGE_LIMIT` bytes.
    """
    buffer = io.BytesIO()
    total = 0
    skipped = {os.path.realpath(p) for p in (skip,) if p is not None}
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for base, dirs, files in os.walk(folder, followlinks=True):
            dirs[:] = sorted(
                d for d in dirs if d not in LINKED_WHOLE and os.path.realpath(os.path.join(base, d)) not in skipped
            )
            for name in sorted(files):
                path = Path(base) / name
                with contextlib.suppress(OSError):
                    total += path.stat().st_size
                    if total > PACKAGE_LIMIT:
                        raise ValueError(
                            f"{folder} holds more than {PACKAGE_LIMIT >> 20} MiB to send to the Ray cluster's "
                            "other machines: run reprokit from a folder that holds only what the script needs"
                        )
                    tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
        try:
            inside = script.resolve().relative_to(folder.resolve()).as_posix()
        except ValueError:
            inside = f".reprokit-script/{script.name}"
            tar.add(script, arcname=inside)
    return buffer.getvalue(), inside


def unpack(data: bytes, root: Path) -> Mirror:
    """Unpacks a :func:`package` into ``root``: the run's folder, every file its own copy."""
    extract(data, root)
    copied = {}
    for rel in relative_files(root):
        stat = (root / rel).stat()
        copied[rel] = (stat.st_size, stat.st_mtime_ns)
    return Mirror(root, root, copied)


def files_of(root: Path, written: tuple[str, ...]) -> bytes | None:
    """A tar of the files a run wrote (None beyond :data:`FILES_BACK_LIMIT`)."""
    if not written:
        return None
    total = sum((root / rel).stat().st_size for rel in written if (root / rel).is_file())
    if total > FILES_BACK_LIMIT:
        return None
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for rel in written:
            tar.add(root / rel, arcname=rel, recursive=False)
    return buffer.getvalue()


def extract(data: bytes, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        tar.extractall(root, filter="data")


def relative_files(root: Path) -> list[str]:
    return sorted(
        (Path(base) / name).relative_to(root).as_posix() for base, _, files in os.walk(root) for name in files
    )

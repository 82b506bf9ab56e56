"""A private working folder per run: the user's files visible, the run's writes kept apart.

A run starts in a folder of its own that mirrors the user's current
directory, so that data read by relative paths is found, while what the run
writes (checkpoints, logs, saved models) lands in its own folder: runs of one
check never see each other's outputs, and nothing is left in the user's tree.
Folders are recreated; small files are copied, so that a run that rewrites
one (a log it appends to, a checkpoint it overwrites) rewrites its own copy;
large files and folders beyond a budget (data sets, virtual environments,
``.git``) are linked and read where they lie. Afterwards :func:`changes` lists
what the run wrote, and which linked files of the user's it changed (a link
cannot stop that; the report says so).

The script itself runs from its copy in the mirror (its own folder is mirrored
too when it is not below the current one), so writes relative to the script
(``Path(__file__).parent / ...``) land in the run's folder as well.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

COPY_LIMIT = 1 << 20
"""Files up to this size (1 MiB) are copied into a run's folder; larger ones are linked."""

COPY_BUDGET = 32 << 20
"""Bytes copied into one run's folder at most; files beyond it are linked."""

ENTRY_BUDGET = 5000
"""Entries mirrored one by one at most; folders beyond it are linked whole."""

LINKED_WHOLE = frozenset(
    {".git", ".hg", ".svn", "__pycache__", ".venv", "venv", ".tox", "node_modules", ".mypy_cache", ".pytest_cache"}
    | {".ruff_cache", ".import_linter_cache", ".ipynb_checkpoints"}
)
"""Folders never mirrored file by file (only read, if at all)."""


@dataclass(frozen=True)
class Mirror:
    """A run's private folder and what it held when the run started.

    Attributes:
        root: the folder the run starts in.
        source: the user's folder it mirrors.
        copied: relative path -> (size, mtime_ns) of every copied file.
        linked: relative path -> (size, mtime_ns) of every linked file of the user's.
    """

    root: Path
    source: Path
    copied: dict[str, tuple[int, int]] = field(default_factory=dict)
    linked: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Changes:
    """What a run did to the files around it.

    Attributes:
        written: files the run created or changed in its folder (relative, sorted).
        user_files_changed: files of the user's, linked into the run's folder,
            that the run changed (relative to the user's folder, sorted).
    """

    written: tuple[str, ...] = ()
    user_files_changed: tuple[str, ...] = ()


def mirror(source: Path, root: Path, skip: Path | None = None) -> Mirror:
    """Makes ``root`` a private mirror of the folder ``source`` (see the module docstring).

    ``skip`` (the check's own folder, where the runs' mirrors live) is never
    mirrored, should it lie below ``source``: a run must not see another's.
    """
    root.mkdir(parents=True, exist_ok=True)
    result = Mirror(root, source)
    budget = {"bytes": COPY_BUDGET}
    for rel, entry, walked in _walk(source, skip, root):
        target = root / rel
        try:
            if walked:
                target.mkdir()
            elif entry.is_dir(follow_symlinks=True):
                target.symlink_to(entry.path, target_is_directory=True)
            elif entry.is_file(follow_symlinks=True):
                _file(entry, target, rel.as_posix(), result, budget)
        except OSError:
            continue  # a special file, a broken link, a race with the user: not mirrored
    return result


def listing(source: Path, skip: Path | None = None) -> tuple[tuple[str, int, int], ...]:
    """What a run sees of ``source``: each file a mirror would walk to, as (relative path, size, mtime_ns).

    The walk of :func:`mirror`, copying nothing: folders it links whole
    (``.git``, environments, caches, linked folders and those beyond
    :data:`ENTRY_BUDGET`) are not walked, and ``skip`` (a study folder below
    ``source``) is left out. Cheap (a ``stat`` per file), so a study can tell
    whether the files its stored runs read have changed since.
    """
    found: list[tuple[str, int, int]] = []
    for rel, entry, walked in _walk(source, skip):
        try:
            if not walked and entry.is_file(follow_symlinks=True):
                stat = entry.stat(follow_symlinks=True)
                found.append((rel.as_posix(), stat.st_size, stat.st_mtime_ns))
        except OSError:
            continue
    return tuple(found)


def _walk(source: Path, *skip: Path | None) -> Iterator[tuple[Path, os.DirEntry[str], bool]]:
    """Every entry of ``source`` a mirror reaches, breadth first in name order: (relative path, entry, walked).

    ``walked``: a folder whose entries follow (the others, beyond
    :data:`ENTRY_BUDGET` entries, in :data:`LINKED_WHOLE` or links, are linked
    whole). ``skip`` (and what lies below) is left out; unreadable folders too.
    """
    skipped = {Path(os.path.realpath(p)) for p in skip if p is not None}
    entries_left = ENTRY_BUDGET
    queue = [Path(".")]
    while queue:
        relative = queue.pop(0)
        try:
            entries = sorted(os.scandir(source / relative), key=lambda e: e.name)
        except OSError:
            continue  # unreadable: the run will not see it either
        for entry in entries:
            if Path(os.path.realpath(entry.path)) in skipped:
                continue
            entries_left -= 1
            try:
                walked = entry.is_dir(follow_symlinks=True) and not (
                    entry.name in LINKED_WHOLE or entry.is_symlink() or entries_left < 0
                )
            except OSError:
                continue
            if walked:
                queue.append(relative / entry.name)
            yield relative / entry.name, entry, walked


def _file(entry: os.DirEntry[str], target: Path, rel: str, result: Mirror, budget: dict[str, int]) -> None:
    stat = entry.stat(follow_symlinks=True)
    if stat.st_size <= COPY_LIMIT and stat.st_size <= budget["bytes"] and not entry.is_symlink():
        shutil.copy2(entry.path, target)
        budget["bytes"] -= stat.st_size
        copied = target.stat()
        result.copied[rel] = (copied.st_size, copied.st_mtime_ns)
    else:
        target.symlink_to(entry.path)
        result.linked[rel] = (stat.st_size, stat.st_mtime_ns)


def changes(mirrored: Mirror) -> Changes:
    """What the run wrote into its folder, and which linked files of the user's it changed."""
    written = []
    for path in _files(mirrored.root):  # a linked file the run replaced is its own file now
        rel = path.relative_to(mirrored.root).as_posix()
        stat = path.stat()
        if mirrored.copied.get(rel) != (stat.st_size, stat.st_mtime_ns):
            written.append(rel)
    touched = []
    for rel, before in mirrored.linked.items():
        try:
            stat = (mirrored.source / rel).stat()
        except OSError:
            continue
        if (stat.st_size, stat.st_mtime_ns) != before:
            touched.append(rel)
    return Changes(tuple(sorted(written)), tuple(sorted(touched)))


def carry(written: tuple[str, ...], from_root: Path, to_root: Path) -> None:
    """Copies what one run wrote into another run's folder (a second training in the same folder)."""
    for rel in written:
        target = to_root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        shutil.copy2(from_root / rel, target)


def _files(root: Path) -> Iterator[Path]:
    """Every regular file below ``root``, links to the user's files and folders not followed."""
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
        for name in files:
            path = base / name
            if not path.is_symlink() and path.is_file():
                yield path

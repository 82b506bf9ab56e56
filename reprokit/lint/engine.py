"""``reprokit lint``: runs the selected rules of the registry over Python files and returns the findings.

The rules live in :mod:`reprokit.lint.rules` (see :data:`~reprokit.lint.rules.REGISTRY`).
Precision matters more than recall: a rule fires only on patterns that are a
hazard wherever they appear, never on code that is merely suspicious.
A line ending in ``# reprokit: ignore`` (all rules) or
``# reprokit: ignore[RK101,RK105]`` is skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprokit.core.errors import UsageError
from reprokit.core.paths import kind, require_file
from reprokit.core.vocabulary import Source
from reprokit.lint.registry import Rule
from reprokit.lint.rules import REGISTRY

__all__ = ["GPU_ONLY", "RULES", "LintFinding", "Rule", "hazards_for", "lint_paths", "lint_source", "python_files"]

RULES = REGISTRY.rules
"""Every rule, in code order (the registry's)."""

GPU_ONLY = frozenset(rule.code for rule in REGISTRY if rule.gpu_only)
"""The rules whose hazard only exists on a GPU (RK2xx): on CPU they cause no difference."""


@dataclass(frozen=True)
class LintFinding:
    """One hazard at one place in a file."""

    code: str
    path: str
    line: int
    col: int
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message} Fix: {self.fix}"


def hazards_for(source: Source, findings: Iterable[LintFinding]) -> list[LintFinding]:
    """The lint findings whose hazard shows up as ``source`` when the script runs (its likely causes).

    GPU-only hazards (RK2xx) come after the others: on CPU they cause nothing.
    """
    rules = {rule.code: rule for rule in REGISTRY}
    causes = [f for f in findings if f.code in rules and rules[f.code].source == source]
    return sorted(causes, key=lambda f: rules[f.code].gpu_only)


_IGNORE = re.compile(r"#\s*reprokit:\s*ignore(?:\[([A-Z0-9,\s]+)\])?")


def lint_source(
    source: str, path: str = "<string>", select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> list[LintFinding]:
    """Lints Python source text.

    Args:
        source: the module's source.
        path: the name findings carry.
        select: only these rule codes or prefixes (``RK1``, ``RK205``; all when empty).
        ignore: never these rule codes or prefixes (the more specific of the two wins).

    Raises:
        UsageError: the source does not parse, or a code is unknown.
    """
    return _lint(source, path, REGISTRY.select(select, ignore))


def _lint(source: str, path: str, rules: Iterable[Rule]) -> list[LintFinding]:
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise UsageError(f"cannot lint {path}: syntax error at line {e.lineno}: {e.msg}") from None
    lines = source.splitlines()
    found = set()
    for rule in rules:
        for node, message, fix in rule.detect(tree):
            line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
            if not _ignored(lines, line, rule.code):
                found.add(LintFinding(rule.code, path, line, col, message, fix))
    return sorted(found, key=lambda f: (f.line, f.col, f.code))


def _ignored(lines: Sequence[str], line: int, code: str) -> bool:
    match = _IGNORE.search(lines[line - 1]) if 0 < line <= len(lines) else None
    if match is None:
        return False
    codes = match.group(1)
    return codes is None or code in {c.strip() for c in codes.split(",")}


def python_files(paths: Iterable[Path]) -> list[Path]:
    """The .py files named or below the folders named, sorted (only regular files).

    Raises:
        UsageError: a path is missing, or names a FIFO, device or other file that is not a regular file.
    """
    files: list[Path] = []
    for path in paths:
        found = kind(path)
        if found == "a folder":
            below = path.rglob("*.py")
            # a FIFO or device named *.py in a folder is not a source: skipped (reading it would block)
            files += sorted(p for p in below if not any(part.startswith(".") for part in p.parts) and kind(p) is None)
        elif found == "missing":
            raise UsageError(f"no such file or folder: {path}")
        else:
            require_file(path, "file to lint")
            files.append(path)
    return files


def lint_paths(paths: Iterable[Path], select: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[LintFinding]:
    """Lints every Python file named or found below the folders named.

    Args:
        paths: files and folders.
        select: only these rule codes or prefixes (all when empty).
        ignore: never these rule codes or prefixes.

    Raises:
        UsageError: a code or prefix is unknown (before any file is read), a
            path is missing, a file cannot be read or does not parse.
    """
    rules = REGISTRY.select(select, ignore)
    found = []
    for file in python_files(paths):
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {file}: {e}") from None
        found += _lint(source, str(file), rules)
    return found

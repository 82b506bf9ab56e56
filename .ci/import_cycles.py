"""Fails when reprokit's modules import each other in a circle.

Every ``import`` statement under ``reprokit/`` counts: at module level, inside
functions and under ``TYPE_CHECKING`` alike, so a circle cannot hide behind a
lazy or type-only import. import-linter's layers contract (pyproject.toml)
orders the packages; this script also covers the modules inside one package.

Usage: ``python .ci/import_cycles.py [PACKAGE_DIR]`` (default: ``reprokit``).
Prints each circle and exits 1, or prints a one-line summary and exits 0.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path


def modules(root: Path) -> dict[str, Path]:
    """Every module of the package at ``root``, by dotted name (a package by its own name)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """The package's own modules that ``name`` imports, with the line of each import."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from _known(alias.name, node.lineno, known)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield from _known(submodule if submodule in known else base, node.lineno, known)


def _known(target: str, line: int, known: dict[str, Path]) -> Iterator[tuple[str, int]]:
    while target and target not in known:  # ``import reprokit.run.trace`` names a module; a name in it
        target = target.rpartition(".")[0]
    if target:
        yield target, line


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "reprokit")
    known = modules(root)
    graph: dict[str, set[str]] = {name: set() for name in known}
    lines: dict[tuple[str, str], int] = {}
    for name, path in known.items():
        for target, line in imports(name, path, known):
            if target != name:
                graph[name].add(target)
                lines.setdefault((name, target), line)
    found = cycles(graph)
    for component in found:
        members = set(component)
        print(f"import circle among {len(component)} modules:")
        for a in component:
            for b in sorted(graph[a] & members):
                print(f"  {a} -> {b} (line {lines[(a, b)]})")
    if found:
        return 1
    edges = sum(len(targets) for targets in graph.values())
    print(f"no import circle: {len(known)} modules, {edges} imports between them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

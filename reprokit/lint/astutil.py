"""The AST helpers the rules share: dotted names, calls, arguments, parents, imports, environment writes."""

from __future__ import annotations

import ast
from collections.abc import Iterator


def dotted_name(node: ast.AST) -> str:
    """The dotted name of a Name/Attribute chain (``np.random.default_rng``), else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = dotted_name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def callee(call: ast.Call) -> str:
    """The called function's own name: ``interleave`` for ``ds.range(8).interleave(...)``."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return dotted_name(call.func) or "this call"


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    """Every call in ``tree``, ``tree`` itself included, in :func:`ast.walk` order."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def no_seed(call: ast.Call) -> bool:
    """True when a generator constructor gets no seed (or an explicit None)."""
    seed = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "seed"), None)
    return seed is None or (isinstance(seed, ast.Constant) and seed.value is None)


def named(name: str, *suffixes: str) -> bool:
    """True when the dotted ``name`` is one of ``suffixes`` or ends in ``.`` + one of them."""
    return any(name == s or name.endswith("." + s) for s in suffixes)


def is_false(node: ast.AST | None) -> bool:
    """The literal ``False``."""
    return isinstance(node, ast.Constant) and node.value is False


def argument(call: ast.Call, keyword: str, position: int) -> ast.expr | None:
    """The argument given as ``keyword=`` or at ``position`` (not a ``*args``), else None."""
    value = next((k.value for k in call.keywords if k.arg == keyword), None)
    if value is None and len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        value = call.args[position]
    return value


def parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    """Each node's parent."""
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def ancestors(node: ast.AST, parent_of: dict[ast.AST, ast.AST]) -> Iterator[ast.AST]:
    """The node's parent, its parent's parent, … up to the module."""
    while node in parent_of:
        node = parent_of[node]
        yield node


def names_in(node: ast.AST) -> set[str]:
    """Every plain name ``node`` mentions."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def stored_names(target: ast.expr) -> set[str]:
    """The plain names an assignment target binds (``a`` and ``b`` of ``a, *b = ...``; none of ``x[i] = ...``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Starred):
        return stored_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(stored_names(t) for t in target.elts))
    return set()


def import_aliases(tree: ast.Module) -> dict[str, str]:
    """Local name -> dotted origin for every absolute import (``import tensorflow as tf`` -> tf: tensorflow)."""
    aliases: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                head = alias.name.split(".")[0]
                aliases[alias.asname or head] = alias.name if alias.asname else head
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return aliases


def environment_writes(tree: ast.Module) -> Iterator[tuple[ast.stmt | ast.expr, str, ast.expr | None]]:
    """``(node, variable, value)`` for each ``os.environ[...] =``, ``os.environ.setdefault`` and ``os.putenv``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and dotted_name(target.value) == "os.environ":
                    key = target.slice
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        yield node, key.value, node.value
        elif (
            isinstance(node, ast.Call)
            and dotted_name(node.func) in ("os.environ.setdefault", "os.putenv")
            and node.args
        ):
            key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield node, key.value, node.args[1] if len(node.args) > 1 else None

"""Whether the order in which something is iterated can reach a result (the ordering rules' analysis).

An iterable is *iterated in order* when it is turned into a sequence
(``list()``, ``tuple()``, ``enumerate``, ``zip``, ``np.array``,
``from_tensor_slices``), consumed by a list comprehension or generator (unless
``sorted()``, ``set()``, ``len()``, ``sum()``, ``any()``, ``all()``, ``min()``
or ``max()`` consumes that), or looped over by a ``for`` loop whose body lets
the order through (see :func:`order_free_loop`). A set or dict comprehension
is not.
"""

from __future__ import annotations

import ast

from reprokit.lint.astutil import ancestors, dotted_name, named, names_in, stored_names

ORDERED_CONSUMERS = ("list", "tuple", "enumerate", "zip", "np.array", "numpy.array", "from_tensor_slices")
ORDER_FREE_CONSUMERS = ("sorted", "set", "frozenset", "len", "sum", "any", "all", "min", "max")

# A loop over a listing is a hazard unless every statement of its body is order-free (order_free_loop).
ORDER_FREE_FUNCTIONS = (
    "os.remove",
    "os.unlink",
    "os.rmdir",
    "os.removedirs",
    "os.chmod",
    "os.rename",
    "os.replace",
    "shutil.rmtree",
    "shutil.copy",
    "shutil.copy2",
    "shutil.copyfile",
    "shutil.move",
    "print",
    "warnings.warn",
)
ORDER_FREE_METHODS = ("unlink", "rmdir", "add", "discard", "update", "remove")  # Path clean-up, set and dict updates
LOG_METHODS = ("debug", "info", "warning", "warn", "error", "exception", "critical", "log")
ORDERED_METHODS = (  # anywhere in the body, even inside an expression, they let the order through
    "append",
    "extend",
    "insert",
    "appendleft",
    "extendleft",
    "write",
    "writerow",
    "writerows",
    "writelines",
    "fit",
    "train_on_batch",
    "apply_gradients",
    "minimize",
)


def iterated_in_order(node: ast.AST, parent_of: dict[ast.AST, ast.AST]) -> bool:
    """True when ``node``'s iteration order can reach a result: see the module's docstring."""
    parent = parent_of.get(node)
    if isinstance(parent, ast.For | ast.AsyncFor) and parent.iter is node:
        return not order_free_loop(parent)
    if isinstance(parent, ast.comprehension) and parent.iter is node:
        comprehension = parent_of.get(parent)
        if isinstance(comprehension, ast.SetComp | ast.DictComp):
            return False
        consumer = parent_of.get(comprehension) if comprehension is not None else None
        return not (
            isinstance(consumer, ast.Call)
            and comprehension in consumer.args
            and dotted_name(consumer.func) in ORDER_FREE_CONSUMERS
        )
    if isinstance(parent, ast.Call) and node in parent.args:
        return dotted_name(parent.func).split(".")[-1] in {c.split(".")[-1] for c in ORDERED_CONSUMERS}
    return False


def assigned_then_iterated(node: ast.AST, parent_of: dict[ast.AST, ast.AST], tree: ast.AST) -> bool:
    """``files = os.listdir(d)`` later iterated in order, never sorted in between."""
    parent = parent_of.get(node)
    if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)):
        return False
    variable = parent.targets[0].id
    scope = next((p for p in ancestors(parent, parent_of) if isinstance(p, ast.FunctionDef | ast.Module)), tree)
    uses = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == variable and isinstance(n.ctx, ast.Load)]
    for use in uses:
        holder = parent_of.get(use)
        if isinstance(holder, ast.Call) and dotted_name(holder.func) == "sorted":
            return False
        if isinstance(holder, ast.Attribute) and holder.attr == "sort":
            return False
    return any(iterated_in_order(use, parent_of) for use in uses)


def order_free_loop(loop: ast.For | ast.AsyncFor) -> bool:
    """True when a ``for`` loop's result cannot depend on the order it visits its items in.

    The rule, statement by statement (conditions of ``if``/``while`` and the
    items of ``with`` are not judged; nested blocks are judged the same way):

    * order-free: a call, as a statement, of ``os.remove``/``unlink``/``rmdir``/
      ``removedirs``/``chmod``/``rename``/``replace``, ``shutil.rmtree``/
      ``copy``/``copy2``/``copyfile``/``move``, ``print``, a logger method,
      ``warnings.warn``, or a ``.unlink()``/``.rmdir()``/``.add()``/
      ``.discard()``/``.update()``/``.remove()`` method; an assignment to a
      name or attribute; ``x += value`` (counting, summing); ``d[key] = value``
      where the key comes from the loop variable and the value mentions neither
      ``d`` nor a counter of the loop (``x += ...``); ``pass``, ``continue``,
      ``raise``, ``del``, ``assert``, imports, definitions; ``break`` inside a
      nested loop.
    * order-sensitive: any other call as a statement (``load(name)``,
      ``paths.append(p)``, ``model.fit(...)``, ``out.write(...)``); ``yield``,
      ``await``; ``break`` or ``return`` (the first match wins); ``x += [..]``
      or ``x += "..."`` (concatenation); ``seq[i] = ...`` with a key not taken
      from the loop variable (a counter); ``d[name] = len(d)``; and a call of
      ``.append()``/``.extend()``/``.insert()``/``.write()``/``.fit()``/
      ``.train_on_batch()``/``.apply_gradients()``/``.minimize()`` anywhere.
    """
    for node in ast.walk(ast.Module(body=[*loop.body, *loop.orelse], type_ignores=[])):
        if isinstance(node, ast.Yield | ast.YieldFrom | ast.Await):
            return False
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ORDERED_METHODS:
            return False
    derived = names_in(loop.target)
    counters = {n.target.id for n in ast.walk(loop) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
    for _ in range(2):  # names computed from the loop variable (path = os.path.join(folder, name))
        for node in ast.walk(loop):
            if isinstance(node, ast.Assign) and names_in(node.value) & derived:
                for target in node.targets:
                    derived |= stored_names(target)
    return all(_order_free(statement, derived, counters, nested=False) for statement in [*loop.body, *loop.orelse])


def _order_free(statement: ast.stmt, derived: set[str], counters: set[str], nested: bool) -> bool:
    if isinstance(statement, ast.Expr):
        return not isinstance(statement.value, ast.Call) or _order_free_call(statement.value)
    if isinstance(statement, ast.Assign | ast.AnnAssign):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        return all(_order_free_store(t, statement.value, derived, counters) for t in targets)
    if isinstance(statement, ast.AugAssign):
        concatenates = isinstance(statement.value, ast.List | ast.Tuple | ast.ListComp | ast.JoinedStr) or (
            isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str | bytes)
        )
        return not concatenates
    if isinstance(statement, ast.Break):
        return nested
    if isinstance(statement, ast.Return):
        return False
    blocks: list[tuple[list[ast.stmt], bool]] = []
    if isinstance(statement, ast.For | ast.AsyncFor | ast.While):
        blocks = [(statement.body, True), (statement.orelse, nested)]
    elif isinstance(statement, ast.If):
        blocks = [(statement.body, nested), (statement.orelse, nested)]
    elif isinstance(statement, ast.With | ast.AsyncWith):
        blocks = [(statement.body, nested)]
    elif isinstance(statement, ast.Try):
        blocks = [(statement.body, nested), (statement.orelse, nested), (statement.finalbody, nested)]
        blocks += [(handler.body, nested) for handler in statement.handlers]
    elif isinstance(statement, ast.Match):
        blocks = [(case.body, nested) for case in statement.cases]
    return all(_order_free(s, derived, counters, inner) for block, inner in blocks for s in block)


def _order_free_call(call: ast.Call) -> bool:
    name = dotted_name(call.func)
    if named(name, *ORDER_FREE_FUNCTIONS):
        return True
    if isinstance(call.func, ast.Attribute):
        receiver = dotted_name(call.func.value).split(".")[-1].lower()
        if call.func.attr in ORDER_FREE_METHODS:
            return True
        return call.func.attr in LOG_METHODS and "log" in receiver
    return False


def _order_free_store(target: ast.expr, value: ast.expr | None, derived: set[str], counters: set[str]) -> bool:
    if isinstance(target, ast.Subscript):
        container = names_in(target.value)
        mentioned = names_in(value) if value is not None else set()
        return bool(names_in(target.slice) & derived) and not mentioned & (container | counters)
    if isinstance(target, ast.Tuple | ast.List):
        return all(_order_free_store(t, None, derived, counters) for t in target.elts)
    return True

"""``reprokit lint``: reproducibility hazards found in the source, without running it.

Each rule is a small function over a parsed module that yields
:class:`LintFinding` s; rules are registered in ``RULES`` with their code.
Precision matters more than recall: a rule fires only on patterns that are a
hazard wherever they appear, never on code that is merely suspicious.
A line ending in ``# reprokit: ignore`` (all rules) or
``# reprokit: ignore[RK101,RK105]`` is skipped.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprokit.core.errors import UsageError
from reprokit.core.vocabulary import Source


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


@dataclass(frozen=True)
class Rule:
    """A lint rule.

    Attributes:
        code: ``RK101`` etc.
        title: what it finds, in a few words.
        check: yields ``(node, message, fix)`` for each hazard in a module.
        source: the source of differences its hazard shows up as when the
            script runs (None: not linked, e.g. file order, which is stable
            between runs on one file system).
    """

    code: str
    title: str
    check: Callable[[ast.Module], Iterator[tuple[ast.AST, str, str]]]
    source: Source | None = None


def _name(node: ast.AST) -> str:
    """The dotted name of a Name/Attribute chain (``np.random.default_rng``), else ""."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _name(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _callee(call: ast.Call) -> str:
    """The called function's own name: ``interleave`` for ``ds.range(8).interleave(...)``."""
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return _name(call.func) or "this call"


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def _no_seed(call: ast.Call) -> bool:
    """True when a generator constructor gets no seed (or an explicit None)."""
    seed = call.args[0] if call.args else next((k.value for k in call.keywords if k.arg == "seed"), None)
    return seed is None or (isinstance(seed, ast.Constant) and seed.value is None)


def _is(name: str, *suffixes: str) -> bool:
    return any(name == s or name.endswith("." + s) for s in suffixes)


UNSEEDED = ("default_rng", "RandomState", "SeedSequence")  # NumPy generators seeded from OS entropy by default


def unseeded_generators(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for call in _calls(tree):
        name = _name(call.func)
        last = name.split(".")[-1]
        if last in UNSEEDED and (name == last or name.endswith("random." + last)):
            if _no_seed(call) and name.split(".")[0] not in ("tf", "tensorflow"):
                yield call, f"{name}() without a seed draws fresh OS entropy in every run.", f"{last}(seed)"
        elif name in ("random.Random", "Random") and _no_seed(call):
            yield call, "random.Random() without a seed is seeded from OS entropy.", "random.Random(seed)"
        elif _is(name, "random.Generator") and call.args and isinstance(call.args[0], ast.Call):
            bit = call.args[0]
            if _is(_name(bit.func), "PCG64", "MT19937", "Philox", "SFC64", "PCG64DXSM") and _no_seed(bit):
                yield bit, f"{_name(bit.func)}() without a seed draws fresh OS entropy.", f"{_name(bit.func)}(seed)"


def non_deterministic_state(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for call in _calls(tree):
        if _name(call.func).endswith("Generator.from_non_deterministic_state"):
            yield (
                call,
                "tf.random.Generator.from_non_deterministic_state() is seeded from OS entropy.",
                "tf.random.Generator.from_seed(seed)",
            )


ENTROPY = ("time.time", "time.time_ns", "time.perf_counter", "time.monotonic", "os.urandom", "uuid.uuid4", "uuid.uuid1")
SEED_TAKERS = (
    "seed",
    "set_seed",
    "set_random_seed",
    "default_rng",
    "RandomState",
    "Random",
    "from_seed",
    "manual_seed",
)


def clock_seeds(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for call in _calls(tree):
        name = _name(call.func)
        takes_seed = name.split(".")[-1] in SEED_TAKERS
        arguments = [*call.args[:1]] if takes_seed else []
        arguments += [k.value for k in call.keywords if k.arg == "seed"]
        for argument in arguments:
            source = next((n for n in _calls(argument) if _entropy(_name(n.func))), None)
            if source is not None:
                yield (
                    call,
                    f"the seed comes from {_name(source.func)}(), so every run gets another one.",
                    "use a fixed seed (or record the one you draw and pass it back to replay)",
                )


def _entropy(name: str) -> bool:
    return name in ENTROPY or name.startswith("secrets.") or _is(name, "datetime.now", "datetime.utcnow")


def non_deterministic_options(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for call in _calls(tree):
        for keyword in call.keywords:
            if keyword.arg == "deterministic" and _false(keyword.value):
                yield (
                    keyword.value,
                    f"{_callee(call)}(deterministic=False) lets tf.data reorder elements by thread timing.",
                    "remove deterministic=False (or enable op determinism)",
                )
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _false(node.value):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in ("deterministic", "experimental_deterministic"):
                    yield (
                        target,
                        f"options.{target.attr} = False lets tf.data reorder elements by thread timing.",
                        f"remove the assignment (the default {target.attr}=True keeps the order)",
                    )


def parallel_random_maps(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """``ds.map(f, num_parallel_calls=...)`` where ``f`` draws random numbers from shared state.

    ``f`` is a lambda or a function of the module whose body calls
    ``tf.random.*`` (not ``stateless_*``), ``tf.image.random_*``, builds a
    Keras ``Random*`` layer, or calls a name the module binds to a value built
    from one (``augment = keras.Sequential([layers.RandomFlip(...)])``). The
    parallel calls keep the order of the elements but not which element gets
    which draw (measured: 6 of 6 seeded runs differ).
    """
    functions = {node.name: node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    random_names = {
        target.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and any(_random_layer(c) for c in _calls(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for call in _calls(tree):
        if not (isinstance(call.func, ast.Attribute) and call.func.attr == "map" and call.args):
            continue
        parallel = next((k.value for k in call.keywords if k.arg == "num_parallel_calls"), None)
        parallel = parallel if parallel is not None else (call.args[1] if len(call.args) > 1 else None)
        if parallel is None or (isinstance(parallel, ast.Constant) and parallel.value in (None, 1)):
            continue
        function = call.args[0]
        body: ast.AST | None = function if isinstance(function, ast.Lambda) else None
        if isinstance(function, ast.Name):
            body = functions.get(function.id)
        if body is not None and _draws_random(body, random_names):
            yield (
                call,
                "map(..., num_parallel_calls=...) runs a function that draws random numbers in parallel: "
                "which element gets which draw changes from run to run.",
                "enable op determinism, or apply random augmentation inside the model (its layers run in order)",
            )


def _random_layer(call: ast.Call) -> bool:
    return bool(re.fullmatch(r"Random[A-Z]\w*", _name(call.func).split(".")[-1]))


def _draws_random(body: ast.AST, random_names: set[str]) -> bool:
    for call in _calls(body):
        name = _name(call.func)
        last = name.split(".")[-1]
        if _random_layer(call) or name in random_names:
            return True
        if (
            ".random." in f".{name}"
            and name.split(".")[0] in ("tf", "tensorflow")
            and not last.startswith(("stateless", "set_seed", "Generator"))
        ):
            return True
        if _is(name, "image." + last) and last.startswith("random_"):
            return True
    return False


def _false(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


LISTINGS = ("os.listdir", "os.scandir", "glob.glob", "glob.iglob", "gfile.glob", "gfile.listdir")
PATH_LISTINGS = ("glob", "rglob", "iterdir")
ORDERED_CONSUMERS = ("list", "tuple", "enumerate", "zip", "np.array", "numpy.array", "from_tensor_slices")
ORDER_FREE_CONSUMERS = ("sorted", "set", "frozenset", "len", "sum", "any", "all", "min", "max")


def unsorted_listings(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK105: a file listing whose file-system order can flow into data or training.

    A listing (or a variable assigned from it and never sorted) is a hazard when
    it is consumed in order: by ``list()``, ``tuple()``, ``enumerate``, ``zip``,
    ``np.array``, ``from_tensor_slices``, a list comprehension or generator
    (unless ``sorted()``, ``set()``, ``len()``, ``sum()``, ``any()``, ``all()``,
    ``min()`` or ``max()`` consumes it), or a ``for`` loop whose body lets the
    order through (see :func:`_order_free_loop`). A set or dict comprehension
    and a loop that only deletes, counts, logs or files things by name are not.
    """
    parents = _parents(tree)
    for call in _calls(tree):
        name = _name(call.func)
        is_listing = _is(name, *LISTINGS) or (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in PATH_LISTINGS
            and not _is(name, "glob.glob", "gfile.glob")
            and _looks_like_path(call.func.value)
        )
        if not is_listing:
            continue
        if _iterated_in_order(call, parents) or _assigned_then_iterated(call, parents, tree):
            shown = _callee(call)
            yield (
                call,
                f"{shown}() returns files in file-system order, which differs between machines.",
                f"sorted({ast.unparse(call)})",
            )
    for call in _calls(tree):
        if _name(call.func).endswith("Dataset.list_files"):
            keywords = {k.arg: k.value for k in call.keywords}
            shuffled = not _false(keywords.get("shuffle", ast.Constant(True)))
            if shuffled and "seed" not in keywords:
                yield (
                    call,
                    "Dataset.list_files() shuffles the files with an unseeded shuffle by default.",
                    "Dataset.list_files(pattern, shuffle=False) or pass seed=",
                )


def _looks_like_path(node: ast.AST) -> bool:
    """A receiver that is plausibly a pathlib.Path (``Path(...)``, ``x / "y"``, a *path/dir name)."""
    if isinstance(node, ast.Call):
        return _is(_name(node.func), "Path", "PurePath", "pathlib.Path")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return True
    name = _name(node).lower()
    return any(word in name.split(".")[-1] for word in ("path", "dir", "root", "folder"))


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _iterated_in_order(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    """True when ``node``'s iteration order can reach a result: see :func:`unsorted_listings`."""
    parent = parents.get(node)
    if isinstance(parent, ast.For | ast.AsyncFor) and parent.iter is node:
        return not _order_free_loop(parent)
    if isinstance(parent, ast.comprehension) and parent.iter is node:
        comprehension = parents.get(parent)
        if isinstance(comprehension, ast.SetComp | ast.DictComp):
            return False
        consumer = parents.get(comprehension) if comprehension is not None else None
        return not (
            isinstance(consumer, ast.Call)
            and comprehension in consumer.args
            and _name(consumer.func) in ORDER_FREE_CONSUMERS
        )
    if isinstance(parent, ast.Call) and node in parent.args:
        return _name(parent.func).split(".")[-1] in {c.split(".")[-1] for c in ORDERED_CONSUMERS}
    return False


# A loop over a listing is a hazard unless every statement of its body is order-free (_order_free_loop).
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


def _order_free_loop(loop: ast.For | ast.AsyncFor) -> bool:
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
    derived = _names_in(loop.target)
    counters = {n.target.id for n in ast.walk(loop) if isinstance(n, ast.AugAssign) and isinstance(n.target, ast.Name)}
    for _ in range(2):  # names computed from the loop variable (path = os.path.join(folder, name))
        for node in ast.walk(loop):
            if isinstance(node, ast.Assign) and _names_in(node.value) & derived:
                for target in node.targets:
                    derived |= _stored_names(target)
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
    name = _name(call.func)
    if _is(name, *ORDER_FREE_FUNCTIONS):
        return True
    if isinstance(call.func, ast.Attribute):
        receiver = _name(call.func.value).split(".")[-1].lower()
        if call.func.attr in ORDER_FREE_METHODS:
            return True
        return call.func.attr in LOG_METHODS and "log" in receiver
    return False


def _order_free_store(target: ast.expr, value: ast.expr | None, derived: set[str], counters: set[str]) -> bool:
    if isinstance(target, ast.Subscript):
        container = _names_in(target.value)
        mentioned = _names_in(value) if value is not None else set()
        return bool(_names_in(target.slice) & derived) and not mentioned & (container | counters)
    if isinstance(target, ast.Tuple | ast.List):
        return all(_order_free_store(t, None, derived, counters) for t in target.elts)
    return True


def _names_in(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _stored_names(target: ast.expr) -> set[str]:
    """The plain names an assignment target binds (``a`` and ``b`` of ``a, *b = ...``; none of ``x[i] = ...``)."""
    if isinstance(target, ast.Name):
        return {target.id}
    if isinstance(target, ast.Starred):
        return _stored_names(target.value)
    if isinstance(target, ast.Tuple | ast.List):
        return set().union(*(_stored_names(t) for t in target.elts))
    return set()


def _assigned_then_iterated(node: ast.AST, parents: dict[ast.AST, ast.AST], tree: ast.AST) -> bool:
    """``files = os.listdir(d)`` later iterated in order, never sorted in between."""
    parent = parents.get(node)
    if not (isinstance(parent, ast.Assign) and len(parent.targets) == 1 and isinstance(parent.targets[0], ast.Name)):
        return False
    variable = parent.targets[0].id
    scope = next((p for p in _ancestors(parent, parents) if isinstance(p, ast.FunctionDef | ast.Module)), tree)
    uses = [n for n in ast.walk(scope) if isinstance(n, ast.Name) and n.id == variable and isinstance(n.ctx, ast.Load)]
    for use in uses:
        holder = parents.get(use)
        if isinstance(holder, ast.Call) and _name(holder.func) == "sorted":
            return False
        if isinstance(holder, ast.Attribute) and holder.attr == "sort":
            return False
    return any(_iterated_in_order(use, parents) for use in uses)


def _ancestors(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> Iterator[ast.AST]:
    while node in parents:
        node = parents[node]
        yield node


def ordered_from_string_sets(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    parents = _parents(tree)
    for node in ast.walk(tree):
        if _string_set(node) and _iterated_in_order(node, parents):
            yield (
                node,
                "iterating a set of strings: its order changes with PYTHONHASHSEED in every new process.",
                f"sorted({ast.unparse(node)})",
            )


def _string_set(node: ast.AST) -> bool:
    if isinstance(node, ast.Set):
        return bool(node.elts) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    if isinstance(node, ast.Call) and _name(node.func) in ("set", "frozenset") and len(node.args) == 1:
        argument = node.args[0]
        if isinstance(argument, ast.List | ast.Tuple):
            return bool(argument.elts) and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in argument.elts
            )
        return (
            isinstance(argument, ast.Call)
            and isinstance(argument.func, ast.Attribute)
            and argument.func.attr == "split"
        )
    return False


def thread_settings_assigned(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and re.fullmatch(r"set_\w+_threads", target.attr):
                    yield (
                        target,
                        f"assigning to {target.attr} replaces TensorFlow's function instead of setting the threads.",
                        f"{_name(target)}({ast.unparse(node.value)})",
                    )


def multiprocessing_workers(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    for call in _calls(tree):
        for keyword in call.keywords:
            if keyword.arg == "use_multiprocessing" and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                yield (
                    keyword.value,
                    "use_multiprocessing=True: worker processes deliver batches in the order they finish.",
                    "use_multiprocessing=False (or workers=1)",
                )


def late_environment(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    first_tf_import = min(
        (
            n.lineno
            for n in ast.walk(tree)
            if (isinstance(n, ast.Import) and any(a.name.split(".")[0] == "tensorflow" for a in n.names))
            or (isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "tensorflow")
        ),
        default=None,
    )
    for node, variable, _ in _environment_writes(tree):
        if variable == "PYTHONHASHSEED":
            yield (
                node,
                "PYTHONHASHSEED set inside the script has no effect: Python reads it only at start-up.",
                "set it in the environment before Python starts: PYTHONHASHSEED=0 python train.py",
            )
        elif variable == "TF_DETERMINISTIC_OPS" and first_tf_import is not None and node.lineno > first_tf_import:
            yield (
                node,
                "TF_DETERMINISTIC_OPS set after TensorFlow was imported may not take effect.",
                "call tf.config.experimental.enable_op_determinism() instead",
            )


def _environment_writes(tree: ast.Module) -> Iterator[tuple[ast.stmt | ast.expr, str, ast.expr | None]]:
    """``(node, variable, value)`` for each ``os.environ[...] =``, ``os.environ.setdefault`` and ``os.putenv``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and _name(target.value) == "os.environ":
                    key = target.slice
                    if isinstance(key, ast.Constant) and isinstance(key.value, str):
                        yield node, key.value, node.value
        elif isinstance(node, ast.Call) and _name(node.func) in ("os.environ.setdefault", "os.putenv") and node.args:
            key = node.args[0]
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield node, key.value, node.args[1] if len(node.args) > 1 else None


# GPU-only hazards (RK201-RK206): code that runs on CPU, so CI passes, but that
# on a GPU is nondeterministic and, under op determinism
# (tf.config.experimental.enable_op_determinism(), TF 2.8+; env
# TF_DETERMINISTIC_OPS=1 before), makes TensorFlow raise
# tf.errors.UnimplementedError: it has no deterministic GPU kernel. Sources:
# NVIDIA framework-reproducibility doc/d9m/tensorflow_status.md, TensorFlow's
# enable_op_determinism docs and kernel tests; not measured on a GPU here.
#   op (GPU kernel)                              raises under determinism since
#   tf.image.resize nearest backprop             TF 2.7 (tensorflow#51023)
#     (ResizeNearestNeighborGrad)
#   tf.image.crop_and_resize backprop to image   TF 2.6 (tensorflow#48905; its CPU backprop to
#     and boxes (CropAndResizeGradImage/Boxes)     image is deterministic under determinism)
#   tf.image.adjust_contrast forward             TF 2.7 (tensorflow#51140)
#     (AdjustContrastv2)
#   fused batch-norm backprop with               TF 2.7 (tensorflow#50505); backprop to the input
#     is_training=False (FusedBatchNormGradV3)     raises too (same kernel)
#   tf.math.bincount, with or without weights    TF 2.7 (tensorflow f0e6c2f); with weights it also
#     (Bincount, DenseBincount)                    varies run to run on CPU (measured here)
#   tf.sparse.sparse_dense_matmul forward        TF 2.6 (tensorflow#50355)
#     (SparseTensorDenseMatMul)
# The error says "A deterministic GPU implementation of <Op> ... is not
# currently available." ("Determinism is not yet supported in GPU implementation
# of Bincount." for bincount). None had a deterministic GPU implementation as of
# the NVIDIA status page and TensorFlow's kernel sources; not re-checked on a
# GPU with the newest TensorFlow (the CPU wheel has no GPU kernels to inspect).
# Deterministic on GPU under op
# determinism (not flagged): bilinear resize backprop (2.4+), softmax and sparse
# softmax cross-entropy (2.6/2.7), segment and unsorted-segment reductions (2.7),
# bias_add, conv and max-pool backprop, CTC (2.6), depthwise-conv backprop to
# the filter (2.10), XLA reductions and scatter (2.8); scatter ops are made
# deterministic by running on the CPU (2.7).
# Which Keras code reaches those kernels (Keras 3.15.1 on TF 2.21, checked by
# listing the ops of the forward and backward graphs on CPU): keras.layers.
# Resizing(interpolation="nearest") and keras.ops.image.resize(interpolation=
# "nearest") do (ResizeNearestNeighborGrad); keras.ops.bincount does
# (DenseBincount). Keras 3's UpSampling2D (nearest repeats pixels with
# ops.repeat), RandomContrast (computes the mean itself) and BatchNormalization
# (unfused tf.nn.batch_normalization) do not: those three are hazards only in
# Keras 2 (tf_keras, or tf.keras with TF_USE_LEGACY_KERAS=1), whose UpSampling2D
# calls tf.image.resize(NEAREST_NEIGHBOR), whose RandomContrast calls
# adjust_contrast, and whose BatchNormalization is fused on 4-D/5-D inputs.
# Not flagged where no GPU kernel or no gradient is involved: inside functions
# given to Dataset.map/flat_map/interleave/filter (tf.data runs them on the CPU,
# without gradients), and for the backprop-only ops, on a model's input (the
# first layer of a Sequential, a call on keras.Input(...)).
KERAS_ROOTS = ("tensorflow", "keras", "tf_keras")
CONVENTIONAL_NAMES = {"tf": "tensorflow", "keras": "keras", "layers": "keras.layers", "ops": "keras.ops"}
DATA_METHODS = ("map", "flat_map", "interleave", "filter")
_ON_GPU = (
    "on a GPU it is nondeterministic, and under op determinism TensorFlow raises UnimplementedError "
    "(no deterministic GPU kernel)"
)
_ON_CPU = 'or run it on the CPU: with tf.device("/CPU:0"): ...'


class _Module:
    """What the GPU rules need to know about a module: imports, tf.data functions, model inputs."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.parents = _parents(tree)
        self.aliases = _import_aliases(tree)
        self.legacy_keras = any(
            variable == "TF_USE_LEGACY_KERAS"
            and isinstance(value, ast.Constant)
            and value.value in ("1", "true", "True")
            for _, variable, value in _environment_writes(tree)
        )
        self.data_functions = _data_functions(tree)
        self.model_inputs = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _name(node.value.func)
            for target in node.targets
            if isinstance(target, ast.Name) and _name(node.value.func).split(".")[-1] == "Input"
        }

    def origin(self, node: ast.AST) -> str:
        """The dotted name with its first part resolved through the imports (``tf.image`` -> ``tensorflow.image``)."""
        head, dot, rest = _name(node).partition(".")
        full = self.aliases.get(head) or CONVENTIONAL_NAMES.get(head, head)
        return full + dot + rest if head else ""

    def keras_name(self, node: ast.AST, *names: str) -> bool:
        """A Keras (or TensorFlow) class or function with one of these names."""
        origin = self.origin(node)
        return origin.split(".")[0] in KERAS_ROOTS and origin.split(".")[-1] in names

    def keras2(self, node: ast.AST) -> bool:
        """The name comes from Keras 2: tf_keras, or tf.keras with TF_USE_LEGACY_KERAS set in the module."""
        origin = self.origin(node)
        return origin.startswith(("tf_keras.", "tensorflow.python.keras.")) or (
            self.legacy_keras and origin.startswith("tensorflow.keras.")
        )

    def tf_op(self, call: ast.Call, *suffixes: str) -> bool:
        origin = self.origin(call.func)
        return origin.startswith("tensorflow.") and _is(origin, *suffixes)

    def on_cpu(self, node: ast.AST) -> bool:
        """Inside a function that tf.data runs (on the CPU, without gradients)."""
        return any(a in self.data_functions for a in _ancestors(node, self.parents))

    def no_gradient(self, call: ast.Call) -> bool:
        """An op whose input is a model input (no gradient flows back through it), or run by tf.data."""
        image = call.args[0] if call.args else None
        return self.on_cpu(call) or (isinstance(image, ast.Name) and image.id in self.model_inputs)

    def layer_in_model(self, constructor: ast.Call, needs_gradient: bool) -> bool:
        """True unless every use of the layer built here provably runs without a GPU kernel.

        A use runs on CPU inside a tf.data function; with ``needs_gradient``
        (the hazard is in the backprop), a use as a model's first layer (first in
        ``Sequential([...])``, called on a ``keras.Input``) has no gradient either.
        A layer whose uses cannot be found counts as in the model.
        """
        uses: list[ast.AST] = []
        parent = self.parents.get(constructor)
        if (isinstance(parent, ast.Call) and parent.func is constructor) or isinstance(parent, ast.List | ast.Tuple):
            uses = [constructor]
        elif isinstance(parent, ast.Assign) and len(parent.targets) == 1 and _name(parent.targets[0]):
            variable = _name(parent.targets[0])
            uses = [
                n
                for n in ast.walk(self.tree)
                if isinstance(n, ast.Name | ast.Attribute) and _name(n) == variable and isinstance(n.ctx, ast.Load)
            ]
        return not uses or not all(self._use_without_gpu(use, needs_gradient) for use in uses)

    def _use_without_gpu(self, use: ast.AST, needs_gradient: bool) -> bool:
        if self.on_cpu(use):
            return True
        if not needs_gradient:
            return False
        parent = self.parents.get(use)
        if isinstance(parent, ast.Call) and parent.func is use:
            return self.no_gradient(parent)
        if isinstance(parent, ast.List | ast.Tuple) and parent.elts and parent.elts[0] is use:
            sequential = self.parents.get(parent)
            return isinstance(sequential, ast.Call) and self.keras_name(sequential.func, "Sequential")
        return False


def _import_aliases(tree: ast.Module) -> dict[str, str]:
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


def _data_functions(tree: ast.Module) -> set[ast.AST]:
    """Lambdas and functions given to ``Dataset.map`` and the like, and functions those lambdas call."""
    found: set[ast.AST] = set()
    names: set[str] = set()
    for call in _calls(tree):
        if isinstance(call.func, ast.Attribute) and call.func.attr in DATA_METHODS:
            for argument in [*call.args, *(k.value for k in call.keywords)]:
                if isinstance(argument, ast.Lambda):
                    found.add(argument)
                    names |= {_name(c.func).split(".")[-1] for c in _calls(argument)}
                elif _name(argument):
                    names.add(_name(argument).split(".")[-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names:
            found.add(node)
    return found


def _argument(call: ast.Call, keyword: str, position: int) -> ast.expr | None:
    value = next((k.value for k in call.keywords if k.arg == keyword), None)
    if value is None and len(call.args) > position and not isinstance(call.args[position], ast.Starred):
        value = call.args[position]
    return value


def _nearest(value: ast.expr | None) -> bool:
    if isinstance(value, ast.Constant) and isinstance(value.value, str):
        return value.value.lower() == "nearest"
    return isinstance(value, ast.Attribute) and value.attr == "NEAREST_NEIGHBOR"


def nearest_resize_gradients(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK201: nearest-neighbour resizing whose gradient a GPU computes (ResizeNearestNeighborGrad)."""
    module = _Module(tree)
    for call in _calls(tree):
        if module.tf_op(call, "image.resize", "image.resize_images"):
            hazard = _nearest(_argument(call, "method", 2)) and not module.no_gradient(call)
        elif module.tf_op(call, "image.resize_nearest_neighbor"):
            hazard = not module.no_gradient(call)
        elif module.origin(call.func) in ("keras.ops.image.resize", "keras.src.ops.image.resize"):
            hazard = _nearest(_argument(call, "interpolation", 2)) and not module.no_gradient(call)
        elif module.keras_name(call.func, "Resizing"):
            hazard = _nearest(_argument(call, "interpolation", 2)) and module.layer_in_model(call, True)
        elif module.keras_name(call.func, "UpSampling2D") and module.keras2(call.func):
            interpolation = _argument(call, "interpolation", 2)
            hazard = (interpolation is None or _nearest(interpolation)) and module.layer_in_model(call, True)
        else:
            continue
        if hazard:
            yield (
                call,
                f"{_name(call.func)}() resizes by nearest neighbour: its gradient runs on CPU, but {_ON_GPU}.",
                'bilinear interpolation (method="bilinear" / interpolation="bilinear", deterministic gradient), '
                "Keras 3 UpSampling2D (repeats pixels, no resize op) or Conv2DTranspose; resize in the tf.data "
                f"pipeline or at the model input, where no gradient flows; {_ON_CPU}",
            )


def crop_and_resize_gradients(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK202: tf.image.crop_and_resize in a model (its gradient to image and boxes)."""
    module = _Module(tree)
    for call in _calls(tree):
        if module.tf_op(call, "image.crop_and_resize") and not module.on_cpu(call):
            yield (
                call,
                f"tf.image.crop_and_resize(): its gradient (to image and boxes) runs on CPU, but {_ON_GPU}.",
                "crop in the tf.data pipeline, where no gradient flows; tf.stop_gradient() on the inputs that "
                f"need none; {_ON_CPU} (with the gradient; its CPU gradient is deterministic under op determinism)",
            )


def adjust_contrast_ops(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK203: tf.image.adjust_contrast (and the ops and Keras 2 layer built on it) on the GPU."""
    module = _Module(tree)
    for call in _calls(tree):
        if module.tf_op(call, "image.adjust_contrast", "image.random_contrast", "image.stateless_random_contrast"):
            hazard = not module.on_cpu(call)
        elif module.keras_name(call.func, "RandomContrast") and module.keras2(call.func):
            hazard = module.layer_in_model(call, False)
        else:
            continue
        if hazard:
            yield (
                call,
                f"{_name(call.func)}() (adjust_contrast) runs on CPU, but {_ON_GPU}.",
                "Keras 3 keras.layers.RandomContrast (computes the mean itself), or write it out: "
                "(x - mean) * factor + mean with tf.reduce_mean(x, axis=(-3, -2), keepdims=True); "
                f"augment in the tf.data pipeline (runs on the CPU); {_ON_CPU}",
            )


def fused_batch_norm_inference(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK204: fused batch norm in inference mode with a gradient: a trainable Keras 2 BatchNormalization
    called with ``training=False`` (fine-tuning), or ``tf.compat.v1.nn.fused_batch_norm(is_training=False)``.

    Fires for a layer built in the module with tf_keras (or tf.keras under
    TF_USE_LEGACY_KERAS) and called there with a literal ``training=False``,
    built without ``fused=False`` or ``trainable=False`` and never frozen
    (``layer.trainable = False``) in the module; Keras 3's BatchNormalization
    is not fused.
    """
    module = _Module(tree)
    message = f"its fused batch-norm gradient in inference mode runs on CPU, but {_ON_GPU}."
    fix = (
        "leave training= to fit() (or training=True); build it with fused=False; freeze it and everything "
        "before it (layer.trainable = False) so that no gradient flows through it; use Keras 3's "
        f"BatchNormalization (not fused); {_ON_CPU}"
    )
    for call in _calls(tree):
        if module.tf_op(call, "nn.fused_batch_norm") and _false(_argument(call, "is_training", 7) or ast.Constant(1)):
            if not module.on_cpu(call):
                yield call, f"fused_batch_norm(is_training=False): {message}", fix
            continue
        if not (module.keras_name(call.func, "BatchNormalization") and module.keras2(call.func)):
            continue
        keywords = {k.arg: k.value for k in call.keywords}
        if _false(keywords.get("fused", ast.Constant(None))) or _false(keywords.get("trainable", ast.Constant(1))):
            continue
        parent = module.parents.get(call)
        if isinstance(parent, ast.Call) and parent.func is call:
            calls = [parent]
        elif isinstance(parent, ast.Assign) and len(parent.targets) == 1 and _name(parent.targets[0]):
            variable = _name(parent.targets[0])
            if any(_frozen(node, variable) for node in ast.walk(tree)):
                continue
            calls = [c for c in _calls(tree) if _name(c.func) == variable]
        else:
            continue
        for use in calls:
            if _false(_argument(use, "training", 1) or ast.Constant(None)) and not module.on_cpu(use):
                yield use, f"a trainable BatchNormalization called with training=False: {message}", fix


def _frozen(node: ast.AST, variable: str) -> bool:
    """``variable.trainable = False``."""
    return (
        isinstance(node, ast.Assign)
        and _false(node.value)
        and any(
            isinstance(t, ast.Attribute) and t.attr == "trainable" and _name(t.value) == variable for t in node.targets
        )
    )


def bincount_ops(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK205: tf.math.bincount (and keras.ops.bincount on the TensorFlow backend) outside tf.data."""
    module = _Module(tree)
    for call in _calls(tree):
        origin = module.origin(call.func)
        keras_op = origin in ("keras.ops.bincount", "keras.ops.numpy.bincount")
        if not (keras_op or (module.tf_op(call, "bincount") and ".sparse." not in origin)) or module.on_cpu(call):
            continue
        weights = _argument(call, "weights", 1)
        weighted = weights is not None and not (isinstance(weights, ast.Constant) and weights.value is None)
        if weighted:
            yield (
                call,
                f"{_name(call.func)}(weights=...) varies between runs even on CPU (with or without op "
                f"determinism), and {_ON_GPU}.",
                "tf.math.unsorted_segment_sum(weights, ids, num_segments): deterministic on CPU, and on a GPU "
                "under op determinism (TF 2.7+)",
            )
        else:
            yield (
                call,
                f"{_name(call.func)}() runs on CPU, but {_ON_GPU}.",
                "count with tf.math.unsorted_segment_sum(tf.ones_like(ids), ids, num_segments) or "
                "tf.reduce_sum(tf.one_hot(ids, n), axis=0); count in the tf.data pipeline or with NumPy "
                f"(np.bincount); {_ON_CPU}",
            )


def sparse_dense_matmuls(tree: ast.Module) -> Iterator[tuple[ast.AST, str, str]]:
    """RK206: tf.sparse.sparse_dense_matmul (tf.compat.v1 sparse_tensor_dense_matmul, sparse.matmul)."""
    module = _Module(tree)
    for call in _calls(tree):
        matmul = module.tf_op(call, "sparse.sparse_dense_matmul", "sparse_tensor_dense_matmul", "v1.sparse.matmul")
        if matmul and not module.on_cpu(call):
            yield (
                call,
                f"{_name(call.func)}() runs on CPU, but {_ON_GPU}.",
                "tf.sparse.to_dense(a) @ b (dense matmul is deterministic); "
                f"tf.nn.embedding_lookup_sparse for embedding lookups; {_ON_CPU}",
            )


RULES = (
    Rule("RK101", "unseeded random generator", unseeded_generators, Source.UNCONTROLLED),
    Rule("RK102", "generator from non-deterministic state", non_deterministic_state, Source.UNCONTROLLED),
    Rule("RK103", "seed taken from the clock or OS entropy", clock_seeds, Source.UNCONTROLLED),
    Rule("RK104", "tf.data told to give up determinism", non_deterministic_options, Source.NONDETERMINISTIC_OPS),
    Rule("RK105", "file listing used in file-system order", unsorted_listings),
    Rule("RK106", "ordered data built from a set of strings", ordered_from_string_sets, Source.SEED),
    Rule("RK107", "thread setting assigned instead of called", thread_settings_assigned),
    Rule("RK108", "multiprocessing data workers", multiprocessing_workers, Source.NONDETERMINISTIC_OPS),
    Rule("RK109", "environment variable set too late", late_environment),
    Rule("RK110", "random numbers drawn in a parallel tf.data map", parallel_random_maps, Source.NONDETERMINISTIC_OPS),
    Rule("RK201", "GPU: nearest-neighbour resize gradient", nearest_resize_gradients, Source.NONDETERMINISTIC_OPS),
    Rule("RK202", "GPU: crop_and_resize gradient", crop_and_resize_gradients, Source.NONDETERMINISTIC_OPS),
    Rule("RK203", "GPU: adjust_contrast", adjust_contrast_ops, Source.NONDETERMINISTIC_OPS),
    Rule("RK204", "GPU: fused batch norm in inference mode", fused_batch_norm_inference, Source.NONDETERMINISTIC_OPS),
    Rule("RK205", "GPU: bincount", bincount_ops, Source.NONDETERMINISTIC_OPS),
    Rule("RK206", "GPU: sparse-dense matmul", sparse_dense_matmuls, Source.NONDETERMINISTIC_OPS),
)
_SOURCE_OF_RULE = {rule.code: rule.source for rule in RULES}
GPU_ONLY = frozenset(rule.code for rule in RULES if rule.title.startswith("GPU:"))
"""The rules whose hazard only exists on a GPU (RK2xx): on CPU they cause no difference."""


def hazards_for(source: Source, findings: Iterable[LintFinding]) -> list[LintFinding]:
    """The lint findings whose hazard shows up as ``source`` when the script runs (its likely causes).

    GPU-only hazards (RK2xx) come after the others: on CPU they cause nothing.
    """
    return sorted((f for f in findings if _SOURCE_OF_RULE.get(f.code) == source), key=lambda f: f.code in GPU_ONLY)


_IGNORE = re.compile(r"#\s*reprokit:\s*ignore(?:\[([A-Z0-9,\s]+)\])?")


def lint_source(
    source: str, path: str = "<string>", select: Sequence[str] = (), ignore: Sequence[str] = ()
) -> list[LintFinding]:
    """Lints Python source text.

    Args:
        source: the module's source.
        path: the name findings carry.
        select: only these rule codes (all when empty).
        ignore: never these rule codes.

    Raises:
        UsageError: the source does not parse.
    """
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError as e:
        raise UsageError(f"cannot lint {path}: syntax error at line {e.lineno}: {e.msg}") from None
    lines = source.splitlines()
    found = set()
    for rule in RULES:
        if (select and rule.code not in select) or rule.code in ignore:
            continue
        for node, message, fix in rule.check(tree):
            line, col = getattr(node, "lineno", 1), getattr(node, "col_offset", 0) + 1
            if _ignored(lines, line, rule.code):
                continue
            found.add(LintFinding(rule.code, path, line, col, message, fix))
    return sorted(found, key=lambda f: (f.line, f.col, f.code))


def _ignored(lines: Sequence[str], line: int, code: str) -> bool:
    match = _IGNORE.search(lines[line - 1]) if 0 < line <= len(lines) else None
    if match is None:
        return False
    codes = match.group(1)
    return codes is None or code in {c.strip() for c in codes.split(",")}


def python_files(paths: Iterable[Path]) -> list[Path]:
    """The .py files named or below the folders named, sorted; UsageError for a missing path."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.py") if not any(part.startswith(".") for part in p.parts))
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"no such file or folder: {path}")
    return files


def lint_paths(paths: Iterable[Path], select: Sequence[str] = (), ignore: Sequence[str] = ()) -> list[LintFinding]:
    """Lints every Python file named or found below the folders named."""
    unknown = sorted((set(select) | set(ignore)) - {r.code for r in RULES})
    if unknown:
        raise UsageError(f"expected rule codes among {', '.join(r.code for r in RULES)}, received {', '.join(unknown)}")
    found = []
    for file in python_files(paths):
        try:
            source = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read {file}: {e}") from None
        found += lint_source(source, str(file), select, ignore)
    return found

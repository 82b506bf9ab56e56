"""Ordering rules (RK105, RK106, RK108): data whose order comes from the file system, hashing or timing."""

from __future__ import annotations

import ast
from collections.abc import Iterator

from reprokit.core.vocabulary import Source
from reprokit.lint.astutil import callee, calls, dotted_name, is_false, named, parents
from reprokit.lint.orderflow import assigned_then_iterated, iterated_in_order
from reprokit.lint.registry import Detection, Family, Rule

LISTINGS = ("os.listdir", "os.scandir", "glob.glob", "glob.iglob", "gfile.glob", "gfile.listdir")
PATH_LISTINGS = ("glob", "rglob", "iterdir")


def unsorted_listings(tree: ast.Module) -> Iterator[Detection]:
    """RK105: a file listing whose file-system order can flow into data or training.

    A listing (or a variable assigned from it and never sorted) is a hazard when
    it is iterated in order (see :mod:`reprokit.lint.orderflow`): turned into a
    sequence, consumed by a list comprehension or generator, or looped over by a
    ``for`` loop whose body lets the order through. A set or dict comprehension
    and a loop that only deletes, counts, logs or files things by name are not.
    """
    parent_of = parents(tree)
    for call in calls(tree):
        name = dotted_name(call.func)
        is_listing = named(name, *LISTINGS) or (
            isinstance(call.func, ast.Attribute)
            and call.func.attr in PATH_LISTINGS
            and not named(name, "glob.glob", "gfile.glob")
            and _looks_like_path(call.func.value)
        )
        if not is_listing:
            continue
        if iterated_in_order(call, parent_of) or assigned_then_iterated(call, parent_of, tree):
            shown = callee(call)
            yield (
                call,
                f"{shown}() returns files in file-system order, which differs between machines.",
                f"sorted({ast.unparse(call)})",
            )
    for call in calls(tree):
        if dotted_name(call.func).endswith("Dataset.list_files"):
            keywords = {k.arg: k.value for k in call.keywords}
            shuffled = not is_false(keywords.get("shuffle", ast.Constant(True)))
            if shuffled and "seed" not in keywords:
                yield (
                    call,
                    "Dataset.list_files() shuffles the files with an unseeded shuffle by default.",
                    "Dataset.list_files(pattern, shuffle=False) or pass seed=",
                )


def _looks_like_path(node: ast.AST) -> bool:
    """A receiver that is plausibly a pathlib.Path (``Path(...)``, ``x / "y"``, a *path/dir name)."""
    if isinstance(node, ast.Call):
        return named(dotted_name(node.func), "Path", "PurePath", "pathlib.Path")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
        return True
    name = dotted_name(node).lower()
    return any(word in name.split(".")[-1] for word in ("path", "dir", "root", "folder"))


def ordered_from_string_sets(tree: ast.Module) -> Iterator[Detection]:
    """RK106: a set of strings (a literal, ``set([...])``, ``set(text.split())``) iterated in order."""
    parent_of = parents(tree)
    for node in ast.walk(tree):
        if _string_set(node) and iterated_in_order(node, parent_of):
            yield (
                node,
                "iterating a set of strings: its order changes with PYTHONHASHSEED in every new process.",
                f"sorted({ast.unparse(node)})",
            )


def _string_set(node: ast.AST) -> bool:
    if isinstance(node, ast.Set):
        return bool(node.elts) and all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts)
    if isinstance(node, ast.Call) and dotted_name(node.func) in ("set", "frozenset") and len(node.args) == 1:
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


def multiprocessing_workers(tree: ast.Module) -> Iterator[Detection]:
    """RK108: ``use_multiprocessing=True`` (Keras data workers in processes)."""
    for call in calls(tree):
        for keyword in call.keywords:
            if keyword.arg == "use_multiprocessing" and isinstance(keyword.value, ast.Constant) and keyword.value.value:
                yield (
                    keyword.value,
                    "use_multiprocessing=True: worker processes deliver batches in the order they finish.",
                    "use_multiprocessing=False (or workers=1)",
                )


RULES = (
    Rule(
        code="RK105",
        name="unsorted-file-listing",
        family=Family.ORDERING,
        message="a file listing (`os.listdir`, `os.scandir`, `glob.glob`/`iglob`, `Path.glob/rglob/iterdir`, "
        "`tf.io.gfile.glob/listdir`) whose file-system order can flow into data or training, without `sorted()`: "
        "turned into a sequence (`list()`, `tuple()`, `enumerate`, `zip`, `np.array`, `from_tensor_slices`, a "
        "list comprehension or generator), or iterated by a `for` loop whose body passes items to a function, "
        "appends, writes, yields, trains, breaks or returns on the first match, or stores by a counter. Not a "
        "loop that only deletes, copies, counts, logs, adds to a set or stores by the file's name, nor a set or "
        "dict comprehension; `Dataset.list_files()` shuffled without a seed",
        fix="`sorted(...)` around the listing; `Dataset.list_files(pattern, shuffle=False)` or pass `seed=`",
        rationale="Directory listings come in the order the file system keeps its entries, not sorted. "
        "Measured here: `os.listdir` order was stable between runs on one file system but differed between file "
        "systems, so the same script reads its files (and trains on them) in another order on another machine; "
        "a check that runs on one machine never sees it, so the rule is linked to no check source. "
        "`Dataset.list_files()` shuffles the file names by default, with no seed unless one is passed.",
        source=None,
        gpu_only=False,
        detect=unsorted_listings,
    ),
    Rule(
        code="RK106",
        name="ordered-from-string-set",
        family=Family.ORDERING,
        message="ordered data built by iterating a set of strings (order changes with `PYTHONHASHSEED`)",
        fix="`sorted(...)` around the set",
        rationale="A set of strings iterates in the order of the strings' hashes, which Python randomises in "
        "every new process unless `PYTHONHASHSEED` is set before it starts; `keras.utils.set_random_seed` does "
        "not reach it. Measured (one fresh process per run): iterating a set of strings with `PYTHONHASHSEED` "
        "unset gave 3 different results in 3 processes; pinned, identical runs; set to 1, 2 and 3, 3 different "
        "results.",
        source=Source.SEED,
        gpu_only=False,
        detect=ordered_from_string_sets,
    ),
    Rule(
        code="RK108",
        name="multiprocessing-data-workers",
        family=Family.ORDERING,
        message="`use_multiprocessing=True` data workers (batches arrive in finishing order)",
        fix="`use_multiprocessing=False` (or `workers=1`)",
        rationale="Keras' worker processes each load batches and hand them over in the order they finish, so "
        "the order of the batches, and with it the weights, depends on process timing. Not measured here.",
        source=Source.NONDETERMINISTIC_OPS,
        gpu_only=False,
        detect=multiprocessing_workers,
    ),
)

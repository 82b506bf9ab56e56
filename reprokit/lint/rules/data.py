"""tf.data rules (RK104, RK110): pipelines whose output depends on thread timing."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator

from reprokit.core.vocabulary import Source
from reprokit.lint.astutil import callee, calls, dotted_name, is_false, named
from reprokit.lint.registry import Detection, Family, Rule


def non_deterministic_options(tree: ast.Module) -> Iterator[Detection]:
    """RK104: ``deterministic=False`` given to a call, or assigned to tf.data options."""
    for call in calls(tree):
        for keyword in call.keywords:
            if keyword.arg == "deterministic" and is_false(keyword.value):
                yield (
                    keyword.value,
                    f"{callee(call)}(deterministic=False) lets tf.data reorder elements by thread timing.",
                    "remove deterministic=False (or enable op determinism)",
                )
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and is_false(node.value):
            for target in node.targets:
                if isinstance(target, ast.Attribute) and target.attr in ("deterministic", "experimental_deterministic"):
                    yield (
                        target,
                        f"options.{target.attr} = False lets tf.data reorder elements by thread timing.",
                        f"remove the assignment (the default {target.attr}=True keeps the order)",
                    )


def parallel_random_maps(tree: ast.Module) -> Iterator[Detection]:
    """RK110: ``ds.map(f, num_parallel_calls=...)`` where ``f`` draws random numbers from shared state.

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
        if isinstance(node, ast.Assign) and any(_random_layer(c) for c in calls(node.value))
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for call in calls(tree):
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
    return bool(re.fullmatch(r"Random[A-Z]\w*", dotted_name(call.func).split(".")[-1]))


def _draws_random(body: ast.AST, random_names: set[str]) -> bool:
    for call in calls(body):
        name = dotted_name(call.func)
        last = name.split(".")[-1]
        if _random_layer(call) or name in random_names:
            return True
        if (
            ".random." in f".{name}"
            and name.split(".")[0] in ("tf", "tensorflow")
            and not last.startswith(("stateless", "set_seed", "Generator"))
        ):
            return True
        if named(name, "image." + last) and last.startswith("random_"):
            return True
    return False


RULES = (
    Rule(
        code="RK104",
        name="tf-data-non-deterministic",
        family=Family.DATA,
        message="tf.data told to give up order: `deterministic=False`, `options.deterministic = False`, "
        "`options.experimental_deterministic = False`",
        fix="remove `deterministic=False` (the default keeps the order), or enable op determinism",
        rationale="With `deterministic=False` tf.data hands out elements in the order its parallel calls "
        "finish, so the batches depend on thread timing. Measured (TensorFlow 2.21, CPU, seeds fixed, 6 "
        "processes): `interleave(..., num_parallel_calls=8, deterministic=False)` over elements of uneven cost "
        "gave 6 different final weights, and 1 with op determinism on; `map(..., num_parallel_calls=AUTOTUNE, "
        "deterministic=False)` did the same once map-and-batch fusion was off (with fusion on, the default, "
        "map and batch kept the order).",
        source=Source.NONDETERMINISTIC_OPS,
        gpu_only=False,
        detect=non_deterministic_options,
    ),
    Rule(
        code="RK110",
        name="random-draws-in-parallel-map",
        family=Family.DATA,
        message="`ds.map(f, num_parallel_calls=...)` where `f` draws random numbers from shared state "
        "(`tf.random.*` but not `stateless_*`, `tf.image.random_*`, a Keras `Random*` layer): the order of "
        "elements is kept, which element gets which draw is not",
        fix="enable op determinism, or apply random augmentation inside the model (its layers run in order)",
        rationale="Parallel calls of a function that draws from a stateful generator (an op without its own "
        "seed, a `tf.random.Generator`) take the draws in the order the calls reach the generator, which changes "
        "with thread timing. Measured (TensorFlow 2.21, CPU, seeds fixed): 6 different final weights in 6 "
        "processes, 1 with op determinism on; under op determinism such a map stayed about 1.37 times slower.",
        source=Source.NONDETERMINISTIC_OPS,
        gpu_only=False,
        detect=parallel_random_maps,
    ),
)

"""What the GPU rules need to know about a module: where its names come from, tf.data functions, model inputs.

Not flagged where no GPU kernel or no gradient is involved: inside functions
given to ``Dataset.map``/``flat_map``/``interleave``/``filter`` (tf.data runs
them on the CPU, without gradients), and for the backprop-only ops, on a
model's input (the first layer of a ``Sequential``, a call on ``keras.Input(...)``).
"""

from __future__ import annotations

import ast

from reprokit.lint.astutil import ancestors, calls, dotted_name, environment_writes, import_aliases, named, parents

KERAS_ROOTS = ("tensorflow", "keras", "tf_keras")
CONVENTIONAL_NAMES = {"tf": "tensorflow", "keras": "keras", "layers": "keras.layers", "ops": "keras.ops"}
DATA_METHODS = ("map", "flat_map", "interleave", "filter")


class TfModule:
    """A parsed module as the GPU rules see it: imports, tf.data functions, model inputs."""

    def __init__(self, tree: ast.Module) -> None:
        self.tree = tree
        self.parents = parents(tree)
        self.aliases = import_aliases(tree)
        self.legacy_keras = any(
            variable == "TF_USE_LEGACY_KERAS"
            and isinstance(value, ast.Constant)
            and value.value in ("1", "true", "True")
            for _, variable, value in environment_writes(tree)
        )
        self.data_functions = data_functions(tree)
        self.model_inputs = {
            target.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and dotted_name(node.value.func)
            for target in node.targets
            if isinstance(target, ast.Name) and dotted_name(node.value.func).split(".")[-1] == "Input"
        }

    def origin(self, node: ast.AST) -> str:
        """The dotted name with its first part resolved through the imports (``tf.image`` -> ``tensorflow.image``)."""
        head, dot, rest = dotted_name(node).partition(".")
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
        """A TensorFlow function whose dotted name ends in one of ``suffixes``."""
        origin = self.origin(call.func)
        return origin.startswith("tensorflow.") and named(origin, *suffixes)

    def on_cpu(self, node: ast.AST) -> bool:
        """Inside a function that tf.data runs (on the CPU, without gradients)."""
        return any(a in self.data_functions for a in ancestors(node, self.parents))

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
        elif isinstance(parent, ast.Assign) and len(parent.targets) == 1 and dotted_name(parent.targets[0]):
            variable = dotted_name(parent.targets[0])
            uses = [
                n
                for n in ast.walk(self.tree)
                if isinstance(n, ast.Name | ast.Attribute)
                and dotted_name(n) == variable
                and isinstance(n.ctx, ast.Load)
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


def data_functions(tree: ast.Module) -> set[ast.AST]:
    """Lambdas and functions given to ``Dataset.map`` and the like, and functions those lambdas call."""
    found: set[ast.AST] = set()
    names: set[str] = set()
    for call in calls(tree):
        if isinstance(call.func, ast.Attribute) and call.func.attr in DATA_METHODS:
            for argument in [*call.args, *(k.value for k in call.keywords)]:
                if isinstance(argument, ast.Lambda):
                    found.add(argument)
                    names |= {dotted_name(c.func).split(".")[-1] for c in calls(argument)}
                elif dotted_name(argument):
                    names.add(dotted_name(argument).split(".")[-1])
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in names:
            found.add(node)
    return found

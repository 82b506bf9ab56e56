"""The process of ``reprokit align``: loads two saved Keras models and aligns them (imports Keras).

Started by :mod:`reprokit.aligning.result` as ``python -m reprokit.worker.alignrun CONFIG``
so the command itself never imports TensorFlow. It matches B's hidden units
to A's (:func:`reprokit.weights.matching.match`), **verifies** that B with matched
units computes what B computes (a permutation that changes the function is
a bug: exit 4), and measures what needs the models themselves: activations
on the data, predictions, and with labels the loss along the straight path
from A to matched B. Everything goes to an ``.npz`` file the parent reads.

Exit codes: 0 done, 2 bad input (one line on stderr), 4 a bug.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

from reprokit.weights.matching import match, permute
from reprokit.weights.structure import Structure
from reprokit.worker import anatomy

ROWS = 2048
"""Rows of the data the activations and the barrier are measured on, at most."""
RANDOM_ROWS = 256
"""Rows drawn from the input shape when no data is given."""
PATH_POINTS = 11
"""Points on the straight path from A to matched B (ends included)."""
EXIT_BAD_INPUT = 2
EXIT_BUG = 4


class BadInput(Exception):
    """Bad input: a model that cannot be loaded, two architectures, unusable data."""


def main(config_path: str) -> int:
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    try:
        model_a, model_b = _load(config["a"]), _load(config["b"])
        x, y, warnings = _data(model_a, config.get("data"))
        result = _align(model_a, model_b, x, y)
    except BadInput as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_BAD_INPUT
    result["warnings"] = np.array(json.dumps(warnings))
    np.savez(config["out"], **result)  # type: ignore[arg-type]
    return 0 if float(result["verification"]) <= anatomy.SAME_FUNCTION else EXIT_BUG


def _load(path: str) -> Any:
    try:
        return keras.saving.load_model(path)
    except Exception as exc:  # noqa: BLE001 - any reason a file is not a loadable model
        raise BadInput(f"cannot load {path} as a Keras model: {anatomy.first_line(exc)}") from None


def _data(model: Any, path: str | None) -> tuple[Any, Any, list[str]]:
    """The inputs (and labels, if any) to measure on; warnings for the report."""
    if path is None:
        rng = np.random.default_rng(0)
        shapes = [tuple(t.shape) for t in model.inputs]
        if any(d is None for shape in shapes for d in shape[1:]):
            raise BadInput("the model's input shape is not fixed: give --data FILE.npz to align it")
        drawn = [rng.standard_normal((RANDOM_ROWS, *shape[1:])).astype("float32") for shape in shapes]
        warning = (
            f"no --data: CKA and agreement are measured on {RANDOM_ROWS} random inputs drawn from the input "
            "shape, which say little about what the networks learned; give the data they train on"
        )
        return (drawn[0] if len(drawn) == 1 else drawn), None, [warning]
    if len(model.inputs) != 1:
        raise BadInput("--data is for a model with one input; this one has several (align it without --data)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise BadInput(f"cannot read {path}: {anatomy.first_line(exc)}") from None
    if isinstance(loaded, np.ndarray):
        arrays = {"x": loaded}
    else:
        with loaded:
            arrays = {key: np.asarray(loaded[key]) for key in loaded.files}
    names = list(arrays)
    if "x" in arrays:
        x, y = arrays["x"], arrays.get("y")
    elif len(names) in (1, 2):
        x, y = arrays[names[0]], arrays[names[1]] if len(names) == 2 else None
    else:
        raise BadInput(f"{path} holds {len(names)} arrays ({', '.join(names)}): name the inputs x and the labels y")
    if y is not None and len(y) != len(x):
        raise BadInput(f"{path}: {len(x)} inputs but {len(y)} labels")
    return x[:ROWS], (None if y is None else y[:ROWS]), []


def _signature(structure: Structure, weights: dict[str, np.ndarray]) -> tuple[Any, ...]:
    """The architecture without its names: layer kinds, weight shapes in order, unit groups' sizes."""
    layers = tuple((layer.kind, len(layer.variables), layer.hidden, layer.note is None) for layer in structure.layers)
    return layers, tuple(w.shape for w in weights.values()), tuple(g.size for g in structure.groups)


def _align(a: Any, b: Any, x: Any, y: Any) -> dict[str, np.ndarray]:
    """Aligns B to A; B's weights and layers are named as A's, by position (two builds name layers apart)."""
    structure, hidden_a = anatomy.describe(a)
    structure_b, hidden_b = anatomy.describe(b)
    wa, wb_own = anatomy.weights_of(a), anatomy.weights_of(b)
    if _signature(structure, wa) != _signature(structure_b, wb_own):
        raise BadInput("the two models have different architectures: align needs two trainings of one network")
    names_b = dict(zip(wa, wb_own))  # A's variable name -> B's
    wb = {name: wb_own[names_b[name]] for name in wa}
    layer_names = dict(zip(structure_b.hidden, structure.hidden))  # B's hidden layer -> A's
    try:
        outputs_b = b(x, training=False)
    except Exception as exc:  # noqa: BLE001 - the data does not fit the model
        raise BadInput(f"the model cannot be called on the data: {anatomy.first_line(exc)}") from None
    structure = anatomy.verified(a, structure, x)
    perms, rounds = match(structure, wa, wb)
    matched_b = permute(structure, wb, perms)
    verification = anatomy.output_difference(b, x, {names_b[n]: matched_b[n] for n in structure.moved})
    result: dict[str, np.ndarray] = {
        "structure": np.array(structure.to_json()),
        "rounds": np.array(rounds),
        "verification": np.array(verification),
        "rows": np.array(len(anatomy.first(x))),
    }
    result.update({f"weights/a/{n}": w for n, w in wa.items()})
    result.update({f"weights/b/{n}": w for n, w in wb.items()})
    result.update({f"perm/{layer}": p for layer, p in perms.items()})
    result.update({f"activations/a/{k}": v for k, v in anatomy.activations(a, hidden_a, x).items()})
    result.update({f"activations/b/{layer_names[k]}": v for k, v in anatomy.activations(b, hidden_b, x).items()})
    keras.utils.set_random_seed(0)  # the untrained pair: the same two networks every time
    result.update({f"untrained/a/{k}": v for k, v in anatomy.untrained_activations(a, x).items()})
    result.update({f"untrained/b/{layer_names[k]}": v for k, v in anatomy.untrained_activations(b, x).items()})
    result["predictions/a"] = np.asarray(anatomy.first(a(x, training=False)))
    result["predictions/b"] = np.asarray(anatomy.first(outputs_b))
    if y is not None:
        losses = _path_losses(a, wa, matched_b, x, y)
        if losses is not None:
            result["path_losses"] = np.array(losses)
    return result


def _path_losses(a: Any, wa: dict[str, np.ndarray], wb: dict[str, np.ndarray], x: Any, y: Any) -> list[float] | None:
    """A's compiled loss on (x, y) with weights (1 − t)·A + t·matched B, at evenly spaced t; None without a loss."""
    if getattr(a, "loss", None) is None or not getattr(a, "compiled", False):
        return None
    losses = []
    for t in np.linspace(0.0, 1.0, PATH_POINTS):
        mixed = {n: ((1 - t) * wa[n] + t * wb[n]).astype(wa[n].dtype) for n in wa if wa[n].dtype.kind == "f"}
        with anatomy.weights_set(a, mixed):
            result = a.evaluate(x, y, batch_size=256, verbose=0, return_dict=True)
        losses.append(float(result["loss"]))
    return losses


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

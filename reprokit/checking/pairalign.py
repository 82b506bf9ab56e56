"""Why the weights of two runs differ: their models aligned from what the runs saved (pure NumPy + SciPy).

Each run saved, per trained model, its final weights, its structure (which
weights move together when hidden units are reordered, checked in the run
on the model itself) and its hidden layers' activations on the probe batch
(see :mod:`reprokit.worker.anatomy`). This module reads them back for
:func:`reprokit.weights.matching.compare`: the parent never imports TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from reprokit.run.trace import RunTrace
from reprokit.weights.matching import ModelAlignment, compare
from reprokit.weights.similarity import class_agreement
from reprokit.weights.structure import Structure, under

Arrays = Mapping[str, np.ndarray]


def align_runs(a: RunTrace, b: RunTrace, arrays_a: Arrays, arrays_b: Arrays) -> tuple[ModelAlignment, ...]:
    """Every model both runs trained and saved a structure for, aligned (B's units in A's order).

    Activations and prediction agreement are used only when both runs took
    them on the very same probe batch.
    """
    probes_a = {m.name: m.probe for m in a.models}
    found = []
    for model in b.models:
        key = f"structure/{model.name}"
        if model.name not in probes_a or key not in arrays_a or key not in arrays_b:
            continue
        text = str(arrays_a[key])
        if text != str(arrays_b[key]):
            continue  # another architecture, or a layer one run could verify and the other not
        structure = Structure.from_json(text)
        wa, wb = _weights(arrays_a, model.name, structure), _weights(arrays_b, model.name, structure)
        if wa is None or wb is None or any(wa[n].shape != wb[n].shape for n in wa):
            continue
        acts_a = acts_b = untrained = None
        agreement = None
        if model.probe is not None and probes_a[model.name] == model.probe:
            prefix = f"activations/{model.name}/"
            acts_a, acts_b = under(arrays_a, prefix), under(arrays_b, prefix)
            untrained = _untrained(arrays_a, arrays_b, model.name)
            prediction = f"predictions/{model.name}/0"
            if prediction in arrays_a and prediction in arrays_b:
                agreement = class_agreement(arrays_a[prediction], arrays_b[prediction])
        alignment = compare(structure, wa, wb, acts_a, acts_b, agreement, untrained=untrained)
        found.append(ModelAlignment(model.name, alignment))
    return tuple(found)


def _weights(arrays: Arrays, model: str, structure: Structure) -> dict[str, np.ndarray] | None:
    names = [n for layer in structure.layers for n in layer.variables]
    keys = [f"weights/{model}/{n}" for n in names]
    if not names or any(k not in arrays for k in keys):
        return None
    return {n: np.asarray(arrays[k]) for n, k in zip(names, keys)}


def _untrained(a: Arrays, b: Arrays, model: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None:
    """The two runs' untrained copies' activations; None if they are the same (initializers seeded in the code)."""
    fresh_a, fresh_b = under(a, f"untrained/{model}/"), under(b, f"untrained/{model}/")
    if not fresh_a or all(k in fresh_b and np.array_equal(v, fresh_b[k]) for k, v in fresh_a.items()):
        return None
    return fresh_a, fresh_b

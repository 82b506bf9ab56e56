"""A Keras model's permutation structure, and its hidden activations (imports Keras).

:func:`describe` walks a model's layer graph and returns the
:class:`~reprokit.weights.structure.Structure` that :mod:`reprokit.weights.matching`
matches units with. What it understands:

* units: ``Dense``, ``Conv1D/2D/3D`` (channels last, one group) and
  ``Embedding`` each start a group of units;
* through: normalizations over the last axis (``BatchNormalization``,
  ``LayerNormalization``: their parameters and statistics move with the
  units), element-wise layers (activations, dropout, noise), pooling,
  padding, cropping and upsampling keep the units on the last axis;
  ``Flatten`` tiles them (a channels-last map flattens position-major);
* anything else (a merge such as a residual ``Add``, attention, a
  recurrent layer, a reshape, a nested model, a layer used twice) is a
  barrier: the units that reach it keep their order, and the report says
  why, layer by layer.

:func:`verified` then checks the description on the model itself: a random
permutation of every group must leave its outputs unchanged. A group that
fails is left unaligned: a permutation that changes the function is a bug,
never a result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np

from reprokit.weights.matching import Permutations, permute
from reprokit.weights.structure import Axis, Group, LayerInfo, Structure
from reprokit.worker.registry import variable_names

SAME_FUNCTION = 1e-5
"""Largest output difference, relative to the outputs' scale, of a permuted network that computes the same function."""

OUTPUT_NOTE = "output layer: its units keep their order"

_ELEMENTWISE = {
    "Activation",
    "ReLU",
    "LeakyReLU",
    "ELU",
    "Dropout",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "ActivityRegularization",
    "Identity",
}
_SPATIAL = {  # keep the channels on the last axis (channels_last only)
    f"{kind}{d}D"
    for kind in ("MaxPooling", "AveragePooling", "ZeroPadding", "Cropping", "UpSampling", "SpatialDropout")
    for d in (1, 2, 3)
}
_GLOBAL = {f"Global{kind}Pooling{d}D" for kind in ("Average", "Max") for d in (1, 2, 3)}
_CONV = {"Conv1D", "Conv2D", "Conv3D"}
_NORMALIZATION = ("gamma", "beta", "moving_mean", "moving_variance")


@dataclass
class _Units:
    """Where a tensor's last axis comes from: ``tile`` blocks of a group's units (None: no group)."""

    group: _Building | None
    tile: int = 1


@dataclass
class _Building:
    layer: str
    size: int
    axes: list[Axis] = field(default_factory=list)
    fixed: str | None = None  # why its units must keep their order


def describe(model: Any) -> tuple[Structure, dict[str, Any]]:
    """The model's structure, and the symbolic output of each hidden layer (by layer name).

    A model without a layer graph (a subclassed ``keras.Model``) gets every
    layer with weights listed as not aligned, and no hidden outputs.
    """
    names = dict(zip((id(v) for v in model.weights), variable_names(list(model.weights))))
    graph = getattr(model, "_functional", None) or model
    if not hasattr(graph, "_nodes") or not hasattr(graph, "operations"):
        note = "not aligned: a subclassed model, whose call() reprokit cannot follow"
        layers = tuple(
            LayerInfo(layer.name, type(layer).__name__, _names(layer, names), False, note)
            for layer in getattr(model, "layers", [])
            if layer.weights
        )
        return Structure(layers), {}
    return _Walk(graph, names).run()


def _names(layer: Any, names: dict[int, str]) -> tuple[str, ...]:
    return tuple(names[id(v)] for v in layer.weights if id(v) in names)


class _Walk:
    """One pass over a functional graph in topological order."""

    def __init__(self, graph: Any, names: dict[int, str]) -> None:
        self.graph = graph
        self.names = names
        self.units: dict[int, _Units] = {}  # by id of a KerasTensor
        self.groups: list[_Building] = []
        self.layers: list[LayerInfo] = []
        self.outputs: dict[str, Any] = {}  # the output of each layer with weights called once

    def run(self) -> tuple[Structure, dict[str, Any]]:
        for layer in self.graph.operations:
            if type(layer).__name__ == "InputLayer":
                continue
            nodes = [n for i, n in enumerate(layer._inbound_nodes) if f"{id(layer)}_ib-{i}" in self.graph._nodes]
            if len(nodes) != 1:
                self._barrier(layer, nodes, "a layer called more than once (shared weights)")
            else:
                self._layer(layer, nodes[0])
        for tensor in self.graph.outputs:
            self._fix(tensor, OUTPUT_NOTE)
        ends = {id(t) for t in self.graph.outputs}
        fixed = {g.layer: g.fixed for g in self.groups if g.fixed is not None}
        layers, hidden = [], {}
        for info in self.layers:
            note = fixed.get(info.name, info.note)
            is_hidden = info.hidden and note != OUTPUT_NOTE and id(self.outputs.get(info.name)) not in ends
            layers.append(LayerInfo(info.name, info.kind, info.variables, is_hidden, note))
            if is_hidden:
                hidden[info.name] = self.outputs[info.name]
        groups = tuple(Group(g.layer, g.size, tuple(g.axes)) for g in self.groups if g.fixed is None)
        return Structure(tuple(layers), groups), hidden

    def _fix(self, tensor: Any, why: str) -> bool:
        """Keeps the order of the units that reach ``tensor``; whether there were any."""
        units = self.units.get(id(tensor))
        if units is None or units.group is None:
            return False
        if units.group.fixed is None:
            units.group.fixed = why
        return True

    def _barrier(self, layer: Any, nodes: list[Any], why: str) -> None:
        """A layer reprokit does not see through: the units reaching it keep their order."""
        kind = type(layer).__name__
        feeds = False
        for node in nodes:
            for tensor in node.input_tensors:
                feeds = self._fix(tensor, f"not aligned: its units feed {layer.name} ({kind}), {why}") or feeds
            for tensor in node.output_tensors:
                self.units[id(tensor)] = _Units(None)
        variables = _names(layer, self.names)
        single = len(nodes) == 1 and len(nodes[0].output_tensors) == 1
        if single and variables:
            self.outputs[layer.name] = nodes[0].output_tensors[0]
        if variables or feeds:
            hidden = single and bool(variables)
            self.layers.append(LayerInfo(layer.name, kind, variables, hidden, f"not aligned: {why}"))

    def _layer(self, layer: Any, node: Any) -> None:
        kind = type(layer).__name__
        inputs, outputs = list(node.input_tensors), list(node.output_tensors)
        if len(inputs) != 1 or len(outputs) != 1:
            self._barrier(layer, [node], "a merge of several tensors, which reprokit does not align through")
            return
        src = self.units.get(id(inputs[0]), _Units(None))
        result = self._units_of(layer, kind, src, tuple(inputs[0].shape))
        if result is None:
            self._barrier(layer, [node], f"a {kind} layer, which reprokit does not align through")
            return
        self.units[id(outputs[0])] = result
        variables = _names(layer, self.names)
        if variables:
            owns = result.group is not None and result.group is not src.group
            self.layers.append(LayerInfo(layer.name, kind, variables, owns))
            self.outputs[layer.name] = outputs[0]

    def _units_of(self, layer: Any, kind: str, src: _Units, in_shape: tuple[Any, ...]) -> _Units | None:
        """The units of the layer's output, with its weights' axes recorded; None: a barrier."""
        name = self.names.get
        channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
        bias = getattr(layer, "bias", None)
        if kind == "Dense" and _plain(layer, ("kernel", "bias")):
            return self._new(layer, src, name(id(layer.kernel)), name(id(bias)) if bias is not None else None)
        if kind in _CONV and channels_last and getattr(layer, "groups", 1) == 1 and _plain(layer, ("kernel", "bias")):
            if src.tile != 1:
                return None
            return self._new(layer, src, name(id(layer.kernel)), name(id(bias)) if bias is not None else None)
        if kind == "Embedding" and _plain(layer, ("embeddings",)):
            return self._new(layer, _Units(None), name(id(layer.embeddings)), None)
        if kind in ("BatchNormalization", "LayerNormalization") and _last_axis(layer.axis, len(in_shape)):
            owned = [v for v in _NORMALIZATION if getattr(layer, v, None) is not None]
            if not _plain(layer, tuple(owned)):
                return None
            if src.group is not None:
                src.group.axes.extend(Axis(name(id(getattr(layer, v))), 0, src.tile) for v in owned)  # type: ignore[arg-type]
            return src
        if kind in _ELEMENTWISE and not layer.weights:
            return src
        if kind == "Softmax" and _last_axis(layer.axis, len(in_shape)):
            return src
        if (kind in _SPATIAL or kind in _GLOBAL) and channels_last and src.tile == 1 and not layer.weights:
            return src
        if kind == "Flatten" and channels_last and not layer.weights:
            if src.group is None:
                return src
            count = math.prod(int(d) for d in in_shape[1:]) if all(d is not None for d in in_shape[1:]) else None
            if count is None or count % src.group.size:
                return None
            return _Units(src.group, count // src.group.size)
        return None

    def _new(self, layer: Any, src: _Units, kernel: str | None, bias: str | None) -> _Units:
        """A layer with units of its own: its kernel's last axis (and bias) are them, its input axis the source's."""
        assert kernel is not None
        size = int(layer.kernel.shape[-1]) if hasattr(layer, "kernel") else int(layer.embeddings.shape[-1])
        group = _Building(layer.name, size, [Axis(kernel, -1)])
        if bias is not None:
            group.axes.append(Axis(bias, 0))
        if src.group is not None:
            src.group.axes.append(Axis(kernel, -2, src.tile))
        self.groups.append(group)
        return _Units(group)


def _plain(layer: Any, attributes: tuple[str, ...]) -> bool:
    """Whether the layer's weights are exactly these attributes (no LoRA, no quantization, nothing extra)."""
    expected = {id(getattr(layer, a)) for a in attributes if getattr(layer, a, None) is not None}
    return {id(v) for v in layer.weights} == expected and not getattr(layer, "lora_enabled", False)


def _last_axis(axis: Any, ndim: int) -> bool:
    axes = list(axis) if isinstance(axis, list | tuple) else [axis]
    return len(axes) == 1 and axes[0] % ndim == ndim - 1


def activations(model: Any, hidden: dict[str, Any], inputs: Any, budget: int = 1 << 22) -> dict[str, np.ndarray]:
    """Each hidden layer's activations on ``inputs`` (a batch), in float32.

    A layer whose activations would hold more than ``budget`` numbers is
    averaged over its positions (channels kept), so memory stays bounded.
    """
    if not hidden:
        return {}
    graph = getattr(model, "_functional", None) or model
    probe = keras.Model(graph.input, list(hidden.values()))
    values = probe(inputs, training=False)
    values = values if isinstance(values, list | tuple) else [values]
    found = {}
    for name, value in zip(hidden, values):
        array = np.asarray(value, dtype=np.float32)
        if array.size > budget and array.ndim > 2:
            array = array.reshape(len(array), -1, array.shape[-1]).mean(axis=1)
        found[name] = array
    return found


def weights_of(model: Any) -> dict[str, np.ndarray]:
    """The model's weights now, by name (as runs save them: :func:`reprokit.worker.registry.variable_names`)."""
    return {n: np.asarray(v.numpy()) for n, v in zip(variable_names(list(model.weights)), model.weights)}


@contextmanager
def weights_set(model: Any, values: dict[str, np.ndarray]) -> Iterator[None]:
    """``model`` with some weights set to ``values`` (by name) for the block; restored exactly after."""
    by_name = dict(zip(variable_names(list(model.weights)), model.weights))
    saved = {name: np.array(by_name[name].numpy()) for name in values}
    try:
        for name, value in values.items():
            by_name[name].assign(value)
        yield
    finally:
        for name, value in saved.items():
            by_name[name].assign(value)


def output_difference(model: Any, inputs: Any, changed: dict[str, np.ndarray]) -> float:
    """Largest |Δ output| of ``model`` on ``inputs`` with weights ``changed``, relative to the outputs' scale."""
    before = [np.asarray(o, dtype=np.float64) for o in _flat(model(inputs, training=False))]
    with weights_set(model, changed):
        after = [np.asarray(o, dtype=np.float64) for o in _flat(model(inputs, training=False))]
    scale = max((float(np.max(np.abs(o))) for o in before if o.size), default=0.0)
    diff = max((float(np.max(np.abs(x - y))) for x, y in zip(before, after) if x.size), default=0.0)
    return diff / max(scale, 1e-12)


def first(outputs: Any) -> Any:
    """The first array of a model's inputs or outputs (a single one, a list or a dict)."""
    return _flat(outputs)[0]


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Keras puts details on the next ones)."""
    return next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)


def _flat(outputs: Any) -> list[Any]:
    if isinstance(outputs, dict):
        return [outputs[k] for k in sorted(outputs)]
    return list(outputs) if isinstance(outputs, list | tuple) else [outputs]


def verified(model: Any, structure: Structure, inputs: Any, seed: int = 0) -> Structure:
    """``structure`` without the groups whose random permutation changes ``model``'s outputs on ``inputs``.

    The same function means outputs equal to :data:`SAME_FUNCTION` of their
    scale (1e-2 for a model computing in 16 bits, where another order of the
    units rounds differently).
    """
    if not structure.groups:
        return structure
    weights = weights_of(model)
    rng = np.random.default_rng(seed)
    perms = {g.layer: rng.permutation(g.size) for g in structure.groups}
    tolerance = SAME_FUNCTION if getattr(model, "compute_dtype", "float32") in ("float32", "float64") else 1e-2
    if output_difference(model, inputs, _changed(structure, weights, perms)) <= tolerance:
        return structure
    for group in structure.groups:  # find the groups at fault, one at a time
        alone = {group.layer: perms[group.layer]}
        single = Structure(structure.layers, (group,))
        if output_difference(model, inputs, _changed(single, weights, alone)) > tolerance:
            structure = structure.without(
                group.layer, "not aligned: permuting its units changed the model's outputs (a layer reprokit misreads)"
            )
    return structure


def _changed(structure: Structure, weights: dict[str, np.ndarray], perms: Permutations) -> dict[str, np.ndarray]:
    """The weights that ``perms`` move, moved."""
    return permute(structure, {n: weights[n] for n in structure.moved}, perms)


def record(label: str, model: Any, probe: Any, verify: bool = True) -> dict[str, np.ndarray]:
    """What a run saves for alignment: the model's structure (JSON), checked on ``probe``, and its activations.

    Keys: ``structure/<label>``, ``activations/<label>/<layer>`` and
    ``untrained/<label>/<layer>`` (see :func:`untrained_activations`).
    """
    structure, hidden = describe(model)
    if verify:
        structure = verified(model, structure, probe)
    arrays = {f"structure/{label}": np.array(structure.to_json())}
    for layer, values in activations(model, hidden, probe).items():
        arrays[f"activations/{label}/{layer}"] = values
    for layer, values in untrained_activations(model, probe).items():
        arrays[f"untrained/{label}/{layer}"] = values
    return arrays


def untrained_activations(model: Any, inputs: Any) -> dict[str, np.ndarray]:
    """The hidden activations of a fresh copy of ``model`` (new initial weights, no training) on ``inputs``.

    Two such copies give the CKA of two untrained networks of this shape on
    this data: the reference a trained pair's CKA is read against (random
    networks already share much of the inputs' geometry). Empty when the
    model cannot be cloned (a subclassed model).
    """
    try:
        fresh = keras.models.clone_model(model)
    except Exception:  # noqa: BLE001 - no reference for a model Keras cannot clone
        return {}
    _, hidden = describe(fresh)
    return activations(fresh, hidden, inputs)

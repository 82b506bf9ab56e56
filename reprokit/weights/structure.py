"""Which weights of a network move together when its hidden units are listed in another order (pure data).

A hidden layer's units can be listed in any order: permute the columns of
its kernel and its bias, and the rows of the next layer's kernel, the same
way, and the network computes the same function. A :class:`Group` names
every weight axis that one layer's units index, so that a permutation of
those units is one permutation applied along each of them.

The description is made where the model lives (:mod:`reprokit.worker.anatomy`, in
the run process) and read where runs are compared (:mod:`reprokit.weights.matching`,
which never imports TensorFlow); it travels as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Axis:
    """One axis of one weight variable that a group's units index.

    Attributes:
        variable: the variable's name (its Keras path, as runs save it).
        axis: which axis (negative counts from the end).
        tile: the axis holds ``tile`` blocks of the units, units innermost
            (a ``Flatten`` of a channels-last feature map: position-major,
            channel-minor).
    """

    variable: str
    axis: int
    tile: int = 1


@dataclass(frozen=True)
class Group:
    """The units of one hidden layer, and every weight axis they index."""

    layer: str
    size: int
    axes: tuple[Axis, ...]


@dataclass(frozen=True)
class LayerInfo:
    """One layer with weights (or one reprokit cannot see through).

    Attributes:
        name: the Keras layer name.
        kind: its class name (``Dense``, ``Conv2D``, ``Add``…).
        variables: its weight variables' names.
        hidden: its output is a hidden representation (not a model output):
            its activations are recorded and compared (linear CKA).
        note: why its units are not aligned (None: aligned, or it has no
            units of its own).
    """

    name: str
    kind: str
    variables: tuple[str, ...] = ()
    hidden: bool = False
    note: str | None = None


@dataclass(frozen=True)
class Structure:
    """A network's layers and its permutable unit groups."""

    layers: tuple[LayerInfo, ...]
    groups: tuple[Group, ...] = field(default=())

    def group(self, layer: str) -> Group | None:
        return next((g for g in self.groups if g.layer == layer), None)

    @property
    def moved(self) -> frozenset[str]:
        """The variables some group's units index (the ones a permutation changes)."""
        return frozenset(ax.variable for g in self.groups for ax in g.axes)

    @property
    def hidden(self) -> tuple[str, ...]:
        """The layers whose activations are compared, in order."""
        return tuple(layer.name for layer in self.layers if layer.hidden)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Structure:
        data: dict[str, Any] = json.loads(text)
        layers = tuple(
            LayerInfo(d["name"], d["kind"], tuple(d["variables"]), d["hidden"], d["note"]) for d in data["layers"]
        )
        groups = tuple(
            Group(g["layer"], g["size"], tuple(Axis(a["variable"], a["axis"], a["tile"]) for a in g["axes"]))
            for g in data["groups"]
        )
        return cls(layers, groups)

    def without(self, layer: str, note: str) -> Structure:
        """This structure with ``layer``'s units no longer aligned, for the reason ``note``."""
        layers = tuple(
            LayerInfo(info.name, info.kind, info.variables, info.hidden, note) if info.name == layer else info
            for info in self.layers
        )
        return Structure(layers, tuple(g for g in self.groups if g.layer != layer))


def under(arrays: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The arrays whose key starts with ``prefix``, keyed by the rest (``activations/<model>/`` gives layers).

    Runs and ``reprokit align`` save their arrays under such prefixes
    (``weights/``, ``activations/``, ``untrained/``: see :func:`reprokit.worker.anatomy.record`).
    """
    return {key[len(prefix) :]: arrays[key] for key in list(arrays) if key.startswith(prefix)}

"""Why are the weights of two networks different? Weight matching and functional similarity (pure NumPy + SciPy).

Two trainings of one architecture (two seeds) end with different weights
for three reasons: the seed, the order of the hidden units (any order
computes the same function), and training finding another solution. This
module separates them:

1. :func:`match` puts network B's hidden units in A's order: the weight
   matching of "Git Re-Basin" (Ainsworth et al., 2022), one permutation per
   unit group (:class:`~reprokit.weights.structure.Group`), each the
   :func:`scipy.optimize.linear_sum_assignment` that best lines up every
   weight the units index, the layers taken in turn until none improves.
2. :func:`compare` measures, per layer, the relative L2 distance of the
   weights before and after matching (the share of the difference that the
   order explains), the correlations of matched units' activations (how
   many units have a near-twin), and linear CKA of the activations.

The same code serves ``reprokit align`` (two saved models) and the seed pair
of ``reprokit check`` (arrays the runs saved).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from reprokit.weights.similarity import TWIN, linear_cka, unit_correlations
from reprokit.weights.structure import Axis, Group, Structure

Weights = Mapping[str, np.ndarray]
Permutations = Mapping[str, np.ndarray]

MAX_ROUNDS = 100
"""Rounds over every layer at most (in practice a handful: it stops when no layer improves)."""


def _split(shape: tuple[int, ...], axis: int, tile: int, units: int) -> tuple[tuple[int, ...], int]:
    """``shape`` with ``axis`` split into (tile, units); the index of the units axis in it."""
    axis %= len(shape)
    return (*shape[:axis], tile, units, *shape[axis + 1 :]), axis + 1


def take(array: np.ndarray, ax: Axis, perm: np.ndarray) -> np.ndarray:
    """``array`` with the units on ``ax`` put in the order ``perm`` (unit i of the result is unit perm[i])."""
    split, at = _split(array.shape, ax.axis, ax.tile, perm.size)
    return np.take(array.reshape(split), perm, axis=at).reshape(array.shape)


def _units_first(array: np.ndarray, ax: Axis, units: int) -> np.ndarray:
    """``array`` as a matrix with one row per unit of ``ax`` (float64)."""
    split, at = _split(array.shape, ax.axis, ax.tile, units)
    return np.moveaxis(array.reshape(split), at, 0).reshape(units, -1).astype(np.float64)


def _axes_by_variable(structure: Structure) -> dict[str, list[tuple[Axis, Group]]]:
    found: dict[str, list[tuple[Axis, Group]]] = {}
    for group in structure.groups:
        for ax in group.axes:
            found.setdefault(ax.variable, []).append((ax, group))
    return found


def _permuted(
    array: np.ndarray, axes: list[tuple[Axis, Group]], perms: Permutations, skip: Group | None = None
) -> np.ndarray:
    for ax, group in axes:
        if group is not skip:
            array = take(array, ax, perms[group.layer])
    return array


def permute(structure: Structure, weights: Weights, perms: Permutations) -> dict[str, np.ndarray]:
    """``weights`` with every group's units in the order ``perms`` (by layer); other variables as they are."""
    by_variable = _axes_by_variable(structure)
    return {name: _permuted(np.asarray(w), by_variable.get(name, []), perms) for name, w in weights.items()}


def match(structure: Structure, a: Weights, b: Weights) -> tuple[dict[str, np.ndarray], int]:
    """The order of B's units that best matches A's weights, per group; and the rounds it took.

    Coordinate descent: each group's permutation maximizes the inner product
    of A's and B's weights along every axis it indexes, the other groups'
    permutations held; a permutation is replaced only by a strictly better
    one, so the objective rises until a round changes nothing. Deterministic:
    the same weights give the same permutations.
    """
    by_variable = _axes_by_variable(structure)
    perms = {g.layer: np.arange(g.size) for g in structure.groups}
    rounds = 0
    for rounds in range(1, MAX_ROUNDS + 1):  # noqa: B007 - reported
        changed = False
        for group in structure.groups:
            cost = np.zeros((group.size, group.size))
            for ax in group.axes:
                wa = _units_first(np.asarray(a[ax.variable]), ax, group.size)
                wb = _permuted(np.asarray(b[ax.variable]), by_variable[ax.variable], perms, skip=group)
                cost += wa @ _units_first(wb, ax, group.size).T
            cost = np.nan_to_num(cost, nan=0.0, posinf=0.0, neginf=0.0)
            from scipy.optimize import linear_sum_assignment  # imported here: it costs every command 0.4 s

            _, best = linear_sum_assignment(cost, maximize=True)
            now = perms[group.layer]
            gain = cost[np.arange(group.size), best].sum() - cost[np.arange(group.size), now].sum()
            if gain > 1e-12 * max(1.0, abs(cost[np.arange(group.size), now].sum())):
                perms[group.layer] = best
                changed = True
        if not changed or len(structure.groups) <= 1:
            break
    return perms, rounds


@dataclass(frozen=True)
class UnitMatch:
    """How well matched units agree: correlations of their activations on the data."""

    units: int
    twins: int  # matched units whose activations correlate ≥ TWIN
    median: float | None
    lowest: float | None


@dataclass(frozen=True)
class LayerAlignment:
    """One layer of the two networks, before and after matching.

    Attributes:
        layer: the Keras layer name.
        kind: its class name.
        units: its units (None: it has no units of its own, e.g. a normalization).
        aligned: whether its units were matched.
        note: why they were not (the output layer, an unsupported layer).
        before: the relative L2 distance of its weights, ‖A − B‖ / ‖A‖.
        after: the same against B with matched units.
        cka: linear CKA of its activations (hidden layers, with data).
        matched: the correlations of matched units (aligned hidden layers, with data).
        untrained_cka: the CKA of the same layer of two untrained networks of
            this shape on the same data: what the architecture alone gives.
    """

    layer: str
    kind: str
    units: int | None
    aligned: bool
    note: str | None
    before: float | None
    after: float | None
    cka: float | None = None
    matched: UnitMatch | None = None
    untrained_cka: float | None = None


@dataclass(frozen=True)
class Alignment:
    """Two networks compared after putting B's hidden units in A's order.

    Attributes:
        layers: every layer with weights or an unsupported one, in order.
        before: the relative L2 distance of all weights, ‖A − B‖ / ‖A‖.
        after: the same with B's units matched to A's.
        rounds: rounds of the coordinate descent.
        cka: mean linear CKA over the hidden layers (None: no activations).
        agreement: share of examples on which both predict the same class.
        untrained_cka: mean CKA of the same layers of two untrained networks
            of this shape (None: not measured).
    """

    layers: tuple[LayerAlignment, ...]
    before: float
    after: float
    rounds: int
    cka: float | None
    agreement: float | None
    untrained_cka: float | None = None

    @property
    def explained(self) -> float | None:
        """The share of the squared distance that the order of the hidden units explains.

        None when no layer was aligned or the weights do not differ.
        """
        if not self.aligned_layers or self.before <= 0 or not math.isfinite(self.before):
            return None
        return max(0.0, 1.0 - (self.after / self.before) ** 2)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: every figure, and every layer's."""
        return {
            "relative_l2_before": self.before,
            "relative_l2_after": self.after,
            "explained_by_order": self.explained,
            "rounds": self.rounds,
            "mean_cka": self.cka,
            "mean_cka_untrained": self.untrained_cka,
            "prediction_agreement": self.agreement,
            "layers": [asdict(layer) for layer in self.layers],
        }

    @property
    def aligned_layers(self) -> int:
        return sum(layer.aligned for layer in self.layers)

    @property
    def unsupported(self) -> tuple[LayerAlignment, ...]:
        """Layers that could not be aligned for a reason other than being an output."""
        return tuple(layer for layer in self.layers if layer.note is not None and not layer.note.startswith("output"))


@dataclass(frozen=True)
class ModelAlignment:
    """The alignment of one trained model of two runs (by its label in the runs)."""

    model: str
    alignment: Alignment


def _distance(a: Weights, b: Weights, names: tuple[str, ...]) -> tuple[float, float]:
    """Sum of squared differences and sum of squares of A, over ``names`` (float64)."""
    squared = norm = 0.0
    for name in names:
        x, y = np.asarray(a[name], dtype=np.float64), np.asarray(b[name], dtype=np.float64)
        squared += float(np.sum(np.square(x - y)))
        norm += float(np.sum(np.square(x)))
    return squared, norm


def _relative(squared: float, norm: float) -> float:
    if squared == 0:
        return 0.0
    return math.sqrt(squared / norm) if norm > 0 else math.inf


def compare(
    structure: Structure,
    a: Weights,
    b: Weights,
    activations_a: Mapping[str, np.ndarray] | None = None,
    activations_b: Mapping[str, np.ndarray] | None = None,
    agreement: float | None = None,
    perms: Permutations | None = None,
    untrained: tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]] | None = None,
) -> Alignment:
    """Matches B's units to A's (unless ``perms`` are given) and measures both networks, layer by layer.

    Args:
        structure: the networks' (shared) structure.
        a: A's weights by variable name.
        b: B's weights, the same names and shapes.
        activations_a: A's activations of hidden layers on some data, by layer.
        activations_b: B's on the same data.
        agreement: the share of examples on which both predict the same class.
        perms: the permutations to use, by layer (from an earlier :func:`match`).
        untrained: the activations of two untrained networks of this shape on
            the same data, by layer: the reference CKA.
    """
    rounds = 0
    if perms is None:
        perms, rounds = match(structure, a, b)
    b_matched = permute(structure, b, perms)
    acts_a, acts_b = activations_a or {}, activations_b or {}
    fresh_a, fresh_b = untrained or ({}, {})
    rows, total_before, total_after, total_norm = [], 0.0, 0.0, 0.0
    for info in structure.layers:
        names = tuple(n for n in info.variables if n in a and n in b)
        sq_before, norm = _distance(a, b, names)
        sq_after, _ = _distance(a, b_matched, names)
        total_before, total_after, total_norm = total_before + sq_before, total_after + sq_after, total_norm + norm
        group = structure.group(info.name)
        cka = matched = reference = None
        if info.name in fresh_a and info.name in fresh_b and info.name in acts_a:
            reference = linear_cka(fresh_a[info.name], fresh_b[info.name])
        if info.name in acts_a and info.name in acts_b:
            x, y = acts_a[info.name], acts_b[info.name]
            cka = linear_cka(x, y)
            if group is not None and x.shape == y.shape and x.shape[-1] == group.size:
                matched = _unit_match(unit_correlations(x, np.take(y, perms[info.name], axis=-1)))
        rows.append(
            LayerAlignment(
                info.name,
                info.kind,
                group.size if group is not None else None,
                group is not None,
                info.note,
                _relative(sq_before, norm) if names else None,
                _relative(sq_after, norm) if names else None,
                cka,
                matched,
                reference,
            )
        )
    ckas = [r.cka for r in rows if r.cka is not None]
    references = [r.untrained_cka for r in rows if r.cka is not None and r.untrained_cka is not None]
    return Alignment(
        tuple(rows),
        _relative(total_before, total_norm),
        _relative(total_after, total_norm),
        rounds,
        float(np.mean(ckas)) if ckas else None,
        agreement,
        float(np.mean(references)) if references and len(references) == len(ckas) else None,
    )


def _unit_match(corr: np.ndarray) -> UnitMatch:
    finite = corr[np.isfinite(corr)]
    return UnitMatch(
        int(corr.size),
        int(np.sum(finite >= TWIN)),
        float(np.median(finite)) if finite.size else None,
        float(np.min(finite)) if finite.size else None,
    )

"""How alike two networks' representations are, whatever the order of their units (pure NumPy).

* :func:`linear_cka`: linear centered kernel alignment (Kornblith et al.,
  2019) of two layers' activations on the same inputs: 1 for the same
  features up to a rotation (a permutation is one) and a scale, near 0 for
  unrelated ones.
* :func:`unit_correlations`: for units matched one to one, the correlation
  of each unit's activations with its match's.
* :func:`loss_barrier`: how much higher the loss gets along the straight
  path between two networks than between its ends.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

TWIN = 0.9
"""A matched unit whose activations correlate at least this much with its match's is its near-twin."""


def _rows(activations: np.ndarray) -> np.ndarray:
    """One row per example, centered per feature, in float64."""
    x = np.asarray(activations, dtype=np.float64).reshape(len(activations), -1)
    centered: np.ndarray = x - x.mean(axis=0, keepdims=True)
    return centered


def linear_cka(x: np.ndarray, y: np.ndarray) -> float | None:
    """Linear CKA of two representations of the same examples (rows): ``x`` (n, …) and ``y`` (n, …).

    Returns:
        A value in [0, 1]; None when either representation is constant (no
        variance: CKA is undefined) or not finite, or the row counts differ.
    """
    if len(x) != len(y) or len(x) < 2:
        return None
    a, b = _rows(x), _rows(y)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return None
    if a.shape[1] * b.shape[1] <= len(a) * len(a):  # features: ||BᵀA||² / (||AᵀA|| ||BᵀB||)
        cross = np.sum(np.square(b.T @ a))
        norms = np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)
    else:  # examples: the same through n×n Gram matrices (wide feature maps)
        ka, kb = a @ a.T, b @ b.T
        cross = np.sum(ka * kb)
        norms = np.linalg.norm(ka) * np.linalg.norm(kb)
    if norms <= 0:
        return None
    return float(min(1.0, max(0.0, cross / norms)))


def unit_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each unit of ``x`` with the same unit of ``y`` (units on the last axis).

    Every other axis (examples, positions) is a sample. A unit that is
    constant in either network gets NaN.
    """
    units = x.shape[-1]
    a = np.asarray(x, dtype=np.float64).reshape(-1, units)
    b = np.asarray(y, dtype=np.float64).reshape(-1, units)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt(np.sum(a * a, axis=0) * np.sum(b * b, axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.sum(a * b, axis=0) / den
    return np.where(den > 0, corr, np.nan)


def loss_barrier(losses: Sequence[float]) -> float:
    """The largest excess of the loss on the path over the straight line between its ends.

    ``losses`` are taken at evenly spaced points from one network (first) to
    the other (last). 0 (the ends count as 0): the two are linearly connected.
    """
    values = np.asarray(losses, dtype=np.float64)
    t = np.linspace(0.0, 1.0, len(values))
    line = (1 - t) * values[0] + t * values[-1]
    return float(np.max(values - line))


@dataclass(frozen=True)
class Similarity:
    """How alike the hidden layers of networks trained with different seeds are, over every pair.

    Attributes:
        mean: mean over pairs of the pair's mean linear CKA over hidden layers.
        min: the lowest pair's.
        untrained: the same for untrained copies of each network (the
            architecture's own similarity on this data), or None.
        pairs: pairs measured.
    """

    mean: float
    min: float
    untrained: float | None
    pairs: int


Layers = Mapping[str, np.ndarray]


def across(networks: Sequence[tuple[Layers, Layers]]) -> Similarity | None:
    """:class:`Similarity` of networks given as (activations, untrained activations) by layer, on one batch.

    None with fewer than two networks or no layer in common.
    """
    trained, untrained = [], []
    for (acts_a, fresh_a), (acts_b, fresh_b) in itertools.combinations(networks, 2):
        values = [linear_cka(acts_a[k], acts_b[k]) for k in sorted(set(acts_a) & set(acts_b))]
        found = [v for v in values if v is not None]
        if not found:
            continue
        trained.append(float(np.mean(found)))
        same = all(k in fresh_b and np.array_equal(fresh_a[k], fresh_b[k]) for k in fresh_a)
        references = [linear_cka(fresh_a[k], fresh_b[k]) for k in sorted(set(fresh_a) & set(fresh_b))]
        kept = [v for v in references if v is not None]
        if kept and not same:
            untrained.append(float(np.mean(kept)))
    if not trained:
        return None
    reference = float(np.mean(untrained)) if len(untrained) == len(trained) else None
    return Similarity(float(np.mean(trained)), float(min(trained)), reference, len(trained))


def class_agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    """Share of rows on which two models' outputs ``a`` and ``b`` predict the same class (None: not classes)."""
    classes_a, classes_b = _classes(a), _classes(b)
    if classes_a is None or classes_b is None or classes_a.shape != classes_b.shape:
        return None
    return float(np.mean(classes_a == classes_b))


def _classes(pred: np.ndarray) -> np.ndarray | None:
    if pred.ndim == 0 or pred.size == 0:
        return None
    if pred.ndim >= 2 and pred.shape[-1] > 1:
        return np.asarray(np.argmax(pred, axis=-1))
    flat = pred.reshape(pred.shape[0], -1)
    if flat.shape[1] == 1 and np.all((flat >= 0) & (flat <= 1)):
        return (flat[:, 0] > 0.5).astype(np.int8)  # a sigmoid output: two classes
    return None

"""Which models and optimizers a run trains, and the labels its events name them by.

Part of the :class:`~reprokit.worker.recorder.Recorder` (pure Python: the caller
reads TensorFlow values). Every model the script calls is registered under
a unique label; when an optimizer first applies gradients, the registry
learns which models own the variables it trains (the outermost ones), or
tracks the bare variables if no registered model holds them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


class TrackedModel:
    """A model (or a bare list of variables) whose weights are fingerprinted.

    Args:
        label: the unique name events report it under.
        model: the Keras model, or None for bare variables.
        variables: the bare variables (ignored for a model).
    """

    __slots__ = (
        "_initialized",
        "_label",
        "_model",
        "_names",
        "_probe",
        "_step",
        "_variables",
        "initial",
        "initial_state",
        "optimizer",
    )

    def __init__(self, label: str, model: Any | None = None, variables: Sequence[Any] = ()) -> None:
        self._label = label
        self._model = model
        self._variables = list(variables)
        self._step = 0
        self._initialized = False
        self._probe: Any = None
        self._names: list[str] = []
        self.initial: list[Any] | None = None
        """Its weights' values kept before a training that hides them (JAX's ``fit``), for its ``init`` event."""
        self.initial_state: list[Any] | None = None
        """The values of its state besides the weights (:mod:`reprokit.worker.state`), kept likewise."""
        self.optimizer: Any = None
        """The optimizer that trains it (the last one seen), whose state is part of the training's."""

    @property
    def label(self) -> str:
        """The name events report it under (``dense_model``, ``dense_model#2``, ``variables:SGD``)."""
        return self._label

    @property
    def model(self) -> Any | None:
        """The Keras model, or None for bare variables."""
        return self._model

    @property
    def step(self) -> int:
        """The optimizer steps it made so far."""
        return self._step

    @property
    def probe(self) -> Any:
        """The batch its predictions are taken on at the end (its first training batch), or None."""
        return self._probe

    def set_probe(self, batch: Any) -> None:
        """Keeps ``batch`` as the probe, unless there is one already."""
        if self._probe is None:
            self._probe = batch

    def weights(self) -> list[Any]:
        """Its variables now (a model's may grow while it is built)."""
        return list(self._model.weights) if self._model is not None else self._variables

    def names(self, weights: list[Any]) -> list[str]:
        """``variable_names(weights)``, computed again only when the weights change."""
        if len(self._names) != len(weights):
            self._names = variable_names(weights)
        return self._names

    def advance(self, steps: int) -> None:
        """Counts ``steps`` more optimizer steps."""
        self._step += steps

    def first_sight(self) -> bool:
        """True the first time only: its initial weights are to be reported now."""
        first, self._initialized = not self._initialized, True
        return first


class OptimizerRecord:
    """An optimizer, the variables it trains, the models they belong to, and its steps so far."""

    __slots__ = ("_iterations", "_optimizer", "_tracked", "_variable_ids")

    def __init__(
        self, optimizer: Any, variable_ids: frozenset[int], tracked: Sequence[TrackedModel], iterations: int
    ) -> None:
        self._optimizer = optimizer
        self._variable_ids = variable_ids
        self._tracked = tuple(tracked)
        self._iterations = iterations

    @property
    def optimizer(self) -> Any:
        return self._optimizer

    @property
    def variable_ids(self) -> frozenset[int]:
        return self._variable_ids

    @property
    def iterations(self) -> int:
        """The optimizer's step count when its last step was recorded."""
        return self._iterations

    @property
    def tracked(self) -> tuple[TrackedModel, ...]:
        """The models (or bare variables) it trains."""
        return self._tracked

    def advance(self, iterations: int) -> int:
        """Takes the optimizer's ``iterations`` now; returns the steps made since the last time (or 0)."""
        delta = iterations - self._iterations
        if delta > 0:
            self._iterations = iterations
        return delta


class ModelRegistry:
    """Every model the script called and every optimizer that stepped, in order of first sight."""

    def __init__(self) -> None:
        self._models: dict[int, TrackedModel] = {}
        self._optimizers: dict[int, OptimizerRecord] = {}
        self._labels: set[str] = set()

    def register(self, model: Any) -> TrackedModel:
        """The model's record, made on first sight."""
        tracked = self._models.get(id(model))
        if tracked is None:
            tracked = TrackedModel(self._unique_label(model.name), model)
            self._models[id(model)] = tracked
        return tracked

    def optimizer(self, optimizer: Any, variables: list[Any], iterations: Callable[[Any], int]) -> OptimizerRecord:
        """The record of ``optimizer`` training ``variables``, made on first sight.

        A new record (a new optimizer, or new variables) starts from
        ``iterations(optimizer)``, its step count now.
        """
        ids = frozenset(id(v) for v in variables)
        record = self._optimizers.get(id(optimizer))
        if record is None or record.variable_ids != ids:
            count = iterations(optimizer)
            record = OptimizerRecord(optimizer, ids, self._owners(optimizer, variables, ids), count)
            self._optimizers[id(optimizer)] = record
            for tracked in record.tracked:
                tracked.optimizer = optimizer
        return record

    def optimizers(self) -> list[OptimizerRecord]:
        """Every optimizer that applied gradients."""
        return list(self._optimizers.values())

    def has_optimizers(self) -> bool:
        """Whether an optimizer applied gradients yet."""
        return bool(self._optimizers)

    def trained(self) -> list[TrackedModel]:
        """Every model (or bare variables) an optimizer trains, once each."""
        seen: dict[int, TrackedModel] = {}
        for record in self._optimizers.values():
            for tracked in record.tracked:
                seen[id(tracked)] = tracked
        return list(seen.values())

    def _owners(self, optimizer: Any, variables: list[Any], ids: frozenset[int]) -> list[TrackedModel]:
        """The outermost registered models holding the trained variables."""
        weight_ids = {key: {id(w) for w in t.weights()} for key, t in self._models.items() if t.model is not None}
        candidates = [key for key, wids in weight_ids.items() if wids & ids]
        outermost = [
            key
            for key in candidates
            if not any(other != key and weight_ids[other] > weight_ids[key] for other in candidates)
        ]
        if outermost:
            return [self._models[key] for key in outermost]
        label = self._unique_label(f"variables:{getattr(optimizer, 'name', 'optimizer')}")
        bare = TrackedModel(label, None, variables)
        self._models[id(bare)] = bare
        return [bare]

    def _unique_label(self, name: str) -> str:
        label, n = name, 1
        while label in self._labels:
            n += 1
            label = f"{name}#{n}"
        self._labels.add(label)
        return label


def variable_names(variables: list[Any]) -> list[str]:
    """Stable, unique names for a list of variables (Keras paths)."""
    names: list[str] = []
    for v in variables:
        name = str(getattr(v, "path", None) or getattr(v, "name", "variable"))
        unique, n = name, 1
        while unique in names:
            n += 1
            unique = f"{name}#{n}"
        names.append(unique)
    return names

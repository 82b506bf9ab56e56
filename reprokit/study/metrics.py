"""The metrics of one run of a seed study, their names, and which way is better.

A study reads what a training reports without changing the script:

* the last value of every metric in each ``Model.fit`` history, under its own
  name (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``; a later
  ``fit`` of the same model replaces an earlier one's values);
* every ``Model.evaluate`` result the script computes (fit's own validation
  excluded), as ``evaluate_<name>`` (``evaluate_accuracy``: the number most
  users report; the last call of a model wins);
* the loss of the last step of a hand-written loop, as ``loss``, for a model
  with no ``fit`` history.

When the script trains or evaluates more than one model, names are prefixed
by the model's label (``generator/loss``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Literal

from reprokit.core.errors import UsageError
from reprokit.run.trace import RunTrace

EVALUATE_PREFIX = "evaluate_"

Mode = Literal["min", "max"]

_LOWER = re.compile(
    r"loss|error|mse|mae|mape|msle|rmse|crossentropy|hinge|divergence|kld|poisson|logcosh|perplexity|huber|wer|cer",
    re.IGNORECASE,
)
_HIGHER = re.compile(
    r"acc|auc|precision|recall|f1|fbeta|iou|r2|score|top_k|dice|specificity|sensitivity|bleu|rouge|similarity",
    re.IGNORECASE,
)


def run_metrics(trace: RunTrace) -> dict[str, float]:
    """Every metric of one run, by name (see the module docstring); NaN stays NaN."""
    per_model: dict[str, dict[str, float]] = {}
    for model in trace.models:
        found = per_model.setdefault(model.name, {})
        for name, values in model.history.items():
            if values:
                found[name] = values[-1]
        if "loss" not in found and model.last_loss is not None:
            found["loss"] = model.last_loss
    for label, results in trace.evaluations.items():
        found = per_model.setdefault(label, {})
        for name, value in results.items():
            found[EVALUATE_PREFIX + name] = value
    shown = {label: values for label, values in per_model.items() if values}
    if len(shown) <= 1:
        return next(iter(shown.values()), {})
    return {f"{label}/{name}": value for label, values in shown.items() for name, value in values.items()}


def run_curves(trace: RunTrace) -> dict[str, tuple[float, ...]]:
    """Every ``fit`` history of one run as a learning curve (one value per epoch), named as :func:`run_metrics`."""
    per_model = {m.name: {k: tuple(v) for k, v in m.history.items() if v} for m in trace.models if m.history}
    if len(per_model) <= 1:
        return next(iter(per_model.values()), {})
    return {f"{label}/{name}": values for label, curves in per_model.items() for name, values in curves.items()}


def direction(name: str) -> Mode | None:
    """Whether lower (``min``) or higher (``max``) values of metric ``name`` are better; None if unknown.

    Lower: names with loss, error, mse, mae, crossentropy, …; higher: accuracy,
    auc, precision, recall, f1, iou, … A name matching both (``accuracy_loss``)
    is unknown.
    """
    base = name.rsplit("/", 1)[-1]
    lower, higher = bool(_LOWER.search(base)), bool(_HIGHER.search(base))
    if lower == higher:
        return None
    return "min" if lower else "max"


def headline(names: Iterable[str], requested: str | None = None) -> str:
    """The metric a study judges by: ``requested`` if given, else the one a user would report.

    Without a request, the first that exists of: an ``evaluate_`` metric that
    is not a loss, a ``val_`` metric that is not a loss, ``evaluate_loss``,
    ``val_loss``, a training metric that is not a loss, ``loss`` (in the
    order the run reported them within each group).

    Raises:
        UsageError: ``requested`` is not among ``names``, or there are none.
    """
    available = list(names)
    if requested is not None:
        if requested not in available:
            shown = ", ".join(available) or "none"
            raise UsageError(f"expected --metric to name a metric the runs reported ({shown}), received {requested!r}")
        return requested
    if not available:
        raise UsageError("the runs reported no metric: no fit history, no evaluate() result and no loss was observed")

    def rank(name: str) -> int:
        base = name.rsplit("/", 1)[-1]
        is_loss = direction(base) == "min"
        if base.startswith(EVALUATE_PREFIX):
            return 2 if is_loss else 0
        if base.startswith("val_"):
            return 3 if is_loss else 1
        return 5 if is_loss else 4

    return min(available, key=lambda name: (rank(name), available.index(name)))


def resolve_mode(name: str, mode: Mode | None) -> Mode:
    """``mode`` if given, else the direction inferred from ``name``.

    Raises:
        UsageError: neither is known.
    """
    if mode is not None:
        return mode
    inferred = direction(name)
    if inferred is None:
        raise UsageError(f"cannot tell whether a higher or lower {name!r} is better: pass --mode max or --mode min")
    return inferred


def all_names(runs: Iterable[Mapping[str, float]]) -> list[str]:
    """Every metric name in ``runs``, in order of first appearance."""
    names: dict[str, None] = {}
    for metrics in runs:
        names.update(dict.fromkeys(metrics))
    return list(names)

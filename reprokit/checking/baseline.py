"""Baselines (golden fingerprints): ``reprokit.lock.json``, written and compared.

A baseline records one controlled run: per model the fingerprint of every
variable at the start and at the end, one fingerprint per optimizer step, the
per-epoch losses and metrics, the seed, the step budget and an environment
signature. A later run in the same environment must match it bit for bit; in
another environment (other TensorFlow, CPU, threads, …) bits cannot be
compared, and the losses and metrics are compared within a tolerance instead.
It is JSON, human-diffable, written atomically, never pickle.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from reprokit.checking.comparison import first_divergence, short_name
from reprokit.checking.lockfile import KIND, SCHEMA_VERSION, args_hash, script_hash
from reprokit.core.files import json_text, write_atomic
from reprokit.core.fingerprint import combine
from reprokit.core.version import __version__
from reprokit.run.environment import SIGNATURE_FIELDS, signature
from reprokit.run.trace import Point, RunTrace

DEFAULT_RTOL = 1e-3
DEFAULT_ATOL = 1e-6
MAX_LOSSES = 1000  # per-step losses kept for models without a fit history


@dataclass(frozen=True)
class EnvironmentDifference:
    field: str
    baseline: Any
    current: Any


@dataclass(frozen=True)
class MetricDifference:
    """A loss or metric that differs (beyond the tolerance, in tolerance mode)."""

    model: str
    metric: str
    unit: str  # "epoch" (fit history, from 1) or "step" (per-step losses)
    index: int
    baseline: float | None
    current: float | None


@dataclass(frozen=True)
class BaselineResult:
    """How a run compares with a baseline.

    Attributes:
        path: the baseline file.
        passed: whether the run matches (bitwise, or within tolerance).
        bitwise: whether the comparison was bitwise (same environment).
        environment_differences: what differs between the environments.
        first_step: the first step whose fingerprint differs (0: the initial
            weights), None if none does or the comparison was not bitwise.
        model: the model of ``first_step``.
        variables: the variables that differ there (at the start or end).
        metric_differences: losses or metrics that differ.
        message: one sentence saying what was compared and what was found.
        script_changed: whether the script's source changed since the
            baseline was recorded (None: the baseline does not say).
        update_command: the command that rewrites the baseline from the
            script as it is now.
    """

    path: str
    passed: bool
    bitwise: bool
    environment_differences: tuple[EnvironmentDifference, ...]
    first_step: int | None
    model: str | None
    variables: tuple[str, ...]
    metric_differences: tuple[MetricDifference, ...]
    message: str
    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    script_changed: bool | None = None
    update_command: str = ""


def model_step_fingerprint(weights: Mapping[str, str]) -> str:
    """One fingerprint for all of a model's variables at one step."""
    return combine([f"{name}={weights[name]}" for name in sorted(weights)])


def from_trace(
    trace: RunTrace, script: Path, args: Sequence[str], path: Path, config: Mapping[str, Any]
) -> dict[str, Any]:
    """The baseline document for ``trace`` (a controlled run of ``script``)."""
    models: dict[str, Any] = {}
    for model in trace.models:
        points = [p for p in trace.points if p.model == model.name]
        init = next((p.weights for p in points if p.step == 0), None)
        entry: dict[str, Any] = {
            "steps": model.steps,
            "initial_weights": dict(sorted(init.items())) if init is not None else None,
            "final_weights": dict(sorted(model.weights.items())),
            "history": {k: list(v) for k, v in model.history.items()},
            "step_fingerprints": {str(p.step): model_step_fingerprint(p.weights) for p in points if p.step > 0},
        }
        if not model.history:
            entry["losses"] = _sampled_losses(points)
        models[model.name] = entry
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "reprokit_version": __version__,
        "script": _relative(script, path.parent),
        "script_sha256": script_hash(script),
        "script_args": list(args),
        "script_args_sha256": args_hash(args),
        "seed": trace.spec.controls.seed,
        "config": dict(config),
        "environment": signature(trace.environment),
        "models": models,
    }


def write(document: Mapping[str, Any], path: Path) -> None:
    write_atomic(path, json_text(document))


def compare(
    document: Mapping[str, Any],
    trace: RunTrace,
    path: Path,
    rtol: float,
    atol: float,
    script: Path | None = None,
    update_command: str = "",
) -> BaselineResult:
    """Compares a run with a loaded baseline (bitwise when the environments match).

    With ``script``, also says whether its source changed since the baseline
    was recorded (and then how to record it anew: ``update_command``).
    """
    current = signature(trace.environment)
    differences = tuple(
        EnvironmentDifference(name, document["environment"].get(name), current.get(name))
        for name in SIGNATURE_FIELDS
        if document["environment"].get(name) != current.get(name)
    )
    if not differences:
        result = _bitwise(document, trace, str(path))
    else:
        result = _within_tolerance(document, trace, str(path), differences, rtol, atol)
    recorded = document.get("script_sha256")
    changed = None if script is None or not recorded else script_hash(script) != recorded
    if changed:
        if result.passed:
            note = "; the script changed since the baseline was recorded, without changing the result"
        else:
            note = f"; the script changed since the baseline was recorded (if that was intended: {update_command})"
        result = replace(result, message=result.message + note)
    return replace(result, script_changed=changed, update_command=update_command)


def _bitwise(document: Mapping[str, Any], trace: RunTrace, path: str) -> BaselineResult:
    baseline_points, current_points = _points(document), _current_points(trace)
    divergence = first_divergence(baseline_points, current_points)
    metrics = tuple(_metric_differences(document, trace, rtol=0.0, atol=0.0))
    finals = {m.name: dict(m.weights) for m in trace.models}
    models = document["models"]
    if divergence is None:
        for name, entry in models.items():
            if finals.get(name) != entry["final_weights"]:
                final = finals.get(name, {})
                changed = tuple(v for v in entry["final_weights"] if final.get(v) != entry["final_weights"][v])
                divergence_model, step = name, entry["steps"]
                return _failed_bitwise(path, divergence_model, step, changed, metrics)
        if set(finals) - set(models):
            extra = sorted(set(finals) - set(models))[0]
            return _failed_bitwise(path, extra, 0, (), metrics)
        steps = sum(entry["steps"] for entry in models.values())
        return BaselineResult(
            path, True, True, (), None, None, (), (), f"bit-identical to the baseline ({steps} steps)"
        )
    changed = divergence.variables
    if divergence.step > 0:  # per-step fingerprints are whole-model: name the variables that end up different
        final = finals.get(divergence.model, {})
        recorded = models.get(divergence.model, {}).get("final_weights", {})
        changed = tuple(v for v in sorted(set(recorded) | set(final)) if recorded.get(v) != final.get(v))
    return _failed_bitwise(path, divergence.model, divergence.step, changed, metrics)


def _failed_bitwise(
    path: str, model: str, step: int, variables: tuple[str, ...], metrics: tuple[MetricDifference, ...]
) -> BaselineResult:
    where = "in the initial weights" if step == 0 else f"from step {step}"
    message = f"differs from the baseline {where} of {model}"
    if variables:
        names = [short_name(model, v) for v in variables]
        message += f" ({', '.join(names[:3])}{' …' if len(names) > 3 else ''})"
    if metrics:
        message += f"; {_describe(metrics[0])}"
    return BaselineResult(path, False, True, (), step, model, variables, metrics, message)


def _within_tolerance(
    document: Mapping[str, Any],
    trace: RunTrace,
    path: str,
    differences: tuple[EnvironmentDifference, ...],
    rtol: float,
    atol: float,
) -> BaselineResult:
    fields = ", ".join(d.field for d in differences)
    prefix = f"bitwise comparison impossible (the environment differs in {fields}); "
    metrics = tuple(_metric_differences(document, trace, rtol, atol))
    steps = {m.name: m.steps for m in trace.models}
    models = document["models"]
    step_mismatch = [name for name, entry in models.items() if steps.get(name) != entry["steps"]]
    compared = sum(len(values) for entry in models.values() for values in _series(entry)[1].values())
    if step_mismatch:
        name = step_mismatch[0]
        message = prefix + f"{name} made {steps.get(name, 0)} steps, the baseline {models[name]['steps']}"
        return BaselineResult(path, False, False, differences, None, name, (), metrics, message, rtol, atol)
    if compared == 0:
        message = prefix + "and the baseline has no losses or metrics to compare within a tolerance"
        return BaselineResult(path, False, False, differences, None, None, (), (), message, rtol, atol)
    if metrics:
        message = prefix + f"{_describe(metrics[0])} (rtol {rtol:g}, atol {atol:g})"
        return BaselineResult(path, False, False, differences, None, metrics[0].model, (), metrics, message, rtol, atol)
    message = prefix + f"{compared} losses and metrics agree within rtol {rtol:g}, atol {atol:g}"
    return BaselineResult(path, True, False, differences, None, None, (), (), message, rtol, atol)


def _describe(m: MetricDifference) -> str:
    values = f"{_fmt(m.baseline)} in the baseline, {_fmt(m.current)} now"
    return f"{m.metric} of {m.model} at {m.unit} {m.index}: {values}"


def _series(entry: Mapping[str, Any]) -> tuple[str, dict[str, dict[int, float | None]]]:
    """A model's comparable values: fit's history by epoch, else sampled losses by step."""
    if entry.get("history"):
        return "epoch", {k: {i: _finite(v) for i, v in enumerate(vals, 1)} for k, vals in entry["history"].items()}
    return "step", {"loss": {int(step): _finite(loss) for step, loss in entry.get("losses", [])}}


def _metric_differences(
    document: Mapping[str, Any], trace: RunTrace, rtol: float, atol: float
) -> list[MetricDifference]:
    """The first differing value of every loss and metric of every model."""
    current_models = {m.name: m for m in trace.models}
    found = []
    for name, entry in document["models"].items():
        model = current_models.get(name)
        if model is None:
            continue
        points = [p for p in trace.points if p.model == name]
        now = {"history": dict(model.history), "losses": _sampled_losses(points)}
        unit, baseline_series = _series(entry)
        _, current_series = _series(now)
        for metric, values in baseline_series.items():
            others = current_series.get(metric, {})
            for index in sorted(set(values) | set(others)):
                a, b = values.get(index), others.get(index)
                if not _close(a, b, rtol, atol):
                    found.append(MetricDifference(name, metric, unit, index, a, b))
                    break
    return found


def _close(a: float | None, b: float | None, rtol: float, atol: float) -> bool:
    if a is None or b is None:  # None stands for a missing value or a NaN (JSON has no NaN)
        return a is None and b is None
    return abs(a - b) <= atol + rtol * abs(a)


def _points(document: Mapping[str, Any]) -> tuple[Point, ...]:
    points: list[Point] = []
    for name, entry in document["models"].items():
        if entry.get("initial_weights") is not None:
            points.append(Point(name, 0, dict(entry["initial_weights"])))
        points += [Point(name, int(step), {"*": fp}) for step, fp in entry["step_fingerprints"].items()]
    return tuple(points)


def _current_points(trace: RunTrace) -> tuple[Point, ...]:
    return tuple(
        p if p.step == 0 else Point(p.model, p.step, {"*": model_step_fingerprint(p.weights)}) for p in trace.points
    )


def _sampled_losses(points: Sequence[Point]) -> list[list[float | int | None]]:
    losses = [(p.step, p.loss) for p in points if p.step > 0 and p.loss is not None]
    if len(losses) > MAX_LOSSES:
        stride = math.ceil(len(losses) / MAX_LOSSES)
        losses = losses[::stride] + ([losses[-1]] if (len(losses) - 1) % stride else [])
    return [[step, loss] for step, loss in losses]


def _relative(script: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(script).resolve(), Path(base).resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(script).resolve().as_posix()


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.6g}"


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None

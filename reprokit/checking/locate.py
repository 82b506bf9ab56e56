"""The exact first divergence of a pair whose runs fingerprinted their weights at sampled steps only.

A check's runs fingerprint their batches and loss after every step, but
their weights only after steps 1, 2, 4, 8, … and every 64th
(``Target.sampled``: a pass over every weight after every step would cost a
large model a third of its step time). Where a pair's weights are equal at
one sample and differ at the next, the first divergence lies between them
(``Divergence.after``): :func:`locate` trains the pair once more up to that
sample, with every step fingerprinted, under the same settings (each run of
the replay has the controls of its run in the pair), and takes the replay's
first divergence when it falls in the same interval (``Divergence.located``).
A run under the controlled settings computes the same bits again, so the
replay finds the step the pair went apart at. Where the replay goes apart
elsewhere or not at all (a race, the clock), the interval is what the report
says.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from reprokit.checking.comparison import ORDER_HORIZON, Comparison, Divergence, first_divergence
from reprokit.checking.runs import CheckOptions, run_batch
from reprokit.run.runner import OnEvent
from reprokit.run.trace import RunSpec, RunTrace


def locate(
    options: CheckOptions, comparisons: Sequence[Comparison], traces: dict[str, RunTrace], on_event: OnEvent | None
) -> list[Comparison]:
    """``comparisons`` with every first divergence known only between two samples located by a replay, if it can be."""
    found = []
    for comparison in comparisons:
        d = comparison.divergence
        if d is None or d.after is None:
            found.append(comparison)
            continue
        a, b = (traces[name] for name in comparison.runs)
        located = _replayed(options, comparison.name, d, a, b, on_event)
        found.append(comparison if located is None else replace(comparison, divergence=located))
    return found


def _replayed(
    options: CheckOptions, pair: str, d: Divergence, a: RunTrace, b: RunTrace, on_event: OnEvent | None
) -> Divergence | None:
    """The replay's first divergence of ``pair``, if it lies where the samples put it; else None."""
    assert d.after is not None
    one_model = len({m.name for m in (*a.models, *b.models)}) <= 1
    steps = d.step + ORDER_HORIZON if one_model else None  # past the step: time to tell a reordered batch
    target = replace(options.target, max_steps=steps, sampled=False)
    specs = [
        RunSpec(f"locate-{pair}-{i}", "replay", run.spec.controls, start_after=run.spec.start_after)
        for i, run in enumerate((a, b), start=1)
    ]
    with run_batch(replace(options, target=target), specs, on_event, require=False) as runs:
        replay_a, replay_b = (runs.traces.get(s.name) for s in specs)
        if replay_a is None or replay_b is None:
            return None
        again = first_divergence(replay_a.points, replay_b.points)
    if again is None or again.model != d.model or not d.after < again.step <= d.step:
        return None
    return replace(again, located=True)

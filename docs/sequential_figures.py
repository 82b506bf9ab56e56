"""Prints the Markdown tables of docs/sequential.md: schedules of `--seeds auto` and their simulated error rates.

Run from the repository root: ``python docs/sequential_figures.py`` (a few seconds, no training).
"""

from __future__ import annotations

import math

from scipy import stats

from reprokit.study.sequential import Reason, design, simulate
from reprokit.study.stats import ALPHA

MAX_SEEDS = 30
CONTRASTS = (1, 2, 5)
EFFECTS = (0.0, 0.5, 1.0, 2.0)
STUDIES = 2000


def schedules() -> str:
    lines = [
        "| contrasts | look | seeds per variant | level (Holm) | cumulative spent | α(t) |",
        "|---|---|---|---|---|---|",
    ]
    for contrasts in CONTRASTS:
        d = design(MAX_SEEDS, contrasts)
        for k, look in enumerate(d.looks, start=1):
            target = ALPHA * math.log1p((math.e - 1) * look.seeds / MAX_SEEDS)
            lines.append(f"| {contrasts} | {k} | {look.seeds} | {look.level:.5f} | {look.spent:.5f} | {target:.5f} |")
    return "\n".join(lines)


def fixed_power(effect: float) -> float:
    """The power of a two-sided paired t-test at ALPHA with MAX_SEEDS seeds, for reference."""
    df = MAX_SEEDS - 1
    critical = stats.t.ppf(1 - ALPHA / 2, df)
    nc = effect * math.sqrt(MAX_SEEDS)
    lower = float(stats.nct.cdf(-critical, df, nc))  # NaN far in the tail, where it is 0 to print precision
    return float(stats.nct.sf(critical, df, nc)) + (lower if math.isfinite(lower) else 0.0)


def simulations() -> str:
    lines = [
        "| effect (sd) | significant (false-positive rate at 0, else power) | mean seeds per variant "
        "| significant / futile / max_seeds | fixed 30 seeds, t-test power |",
        "|---|---|---|---|---|",
    ]
    for effect in EFFECTS:
        result = simulate(design(MAX_SEEDS), effect=effect, sd=1.0, studies=STUDIES)
        stops = dict(result.stops)
        ends = " / ".join(str(stops[r]) for r in (Reason.SIGNIFICANT, Reason.FUTILE, Reason.MAX_SEEDS))
        lines.append(
            f"| {effect:g} | {result.rejection_rate:.4f} | {result.mean_seeds:.1f} | {ends} "
            f"| {fixed_power(effect):.3f} |"
        )
    return "\n".join(lines)


def equivalence() -> str:
    """With ``--min-effect 0.5`` (sd units): how often a study ends equivalent, significant or at max_seeds."""
    lines = [
        "| effect (sd) | equivalent | significant | max_seeds | mean seeds per variant |",
        "|---|---|---|---|---|",
    ]
    for effect in (0.0, 0.25, 0.5, 1.0):
        result = simulate(design(MAX_SEEDS), effect=effect, sd=1.0, studies=STUDIES, min_effect=0.5)
        stops = dict(result.stops)
        share = {r: stops.get(r, 0) / STUDIES for r in (Reason.EQUIVALENT, Reason.SIGNIFICANT, Reason.MAX_SEEDS)}
        lines.append(
            f"| {effect:g} | {share[Reason.EQUIVALENT]:.4f} | {share[Reason.SIGNIFICANT]:.4f} "
            f"| {share[Reason.MAX_SEEDS]:.4f} | {result.mean_seeds:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(f"Schedules, max_seeds {MAX_SEEDS}, paired, alpha {ALPHA}:\n")
    print(schedules())
    print(f"\nSimulated studies, max_seeds {MAX_SEEDS}, 1 contrast, paired, {STUDIES} studies each (seed 0):\n")
    print(simulations())
    print(f"\nWith --min-effect 0.5 sd (no futility), max_seeds {MAX_SEEDS}, {STUDIES} studies each (seed 0):\n")
    print(equivalence())

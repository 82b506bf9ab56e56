"""What a seed study costs, against plain trainings of the same script.

    python tests/benchmarks/bench_seeds.py [--seeds 10] [--repeat 3]

Prints, from one run, the wall time of ``reprokit seeds SCRIPT --seeds N`` ÷
the wall time of N plain ``python SCRIPT`` runs executed with the same
concurrency (``--jobs``, the default of ``reprokit seeds``), as the median of
``--repeat`` interleaved rounds. The study makes N + 1 trainings (seed S runs
twice to show that the seed pins the script), so the ratio is also printed
per training: study ÷ (N + 1) plain runs, and for ``--no-repeat`` (N
trainings) ÷ N plain runs: reprokit's own overhead.

Not a test: it asserts nothing and takes minutes. Compare ratios from one run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "tuning.py"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def plain_runs(count: int, jobs: int) -> float:
    """``count`` plain trainings, ``jobs`` at a time, each a fresh ``python SCRIPT``."""

    def one(_: int) -> None:
        subprocess.run([sys.executable, str(SCRIPT)], check=True, capture_output=True, env=ENV, cwd=ROOT)

    started = time.monotonic()
    with ThreadPoolExecutor(jobs) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - started


def study(seeds: int, jobs: int, *options: str, repeat: bool = True) -> float:
    """The wall time of ``reprokit seeds SCRIPT`` in a fresh study folder (``options``: more of its options)."""
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "reprokit", "seeds", str(SCRIPT), "--seeds", str(seeds)]
        command += [] if repeat else ["--no-repeat"]
        command += ["--jobs", str(jobs), "--study-dir", folder, "-f", "json", *options]
        started = time.monotonic()
        subprocess.run(command, check=True, capture_output=True, env=ENV, cwd=ROOT)
        return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from reprokit.core.controls import default_jobs

    jobs = default_jobs(args.seeds + 1)
    rounds: dict[str, list[float]] = {"study": [], "plain": [], "plain+1": [], "no-repeat": []}
    for _ in range(args.repeat):  # interleaved, so that drifts of the machine hit all alike
        rounds["plain"].append(plain_runs(args.seeds, jobs))
        rounds["study"].append(study(args.seeds, jobs))
        rounds["plain+1"].append(plain_runs(args.seeds + 1, jobs))
        rounds["no-repeat"].append(study(args.seeds, jobs, repeat=False))
    median = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, --jobs {jobs}")
    print(f"script: {SCRIPT.relative_to(ROOT)}, {args.seeds} seeds, median of {args.repeat} interleaved rounds")
    print(f"  reprokit seeds (N + 1 = {args.seeds + 1} trainings)   {median['study']:7.1f} s")
    print(f"  reprokit seeds --no-repeat ({args.seeds} trainings)   {median['no-repeat']:7.1f} s")
    print(f"  {args.seeds} plain runs                       {median['plain']:7.1f} s")
    print(f"  {args.seeds + 1} plain runs                       {median['plain+1']:7.1f} s")
    print(f"study ÷ {args.seeds} plain runs (target ≤ 1.05):      {median['study'] / median['plain']:.3f}")
    print(f"study ÷ {args.seeds + 1} plain runs (per training):     {median['study'] / median['plain+1']:.3f}")
    print(f"--no-repeat study ÷ {args.seeds} plain runs:          {median['no-repeat'] / median['plain']:.3f}")


if __name__ == "__main__":
    main()

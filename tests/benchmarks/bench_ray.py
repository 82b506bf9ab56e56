"""What Ray costs: a seed study on a local Ray cluster against the same study on the local executor.

    python tests/benchmarks/bench_ray.py [--seeds 10] [--repeat 3]

Prints, from one run, the wall time of ``reprokit seeds SCRIPT --seeds N
--no-repeat`` with ``--executor ray`` ÷ the same study with the local
executor, both with the same number of runs at once, as the median of
``--repeat`` interleaved rounds. Two Ray figures:

- on a Ray cluster already running on this machine (``ray start --head``,
  started once before the rounds, found without ``--ray-address``): Ray's
  own overhead per run (a task, a fresh worker process for it, the events
  streamed back) — the target;
- with a Ray instance started and stopped by the command itself (no cluster
  running): what a one-off ``--executor ray`` on a laptop costs.

Not a test: it asserts nothing and takes minutes. Compare ratios from one run only.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench_seeds import study

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "tuning.py"
QUIET = ("--include-dashboard=false", "--disable-usage-stats")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def cluster(cpus: int) -> Iterator[None]:
    """A Ray cluster on this machine (``ray start --head``) while the block runs; killed whole at its end."""
    head = subprocess.Popen(
        ["ray", "start", "--head", "--block", f"--port={free_port()}", f"--num-cpus={cpus}", *QUIET],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=ENV,
    )
    try:
        time.sleep(8)  # the cluster comes up
        yield
    finally:
        os.killpg(head.pid, signal.SIGKILL)  # the cluster and everything under it
        head.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from reprokit.core.controls import default_jobs

    jobs = default_jobs(args.seeds)
    rounds: dict[str, list[float]] = {"local": [], "cluster": [], "instance": []}
    with cluster(jobs):
        for _ in range(args.repeat):  # interleaved, so that drifts of the machine hit all alike
            rounds["local"].append(study(args.seeds, jobs, repeat=False))
            rounds["cluster"].append(study(args.seeds, jobs, "--executor", "ray", repeat=False))  # finds the cluster
    for _ in range(args.repeat):
        rounds["local"].append(study(args.seeds, jobs, repeat=False))
        rounds["instance"].append(study(args.seeds, jobs, "--executor", "ray", repeat=False))
    median = {k: statistics.median(v) for k, v in rounds.items()}
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, {jobs} runs at once")
    print(f"script: {SCRIPT.relative_to(ROOT)}, {args.seeds} seeds, --no-repeat, median of {args.repeat} rounds")
    print(f"  local executor                             {median['local']:7.1f} s")
    print(f"  Ray, a cluster running here                {median['cluster']:7.1f} s")
    print(f"  Ray, an instance started for the command   {median['instance']:7.1f} s")
    print(f"Ray cluster ÷ local (target ≤ 1.10):         {median['cluster'] / median['local']:.3f}")
    print(f"Ray instance per command ÷ local:            {median['instance'] / median['local']:.3f}")


if __name__ == "__main__":
    main()

"""Runs on Ray: a real local Ray instance, and a two-node cluster simulated on 127.0.0.1 (no mocks)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from helpers import TINY, interruptible, reprokit, words

pytestmark = pytest.mark.e2e

ray = pytest.importorskip("ray")

SLOW = TINY.replace("epochs=2", "epochs=6")  # a run long enough to be caught mid-training


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    """One ``ray start --block`` process (a node of a cluster on this machine) and every process under it."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["ray", "start", "--block", "--disable-usage-stats", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def processes(self) -> list[psutil.Process]:
        try:
            return psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def runs(self) -> int:
        """How many reprokit run processes are alive on this node."""
        return sum(is_run(p) for p in self.processes())

    def kill(self) -> None:
        """Kills the node at once, as a machine that dies would (its raylet and workers with it)."""
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                p.kill()
        self.proc.kill()  # does nothing once it has ended
        self.proc.wait()


def is_run(p: psutil.Process) -> bool:
    """Whether ``p`` is a reprokit run: a fresh worker process, or one forked by a fork server (a zygote's child)."""
    with contextlib.suppress(psutil.Error):
        command = " ".join(p.cmdline())
        if "reprokit.worker.main" in command:
            return True
        parent = p.parent()
        return (
            "reprokit.worker.zygote" in command
            and parent is not None
            and "reprokit.worker.zygote" in " ".join(parent.cmdline())
        )
    return False


@pytest.fixture
def two_nodes() -> Iterator[tuple[str, dict[str, str], Node]]:
    """A head node (1 CPU) and a worker node (2 CPUs) on 127.0.0.1.

    Yields the address, the environment that reaches the cluster, and the worker node.
    """
    port = free_port()
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "token",  # as `ray start` has it by default (Ray >= 2.59); drivers must say so too
        "RAY_health_check_period_ms": "500",  # a dead node is noticed in about a second, not half a minute
        "RAY_health_check_failure_threshold": "2",
        "RAY_health_check_initial_delay_ms": "0",
    }
    head = Node("--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false", env=env)
    address = f"127.0.0.1:{port}"
    worker = Node(f"--address={address}", "--num-cpus=2", env=env)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        alive = f"import ray; ray.init('{address}'); print(len([n for n in ray.nodes() if n['Alive']]))"
        probe = subprocess.run([sys.executable, "-c", alive], capture_output=True, text=True, check=False, env=env)
        if probe.stdout.strip() == "2":
            break
        time.sleep(1)
    else:
        pytest.fail("the two-node cluster did not come up")
    yield address, env, worker
    for node in (worker, head):
        node.kill()


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    return script


def stored_runs(folder: Path) -> dict[tuple[int, bool], dict]:
    """The runs a study folder keeps, by (seed, repeat)."""
    runs = {}
    for path in folder.glob("*/seed-*.json"):
        data = json.loads(path.read_text())
        runs[(data["seed"], data["repeat"])] = data
    return runs


def ray_processes_since(started: float) -> list[str]:
    """Ray's own live processes (GCS, raylet, workers) that started after ``started`` (dead ones aside)."""
    found = []
    for p in psutil.process_iter(["name", "create_time", "status"]):
        name = p.info["name"] or ""
        if p.info["status"] == psutil.STATUS_ZOMBIE or p.info["create_time"] < started:
            continue  # a zombie has ended: only its exit status waits to be collected
        if name.startswith("ray::") or name in ("raylet", "gcs_server"):
            found.append(name)
    return found


def test_a_seed_study_on_a_local_ray_instance_is_bit_identical_to_the_local_executor(tmp_path, tiny):
    started = time.time()
    local = reprokit("seeds", tiny, "--seeds", "2", "--study-dir", tmp_path / "local", "-f", "json")
    on_ray = reprokit(
        "seeds", tiny, "--seeds", "2", "--study-dir", tmp_path / "ray", "-f", "json", "--executor", "ray"
    )  # no address and no cluster running: a Ray instance is started for the command, and stopped
    assert local.returncode == 0 and on_ray.returncode == 0, local.stderr + on_ray.stderr
    a, b = stored_runs(tmp_path / "local"), stored_runs(tmp_path / "ray")
    assert set(a) == set(b) == {(1234, False), (1235, False), (1234, True)}
    for key in a:
        assert a[key]["metrics"] == b[key]["metrics"]
        assert a[key]["weights"] == b[key]["weights"] and a[key]["probes"] == b[key]["probes"]
        # forked on both sides: locally from the command's servers, on Ray through the node's fork host
        assert a[key]["environment"]["process"] == b[key]["environment"]["process"] == "forked"
    doc = json.loads(on_ray.stdout)
    assert doc["pinned"] is True and len(doc["nodes"]) == 1
    assert all(r["node"] for r in doc["runs"]) and not any(r["retries"] for r in doc["runs"])
    assert ray_processes_since(started) == []  # the instance started for the command is gone


def test_check_on_ray_gives_the_verdict_and_comparisons_of_a_local_check(tmp_path, tiny):
    out = tmp_path / "out"
    out.mkdir()
    quick = ("--quick", "--max-steps", "6", "-f", "json")  # a seed study below compares every run's bits
    local = reprokit("check", tiny, *quick, cwd=tmp_path)
    on_ray = reprokit("check", tiny, *quick, "--executor", "ray", cwd=tmp_path)
    assert local.returncode == 0 and on_ray.returncode == 0, local.stderr + on_ray.stderr
    a, b = json.loads(local.stdout), json.loads(on_ray.stdout)
    assert a["verdict"] == b["verdict"] == "reproducible"
    assert {k: v["status"] for k, v in a["sources"].items()} == {k: v["status"] for k, v in b["sources"].items()}
    keys = ("name", "identical", "first_divergent_step", "max_abs_diff", "relative_l2", "prediction_agreement")
    assert [{k: c.get(k) for k in keys} for c in a["comparisons"]] == [
        {k: c.get(k) for k in keys} for c in b["comparisons"]
    ]
    assert any("Ray task on node" in note and "trains to the end" in note for note in b["notes"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "tiny.py"]  # nothing written beside the script


def test_runs_spread_over_two_nodes_and_a_node_that_dies_mid_study_loses_no_run(tmp_path, two_nodes):
    address, env, worker = two_nodes
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    folder = tmp_path / "study"
    command = [sys.executable, "-m", "reprokit", "seeds", str(script), "--seeds", "6", "--no-repeat"]
    command += ["--study-dir", str(folder), "-f", "json", "--executor", "ray", "--ray-address", address]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240

    def finished_on_worker() -> bool:
        nodes = {r["environment"].get("ray_node") for r in stored_runs(folder).values()}
        return len(nodes) >= 2  # a run ended on each node

    while not (finished_on_worker() and worker.runs()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.runs(), "no run was training on the worker node"
    worker.kill()  # mid-study, with a run training on it
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    assert [r["seed"] for r in doc["runs"] if r["ok"]] == list(range(1234, 1240))  # no run lost
    assert len(doc["nodes"]) == 2
    retried = [r for r in doc["runs"] if r["retries"]]
    assert retried
    again = ("--study-dir", folder, "--executor", "ray", "--ray-address", address)  # the same variant: all stored
    text = reprokit("seeds", script, "--seeds", "6", "--no-repeat", *again, env=env)
    assert "Ray lost the run of" in words(text.stdout) and "the retry is exact" in words(text.stdout)


def test_ctrl_c_during_a_ray_study_leaves_no_run_and_no_ray_process_of_ours(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(SLOW)
    command = interruptible("seeds", script, "--seeds", "4", "--study-dir", tmp_path / "study", "--executor", "ray")
    mark = tmp_path.name  # in the environment of every run of this command, and of the fork servers they come from
    env = {**os.environ, "TEST_MARK": mark}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 120

    def ours() -> list[psutil.Process]:
        try:
            return psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def runs() -> list[psutil.Process]:
        """This command's runs, fresh or forked (a forked run's environment is its fork server's)."""
        return [
            p
            for p in psutil.process_iter(["environ"])
            if (p.info["environ"] or {}).get("TEST_MARK") == mark and is_run(p)
        ]

    while not runs() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert runs(), "no run started"
    before = ours()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    # A run notices its task's end within 0.5 s, or once it can take the GIL again: a run
    # still inside `import tensorflow` on 2 loaded cores was seen alive 1.5 s after Ctrl-C.
    gone = time.monotonic() + 10
    while runs() and time.monotonic() < gone:
        time.sleep(0.2)
    assert runs() == []
    assert [p for p in before if p.is_running() and p.status() != psutil.STATUS_ZOMBIE] == []
    servers = [p for p in psutil.process_iter(["environ"]) if (p.info["environ"] or {}).get("TEST_MARK") == mark]
    assert servers == []  # the fork servers of the command's Ray instance ended with it


def test_an_unreachable_ray_address_is_a_one_line_error_before_any_run(tiny):
    result = reprokit("seeds", tiny, "--executor", "ray", "--ray-address", f"127.0.0.1:{free_port()}", timeout=60)
    assert result.returncode == 2
    assert result.stderr.startswith("reprokit: error: cannot reach the Ray cluster at 127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1

"""Which runs a fork server may fork, and how a forked run's end reaches the runner (no TensorFlow)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from reprokit.core.controls import Controls, child_environment
from reprokit.run import forkserver
from reprokit.run.forkserver import Forked, eligible, server_key

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork servers are used on Linux only")


def test_only_tensorflow_runs_on_the_cpu_are_forked_and_the_variable_turns_it_off():
    cpu = {"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    assert eligible(cpu)
    assert not eligible({**cpu, "REPROKIT_FORK_SERVER": "0"})
    assert not eligible({**cpu, "KERAS_BACKEND": "jax"}) and not eligible({**cpu, "KERAS_BACKEND": "torch"})


def test_runs_with_and_without_op_determinism_share_a_server_and_another_hash_seed_does_not():
    base = {"PATH": "/usr/bin", "REPROKIT_PARAMS": '{"lr": 0.1}'}
    on, off, other_seed = (
        child_environment(c, base) for c in (Controls(7, True), Controls(7, False), Controls(8, True))
    )
    (key_on, late_on), (key_off, late_off) = server_key(on), server_key(off)
    assert key_on == key_off
    assert server_key(other_seed)[0] != key_on
    # what the server does not start with, the forked run sets: determinism switches and script-only values
    assert late_on == {"TF_DETERMINISTIC_OPS": "1", "TF_CUDNN_DETERMINISTIC": "1", "REPROKIT_PARAMS": '{"lr": 0.1}'}
    assert late_off == {"REPROKIT_PARAMS": '{"lr": 0.1}'}
    assert dict(key_on) | late_on == on


def test_a_forked_runs_status_arrives_once_and_a_wait_that_times_out_says_so():
    read, write = os.pipe()
    done = threading.Event()
    run = Forked(4242, read, done.set)
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(timeout=0.05)
    assert run.poll() is None and run.returncode is None and not done.is_set()
    os.write(write, b"3\n")
    assert run.wait() == 3 and run.returncode == 3 and run.poll() == 3 and done.is_set()
    os.close(write)


def test_a_server_that_ended_before_the_status_reads_as_killed():
    read, write = os.pipe()
    os.close(write)  # the server is gone: no status will come
    run = Forked(4242, read, threading.Event().set)
    assert run.wait(timeout=1) < 0


class _Idle:
    """Stands for a started server: idle, having forked ``served`` runs; records that it was closed."""

    def __init__(self, env):
        self.env, self.served, self.users, self.closed = env, 0, 0, False
        self.idle = True

    def close(self):
        self.closed = True


def test_warming_never_ends_a_server_warmed_for_a_run_that_has_not_come_yet(monkeypatch):
    monkeypatch.setattr(forkserver, "_Server", _Idle)
    servers = forkserver.Servers()
    envs = [child_environment(Controls(seed, True), {}) for seed in range(6)]
    for env in envs[:4]:
        servers.warm(env)
    assert len(servers._servers) == 4
    servers.warm(envs[4])  # the limit, and none of the four has served: no fifth
    assert len(servers._servers) == 4
    spent = servers._servers[server_key(envs[0])[0]]
    spent.served = 1
    servers.warm(envs[4])  # one that served makes room
    assert spent.closed and server_key(envs[4])[0] in servers._servers
    servers.warm(envs[4])  # already there: nothing new
    assert len(servers._servers) == 4

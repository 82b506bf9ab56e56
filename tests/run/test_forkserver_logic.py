"""Which runs a fork server may fork, and how a forked run's end reaches the runner (no TensorFlow)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from reprokit.run.forkserver import Forked, eligible

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="fork servers are used on Linux only")


def test_only_tensorflow_runs_on_the_cpu_are_forked_and_the_variable_turns_it_off():
    cpu = {"KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": ""}
    assert eligible(cpu)
    assert not eligible({**cpu, "REPROKIT_FORK_SERVER": "0"})
    assert not eligible({**cpu, "KERAS_BACKEND": "jax"}) and not eligible({**cpu, "KERAS_BACKEND": "torch"})


def test_a_forked_runs_status_arrives_once_and_a_wait_that_times_out_says_so():
    read, write = os.pipe()
    done = threading.Event()
    run = Forked(4242, read, done)
    with pytest.raises(subprocess.TimeoutExpired):
        run.wait(timeout=0.05)
    assert run.poll() is None and run.returncode is None and not done.is_set()
    os.write(write, b"3\n")
    assert run.wait() == 3 and run.returncode == 3 and run.poll() == 3 and done.is_set()
    os.close(write)


def test_a_server_that_ended_before_the_status_reads_as_killed():
    read, write = os.pipe()
    os.close(write)  # the server is gone: no status will come
    run = Forked(4242, read, threading.Event())
    assert run.wait(timeout=1) < 0

"""A relay forks runs for another process: descriptors, environment and the run's end cross its socket (no TensorFlow).

The server behind the relay is a stand-in that "forks" by writing a pid and
an exit status where a fork server would; the socket, the descriptors passed
across it and the relay's bookkeeping are real.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import pytest

from reprokit.core.controls import Controls, child_environment
from reprokit.protocol import WorkerConfig
from reprokit.run import forkrelay, forkserver
from reprokit.run.forkserver import server_key

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="relays use Linux's abstract sockets")

CONFIG = WorkerConfig("/x/train.py", (), 1234, True, -1, "/tmp/a.npz")


class _Writes:
    """Stands for a ready fork server: answers each run with pid 4242, then exit status 7, and echoes its request."""

    def __init__(self, env):
        self.env, self.served, self.users, self.running, self.ready_at = env, 0, 0, [], 0.0

    def ready(self):
        return True

    def send(self, message, fds, done):
        request = json.loads(message)
        os.write(fds[0], json.dumps(request["env"]).encode() + b"\n")  # the events pipe: what the run sets itself
        os.write(fds[2], b"4242\n7\n")  # the status: the run's pid, then its exit status
        self.running.append(done)
        self.served += 1

    @property
    def idle(self):
        return self.users == 0 and all(done.is_set() for done in self.running)

    def end(self):
        pass

    def close(self):
        pass


@pytest.fixture
def relay(monkeypatch):
    monkeypatch.setattr(forkserver, "_Server", _Writes)
    relay = forkrelay.Relay(f"reprokit-test-{uuid.uuid4().hex}")
    yield relay
    relay.close()


def test_a_run_asked_of_a_relay_reaches_its_server_with_the_askers_pipes_and_ends_when_the_asker_waited(
    relay, tmp_path
):
    env = {**child_environment(Controls(1234, True), {"PATH": "/usr/bin"}), "REPROKIT_PARAMS": '{"lr": 0.1}'}
    started = forkrelay.start(relay._name, CONFIG, env, tmp_path, tmp_path)
    assert started is not None and started.proc.pid == 4242
    with os.fdopen(started.events) as events:
        late = json.loads(events.readline())
    assert late == server_key(env)[1]  # the server got only what the run sets after the fork
    (server,) = relay.servers._servers.values()
    assert server.served == 1 and not server.idle  # the run is alive as far as the relay knows
    assert started.proc.wait() == 7
    deadline = time.monotonic() + 5
    while not server.idle and time.monotonic() < deadline:  # the asker hung up: the relay marks the run ended
        time.sleep(0.01)
    assert server.idle
    os.close(started.control)


def test_no_relay_or_a_relay_that_cannot_fork_leaves_the_run_to_a_fresh_process(relay, tmp_path):
    env = child_environment(Controls(1234, True), {})
    assert forkrelay.start(f"reprokit-test-{uuid.uuid4().hex}", CONFIG, env, tmp_path, tmp_path) is None
    relay.servers._unsafe.add(server_key(env)[0])  # as after a server that found a thread it cannot fork
    assert forkrelay.start(relay._name, CONFIG, env, tmp_path, tmp_path) is None
    assert relay.servers._servers == {}

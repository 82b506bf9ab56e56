"""The fork host of a Ray node: one process per node and command that keeps the node's fork servers.

A local command forks its runs from pre-imported interpreters
(:mod:`reprokit.run.forkserver`); on Ray each run is started by a task in any
of Ray's worker processes, so the interpreters live in one actor per node
instead, for the command's lifetime (:class:`Hosts` starts them with the
session and ends them with it), and tasks reach them through the actor's
relay on a local socket (:mod:`reprokit.run.forkrelay`). Runs of one
environment on one node (a seed's run and its repeat, the variants of a
comparison, the configurations of a tuning under one seed) then share one
import; and where every run goes to one node, the next seed's import starts
while the current runs train (:meth:`Hosts.warm`), as it does locally.

Hosts take no CPU of their own from Ray (their imports overlap runs, as a
local command's do) and are started only for runs without GPUs.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from reprokit.run.forkrelay import Relay
from reprokit.run.forkserver import eligible
from reprokit.run.ray.task import RunRequest, relay_name, run_environment

READY_TIMEOUT = 20.0
"""Seconds the hosts may take to start when the command opens its session."""

CLOSE_TIMEOUT = 10.0
"""Seconds a host may take to end its servers when the command ends (then it is killed)."""


class ForkHost:
    """The actor: a relay named for its node, serving that node's fork servers."""

    def __init__(self, name: str) -> None:
        self.relay = Relay(name)

    def listening(self) -> bool:
        """Answers once the relay takes requests."""
        return True

    def warm(self, request: RunRequest) -> None:
        """Starts the import for ``request``'s run, with the environment it will have on this node."""
        env = run_environment(request, request.origin.is_here())
        if eligible(env):
            self.relay.warm(env)

    def close(self) -> None:
        self.relay.close()


class Hosts:
    """The fork hosts of one command's Ray session, one per node that takes runs."""

    def __init__(self, nodes: list[str]) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        self.name = f"reprokit-{uuid.uuid4().hex[:12]}"  # the command's: no other command's runs fork from them
        actor: Any = ray.remote(num_cpus=0, max_restarts=0)(ForkHost)
        hosts = {
            node: actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False)).remote(
                relay_name(self.name, node)
            )
            for node in nodes
        }
        # The first runs wait for the hosts (about a second): a run that started before its node's host listens
        # would import for itself, and a host warming for it then import in vain. A host that does not come in
        # time is ended, and its node's runs are fresh processes.
        answers = {host.listening.remote(): node for node, host in hosts.items()}
        listening, _ = ray.wait(list(answers), num_returns=len(answers), timeout=READY_TIMEOUT)
        self._hosts: dict[str, Any] = {answers[ref]: hosts[answers[ref]] for ref in listening}
        for node in set(hosts) - set(self._hosts):
            _kill(hosts[node])

    def warm(self, request: RunRequest) -> None:
        """Starts the import of a run that comes soon, where it is known to run: only if one node takes runs."""
        if len(self._hosts) == 1:
            (host,) = self._hosts.values()
            host.warm.remote(request)

    def close(self) -> None:
        """Ends every host and its servers (killed if one does not answer in time)."""
        import ray

        hosts = list(self._hosts.values())
        self._hosts = {}
        with contextlib.suppress(Exception):
            ray.wait([host.close.remote() for host in hosts], num_returns=len(hosts), timeout=CLOSE_TIMEOUT)
        for host in hosts:
            _kill(host)


def _kill(host: Any) -> None:
    import ray

    with contextlib.suppress(Exception):
        ray.kill(host)

"""The bridge as one component of a process: lead, then operate, until told to stop.

A replica first waits to lead (``bridge.leadership``); only the leader runs the
kopf operator. If leadership is lost, the component raises ``LeadershipLost`` and
the process exits non-zero, as client-go's controllers do: a fresh process is
the simplest way to be sure nothing of the old term keeps acting, and the
Deployment restarts it as a standby.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient

from bridge import installations
from bridge.leadership import LeaderElection, LeadershipLost
from bridge.observe import Observer
from bridge.operator import OperatorThread
from janus.contract.settings import BridgeSettings, ClusterSettings, TemporalSettings

logger = logging.getLogger(__name__)

OPERATOR_STOP_SECONDS = 30.0


@dataclass
class Bridge:
    """The bridge component of ``janus bridge`` and ``janus run`` (``janus.runtime.processes``)."""

    temporal: TemporalSettings
    cluster: ClusterSettings
    settings: BridgeSettings
    api: ApiClient
    name: str = "bridge"
    _operator: OperatorThread | None = field(default=None, init=False)
    _state: str = field(default="starting", init=False)

    def live(self) -> str | None:
        """None while alive, else why not (the liveness probe)."""
        if self._operator is not None and self._operator.done.done():
            return "the operator has stopped"
        return None

    def ready(self) -> str | None:
        """None when ready (leading and watching, or a standby), else why not."""
        if self._state == "standby":
            return None
        if self._operator is None or not self._operator.ready.is_set():
            return f"not watching yet ({self._state})"
        return None

    async def run(self, stop: asyncio.Event) -> None:
        election = self._election()
        if election is not None:
            self._state = "standby"
            if not await election.acquire(stop):
                return
        self._state = "leading"
        self._operator = OperatorThread(
            self.temporal, self.cluster, self.settings, self.api, Observer()
        )
        self._operator.start()
        ended = asyncio.wrap_future(self._operator.done)
        try:
            await self._until_done(stop, ended, election)
        finally:
            await self._stop_operator(ended)
            if election is not None and self._state != "lost":
                await asyncio.to_thread(election.release)

    def _election(self) -> LeaderElection | None:
        s = self.settings
        if not s.leader_election:
            return None
        return LeaderElection(
            self.api,
            namespace=s.election_namespace,
            name=s.election_lease,
            labels=installations.lease_labels(s),
            identity=s.identity,
            lease_seconds=s.lease_seconds,
            renew_seconds=s.renew_seconds,
        )

    async def _until_done(
        self, stop: asyncio.Event, ended: asyncio.Future[None], election: LeaderElection | None
    ) -> None:
        """Return on stop; raise if the operator fails or leadership is lost."""
        ours: set[asyncio.Future[Any]] = {asyncio.ensure_future(stop.wait())}
        if election is not None:
            ours.add(asyncio.ensure_future(election.keep()))
        done, _ = await asyncio.wait({*ours, ended}, return_when=asyncio.FIRST_COMPLETED)
        for task in ours - done:
            task.cancel()  # never `ended`: cancelling it would cancel the thread's future
        for task in done:
            error = task.exception()
            if error is not None:
                if isinstance(error, LeadershipLost):
                    self._state = "lost"
                raise error
        if not stop.is_set():
            raise RuntimeError("the kopf operator ended on its own")

    async def _stop_operator(self, ended: asyncio.Future[None]) -> None:
        assert self._operator is not None
        self._operator.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(ended), OPERATOR_STOP_SECONDS)

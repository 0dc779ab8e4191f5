"""One small HTTP endpoint per process: liveness, readiness and Prometheus metrics.

Kubernetes restarts a container whose liveness probe fails and sends Service
traffic only to ready ones; Prometheus scrapes ``/metrics``. One port serves all
three so a Deployment declares one ``containerPort`` and ``janus run`` (worker
and bridge in one process) exposes them together.

Components (the worker, the bridge) register a ``Check`` each: a name and a
function that returns None when fine, or a short reason. ``/healthz`` fails
when a component reports itself dead; ``/readyz`` also fails while one is not
ready yet (the bridge before it has started watching, say).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from janus.contract.settings import ProbeSettings

logger = logging.getLogger(__name__)

Reason = Callable[[], str | None]
"""None when fine, else why not."""


def _fine() -> str | None:
    return None


@dataclass
class Check:
    """How one component answers the probes."""

    name: str
    live: Reason = _fine
    ready: Reason = _fine


@dataclass
class HealthServer:
    """Serves the checks of a process's components, and the metrics registry."""

    settings: ProbeSettings
    checks: list[Check] = field(default_factory=list)
    _runner: web.AppRunner | None = field(default=None, init=False)

    def add(self, check: Check) -> None:
        self.checks.append(check)

    async def start(self) -> None:
        if self.settings.port == 0:
            return
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        logger.info(
            "probes and metrics on http://%s:%d/{healthz,readyz,metrics}",
            self.settings.host,
            self.settings.port,
        )

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def problems(self, *, ready: bool) -> list[str]:
        found = [(c.name, c.live()) for c in self.checks]
        if ready:
            found += [(c.name, c.ready()) for c in self.checks]
        return [f"{name}: {why}" for name, why in found if why]

    async def _healthz(self, _: web.Request) -> web.Response:
        return _answer(self.problems(ready=False))

    async def _readyz(self, _: web.Request) -> web.Response:
        return _answer(self.problems(ready=True))

    async def _metrics(self, _: web.Request) -> web.Response:
        body = generate_latest(REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def _answer(problems: list[str]) -> web.Response:
    if problems:
        return web.Response(status=503, text="\n".join(problems) + "\n")
    return web.Response(text="ok\n")

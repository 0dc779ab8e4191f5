"""kopf, embedded: explicit settings, explicit login, and a thread of its own.

kopf is built to own its process: ``kopf.operator()`` installs signal handlers
and, when it ends, cancels every asyncio task created after it started,
whoever created them. ``janus run`` puts the Temporal worker beside the bridge,
and the worker must be shut down gracefully, not cancelled from outside. So the
operator runs in its own thread with its own event loop (and its own Temporal
client, since a client belongs to the loop it was made in); the main loop talks
to it through thread-safe flags: ``stop`` to end it, ``ready`` once it watches.

Settings that differ from kopf's defaults, and why:

* finalizer ``backup.janus.io/finalizer`` and every annotation under
  ``backup.janus.io/``: one prefix for everything Janus writes (another
  installation than the default one has keys of its own, see
  ``bridge.installations``);
* progress in annotations, and the diff base without ``spec``: the spec of a
  1000-change Transaction does not fit in an annotation, and it cannot change
  after creation anyway (a CEL rule), so there is nothing to diff;
* standalone, scanning off: replicas coordinate by a Lease
  (``bridge.leadership``), and the bridge needs no rights on CRDs or namespaces;
* every request with a timeout (``REQUEST_TIMEOUT``, ``CONNECT_TIMEOUT``; the
  watch's end enforced by the client too): one hung call cannot stall the bridge;
* only the bridge's own Events are posted (a failed start, a rollback being
  awaited), not every log line: ``kubectl describe`` says why a Transaction is
  stuck without drowning the workflow's phase Events.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass, field

import kopf
from kubernetes.client import ApiClient

from bridge import installations
from bridge.handlers import DIFFBASE_KEY, Handlers
from bridge.installations import Directory
from bridge.login import login_handler
from bridge.observe import Observer
from bridge.runs import Runs
from janus.clients.kubernetes import CONNECT_TIMEOUT
from janus.clients.temporal import temporal_client
from janus.contract.settings import BridgeSettings, ClusterSettings, TemporalSettings

logger = logging.getLogger(__name__)

#: Every request kopf makes is bounded: a hung API server fails a handler (kopf
#: retries it) instead of stalling it; a watch the server does not end at
#: WATCH_SECONDS is dropped by the client a little later and started again.
REQUEST_TIMEOUT = 30.0
WATCH_SECONDS = 300
WATCH_GRACE = 30


def operator_settings(bridge: BridgeSettings) -> kopf.OperatorSettings:
    settings = kopf.OperatorSettings()
    prefix = installations.annotation_prefix(bridge.installation)
    settings.persistence.finalizer = installations.finalizer(bridge.installation)
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=prefix)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=prefix, key=DIFFBASE_KEY, ignored_fields=["spec"]
    )
    settings.peering.standalone = True
    settings.scanning.disabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "janus-bridge"
    settings.posting.reporting_instance = bridge.identity
    settings.posting.event_name_prefix = "janus-bridge-"
    settings.networking.request_timeout = REQUEST_TIMEOUT
    settings.networking.connect_timeout = CONNECT_TIMEOUT
    settings.watching.server_timeout = WATCH_SECONDS
    settings.watching.client_timeout = WATCH_SECONDS + WATCH_GRACE
    settings.watching.connect_timeout = CONNECT_TIMEOUT
    return settings


class _KopfNoise(logging.Filter):
    """Drop kopf lines that say nothing here: the metrics and notice handlers' success
    on every status write, the pick-up timer's every 20 seconds, and the warning
    that signals are ignored (the main thread has them)."""

    NOISE = (
        "Handler 'observe' succeeded",
        "Handler 'notice-others' succeeded",
        "Timer 'pick-up' succeeded",
        "OS signals are ignored",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(noise in message for noise in self.NOISE)


@dataclass
class OperatorThread:
    """kopf running in a thread; ``done`` resolves when it ends (with its error, if any)."""

    temporal: TemporalSettings
    cluster: ClusterSettings
    bridge: BridgeSettings
    api: ApiClient
    observer: Observer = field(default_factory=Observer)
    ready: threading.Event = field(default_factory=threading.Event, init=False)
    done: concurrent.futures.Future[None] = field(
        default_factory=concurrent.futures.Future, init=False
    )
    _stop: threading.Event = field(default_factory=threading.Event, init=False)

    def start(self) -> None:
        for name in ("kopf.objects", "kopf._core.reactor.running"):
            logging.getLogger(name).addFilter(_KopfNoise())
        threading.Thread(target=self._main, name="kopf", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _main(self) -> None:
        try:
            asyncio.run(self._operate())
        except BaseException as err:
            if not self.done.done():
                self.done.set_exception(err)
        else:
            if not self.done.done():
                self.done.set_result(None)

    async def _operate(self) -> None:
        client = await temporal_client(self.temporal, identity=f"bridge@{self.bridge.identity}")
        registry = kopf.OperatorRegistry()
        kopf.on.login(registry=registry)(login_handler(self.cluster))
        directory = Directory(self.api, self.bridge)
        await asyncio.to_thread(directory.refresh)
        runs = Runs(client, self.temporal, self.api)
        Handlers(runs, self.bridge, self.observer, directory).register(registry)
        namespaces = self.bridge.namespaces
        logger.info(
            "installation %r: watching Transactions in %s (%s)",
            self.bridge.installation,
            ", ".join(namespaces) or "all namespaces",
            _which(self.bridge),
        )
        refreshing = asyncio.create_task(directory.refresh_forever())
        try:
            await kopf.operator(
                registry=registry,
                settings=operator_settings(self.bridge),
                standalone=True,
                clusterwide=not namespaces,
                namespaces=namespaces,
                stop_flag=self._stop,
                ready_flag=self.ready,
            )
        finally:
            refreshing.cancel()


def _which(bridge: BridgeSettings) -> str:
    label = f"{installations.INSTALLATION_LABEL}={bridge.installation}"
    return f"labelled {label} only" if bridge.pinned_only else f"labelled {label} or unlabelled"

"""Fencing by run: an attempt of a run that is no longer its workflow's current run sends nothing.

``temporal workflow reset`` (Reset in the Temporal UI, or ``janus retry``)
terminates a run and starts a new one under the same workflow id. The new run
is the same Transaction: the same holder identity on its leases (on purpose: it
adopts what the old run held), the same markers, the same snapshot names. So
neither a lease nor a marker can tell the two runs apart, and the old run's
attempts already running on a worker keep going: a regular activity learns it
was cancelled only at its next heartbeat (throttled to every few seconds), a
local activity (leases, snapshots, status) never does, and the rest of a
workflow task in progress runs its local activities one after another. Such an
attempt could renew or take leases again after the new run released them, or
write a target behind the new run's back.

Only Temporal knows which run is current, so an attempt asks it: before its
first request to the API server, and again whenever ``CHECK_EVERY`` has passed
since (a request waits for the answer). Once its run is not the current one,
no request is sent (``RunSuperseded``; the attempt's result is of no use to
anyone: its run is closed). A request already on its way when the reset happens
is not stopped, as with any attempt that gives up on a request; the window is
one request, or ``CHECK_EVERY``. Should Temporal not answer, the attempt goes
on (its leases still fence it): a reset needs Temporal too.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable

from temporalio import activity
from temporalio.client import Client

from janus.clients.kubernetes import AttemptExpired

logger = logging.getLogger(__name__)

#: Seconds between two checks of one attempt: its first request always waits for one.
CHECK_EVERY = 0.25

#: How long a check may take before the attempt goes on without its answer.
CHECK_TIMEOUT = 2.0


class RunSuperseded(AttemptExpired):
    """The attempt's workflow run is no longer the current run of its workflow id."""


class CurrentRuns:
    """Asks Temporal which run of a workflow is current, from activity threads.

    The client lives on the worker's event loop; activities run in threads, and
    hand it the question (``run_coroutine_threadsafe``). A run once found
    superseded stays so: a closed run never becomes current again.
    """

    def __init__(self, client: Client, loop: asyncio.AbstractEventLoop) -> None:
        self.client, self.loop = client, loop
        self._superseded: dict[str, str] = {}
        self._lock = threading.Lock()

    def successor(self, workflow_id: str, run_id: str) -> str | None:
        """The current run of ``workflow_id`` when it is not ``run_id``; None when
        ``run_id`` is current (or Temporal cannot say)."""
        with self._lock:
            if run_id in self._superseded:
                return self._superseded[run_id]
        try:
            described = asyncio.run_coroutine_threadsafe(
                self.client.get_workflow_handle(workflow_id).describe(), self.loop
            ).result(timeout=CHECK_TIMEOUT)
        except Exception as err:
            logger.warning("is run %s of %s current? no answer: %s", run_id, workflow_id, err)
            return None
        current = described.run_id
        if not current or current == run_id:
            return None
        with self._lock:
            self._superseded[run_id] = current
        return current

    def stop_for_attempt(self) -> Callable[[], bool] | None:
        """For the running activity attempt: a check to call before each request, which
        raises ``RunSuperseded`` once its run is not current (None outside an activity)."""
        if not activity.in_activity():
            return None
        info = activity.info()
        workflow_id, run_id = info.workflow_id, info.workflow_run_id
        if not workflow_id or not run_id:
            return None
        last_check: list[float | None] = [None]

        def stop() -> bool:
            now, last = time.monotonic(), last_check[0]
            if last is not None and now - last < CHECK_EVERY:
                return False
            last_check[0] = now
            successor = self.successor(workflow_id, run_id)
            if successor is not None:
                raise RunSuperseded(
                    f"attempt {info.attempt} of {info.activity_type} belongs to run {run_id} of "
                    f"{workflow_id}, which is no longer current (run {successor} is: a reset); "
                    "not sending the request"
                )
            return False

        return stop

"""The kopf handlers: one small function per event, each safe to run twice.

* created, or found at start (``resume``) → make sure the workflow runs;
* deleted → cancel the workflow and hold the finalizer until it has closed, then
  release the leases it still holds and delete its snapshots (``bridge.snapshots``);
* created but not yet picked up after ``PICK_UP_SECONDS`` of quiet → touched,
  so kopf sees it again (``pick_up``);
* every watch event → metrics.

kopf adds the finalizer ``backup.janus.io/finalizer`` before any other handler
runs (the delete handler is not optional), so a Transaction cannot disappear
while its saga runs. The finalizer is released in every path: terminal phase,
no workflow ever started, workflow closed. Errors decide retries: a Temporal or
API hiccup is a ``kopf.TemporaryError`` retried after ``retry_seconds``.
"""

from __future__ import annotations

import copy
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError
from temporalio.service import RPCError

from bridge import installations, status
from bridge.installations import INSTALLATION_LABEL, Directory
from bridge.observe import Observer, parse_status
from bridge.runs import Runs, ref_of
from bridge.snapshots import delete_snapshots, release_leases
from janus.contract.models import API_GROUP, API_VERSION, PLURAL, TransactionRef
from janus.contract.operations import HOLDER_UID_LABEL, TRANSACTION_UID_LABEL
from janus.contract.settings import DEFAULT_INSTALLATION, BridgeSettings

T = TypeVar("T")

DIFFBASE_KEY = "last-handled-configuration"
"""The annotation (under the installation's prefix) kopf keeps once creation was handled."""
TOUCH_KEY = "touch-dummy"
"""kopf's own annotation for waking itself up (``AnnotationsProgressStorage``)."""

FINALIZER = installations.finalizer(DEFAULT_INSTALLATION)
"""The default installation's finalizer (another installation's: ``installations.finalizer``)."""

_AWAITING = (
    "Deleted while running: the workflow was cancelled and is rolling back; "
    "{} stays until the rollback completes"
)
WARN_EVERY_RETRIES = 12

#: A Transaction whose creation kopf has not handled, and that has seen no
#: event for this long, is touched once more every this long (``pick_up``).
PICK_UP_SECONDS = 20.0

_TRANSIENT = (RPCError, ApiException, status.StatusChanged, TimeoutError, ConnectionError)


@dataclass
class Handlers:
    runs: Runs
    settings: BridgeSettings
    observer: Observer
    directory: Directory
    _noticed: set[str] = field(default_factory=set)

    def register(self, registry: kopf.OperatorRegistry) -> None:
        every: dict[str, Any] = {
            "group": API_GROUP,
            "version": API_VERSION,
            "plural": PLURAL,
            "registry": registry,
        }
        kinds = {**every, "when": self._ours}
        kopf.on.event(**every, id="notice-others", when=self._not_ours)(self.notice)
        backoff = self.settings.retry_seconds
        kopf.on.create(**kinds, id="start-workflow", backoff=backoff)(self.start)
        kopf.on.resume(**kinds, id="resume-workflow", backoff=backoff)(self.start)
        kopf.on.delete(**kinds, id="await-rollback", backoff=backoff, optional=False)(
            self.await_rollback
        )
        kopf.on.event(**kinds, id="observe")(self.observe)
        kopf.timer(**kinds, id="pick-up", interval=PICK_UP_SECONDS, idle=PICK_UP_SECONDS)(
            self.pick_up
        )

    async def pick_up(self, *, body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
        """Touch a Transaction kopf has not yet handled the creation of, so it gets an event.

        kopf runs the create handler on the watch event that follows its finalizer
        PATCH. When the API server goes down just after applying that PATCH, the
        response is lost; kopf's retry fails its resourceVersion test (422) and
        kopf waits for "the newer change" to arrive, but the watch, resumed from
        the version before the PATCH on the restarted server, need not deliver
        it, and nothing else would ever touch the Transaction. The touch (kopf's
        own dummy annotation, outside the diff base) is such an event.
        """
        prefix = installations.annotation_prefix(self.settings.installation)
        annotations = body.get("metadata", {}).get("annotations") or {}
        if f"{prefix}/{DIFFBASE_KEY}" in annotations:
            return
        patch.metadata.annotations[f"{prefix}/{TOUCH_KEY}"] = datetime.now(UTC).isoformat()

    async def start(self, *, body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any) -> None:
        """Start the workflow unless the Transaction already ended."""
        try:
            outcome = await self.runs.ensure_started(_plain(body))
        except ValidationError as err:
            # The CRD's schema comes from the same models, so only a bridge older
            # than the CRD gets here: retrying would not help.
            kopf.warn(body, reason="InvalidSpec", message=f"this bridge cannot read it: {err}")
            raise kopf.PermanentError(f"the models reject this Transaction: {err}") from err
        except _TRANSIENT as err:
            raise self._retry(
                body, retry, "StartFailed", f"cannot start the workflow: {err}"
            ) from err
        logger.info(outcome)

    async def await_rollback(
        self, *, body: kopf.Body, retry: int, logger: kopf.Logger, **_: Any
    ) -> None:
        """Deleted: cancel a running workflow, and release the finalizer once it closed."""
        obj = _plain(body)
        phase = status.phase_of(obj)
        ref = ref_of(obj)
        if phase is None or not phase.terminal:
            try:
                closed = await self.runs.cancel_until_closed(ref)
            except _TRANSIENT as err:
                raise self._retry(
                    body, retry, "CancelFailed", f"cannot cancel the workflow: {err}"
                ) from err
            if not closed:
                if retry == 0:
                    kopf.info(body, reason="AwaitingRollback", message=_AWAITING.format(ref.name))
                raise kopf.TemporaryError(
                    f"waiting for workflow {ref.workflow_id()} to roll back",
                    delay=self.settings.rollback_poll_seconds,
                )
            logger.info("workflow %s has closed; releasing the finalizer", ref.workflow_id())
        await self._release_leases(body, ref, retry, logger)
        await self._delete_snapshots(body, ref, retry)

    async def _release_leases(
        self, body: kopf.Body, ref: TransactionRef, retry: int, logger: kopf.Logger
    ) -> None:
        """The leases go with the Transaction: a workflow the bridge terminated, or one
        whose worker died before reporting what it took, never released them."""
        namespace = self.settings.snapshot_namespace
        released = await self._clean_up(
            body,
            retry,
            release_leases(self.runs.api, namespace, ref.uid),
            failed=("LeaseCleanupFailed", "cannot release leases"),
            left=(
                "LeasesLeft",
                f"leases left in {namespace} (label {HOLDER_UID_LABEL}={ref.uid}) "
                "until they expire: the bridge may not delete them",
            ),
        )
        if released:
            logger.info("released leases left by %s: %s", ref.workflow_id(), ", ".join(released))

    async def _delete_snapshots(self, body: kopf.Body, ref: TransactionRef, retry: int) -> None:
        """The snapshots go with the Transaction."""
        namespace = self.settings.snapshot_namespace
        await self._clean_up(
            body,
            retry,
            delete_snapshots(self.runs.api, namespace, ref.uid),
            failed=("SnapshotCleanupFailed", "cannot delete snapshots"),
            left=(
                "SnapshotsLeft",
                f"snapshots left in {namespace} (label "
                f"{TRANSACTION_UID_LABEL}={ref.uid}): the bridge may not delete them",
            ),
        )

    async def _clean_up(
        self,
        body: kopf.Body,
        retry: int,
        work: Coroutine[Any, Any, T],
        *,
        failed: tuple[str, str],
        left: tuple[str, str],
    ) -> T | None:
        """Run one cleanup of a deleted Transaction. A failure is retried; a bridge
        without the rights says so and lets the Transaction go (never stuck on it)."""
        try:
            return await work
        except ApiException as err:
            if err.status != 403:
                reason, text = failed
                raise self._retry(body, retry, reason, f"{text}: {err}") from err
            reason, message = left
            kopf.warn(body, reason=reason, message=message)
            return None

    def _retry(self, body: kopf.Body, retry: int, reason: str, text: str) -> kopf.TemporaryError:
        """A retry, reported on the Transaction at once and then about once a minute."""
        if retry % WARN_EVERY_RETRIES == 0:
            kopf.warn(body, reason=reason, message=f"{text} (retrying)")
        return kopf.TemporaryError(text, delay=self.settings.retry_seconds)

    def _ours(self, labels: kopf.Labels, body: kopf.Body, **_: Any) -> bool:
        return self.directory.handles(labels, _finalizers(body))

    def _not_ours(self, labels: kopf.Labels, body: kopf.Body, **_: Any) -> bool:
        return not self.directory.handles(labels, _finalizers(body))

    async def notice(
        self,
        *,
        type: str | None,
        body: kopf.Body,
        labels: kopf.Labels,
        logger: kopf.Logger,
        **_: Any,
    ) -> None:
        """Another installation's Transaction: say once whose it is, or that nobody's.

        Only the installation that ``reports`` posts the Event, so no two write on it.
        """
        uid = body.get("metadata", {}).get("uid")
        if not uid or type == "DELETED" or uid in self._noticed:
            return
        self._noticed.add(uid)
        owner = self.directory.owner(labels, _finalizers(body))
        me = self.settings.installation
        if owner is not None:
            logger.info("left to Janus installation %r (this is %r)", owner, me)
            return
        pinned = labels.get(INSTALLATION_LABEL)
        why = (
            f"it is pinned to installation {pinned!r} ({INSTALLATION_LABEL}), which no bridge "
            "in this cluster leads"
            if pinned
            else f"it has no {INSTALLATION_LABEL} label and every installation here is "
            "--pinned-only"
        )
        leading = ", ".join(sorted({me, *self.directory.leaders}))
        message = f"No Janus installation handles this Transaction: {why} (leading: {leading})"
        logger.warning(message)
        if self.directory.reports():
            kopf.warn(body, reason="NoInstallation", message=message)

    async def observe(self, *, type: str | None, body: kopf.Body, **_: Any) -> None:
        """Count what changed since the last view (see ``bridge.observe``)."""
        uid = body.get("metadata", {}).get("uid")
        if not uid:
            return
        if type == "DELETED":
            self.observer.forget(uid)
            return
        self.observer.observe(uid, parse_status(body.get("status")))


def _finalizers(body: kopf.Body) -> list[str]:
    return list(body.get("metadata", {}).get("finalizers") or [])


def _plain(body: kopf.Body) -> dict[str, Any]:
    """A plain copy of kopf's live view of the object (the models validate dicts)."""
    return copy.deepcopy(dict(body))

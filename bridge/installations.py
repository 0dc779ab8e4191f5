"""Several Janus installations in one cluster: which one handles a Transaction.

An *installation* is one Janus: its bridges and workers on one task queue, with
a name (``--installation``, by default derived from the task queue: ``janus``
for the default queue). Two installations share a cluster when a team tries a
new version beside the old one, or when two teams run their own. They must not
both handle one Transaction, and a Transaction no installation handles must not
sit silently without a status.

* **Election.** Each installation elects its own leader, on the Lease
  ``<installation>-bridge`` (``janus-bridge`` for the default one, as in 0.1.0),
  labelled with the installation's name, so every bridge can list who leads.
* **Pinning.** A Transaction labelled ``backup.janus.io/installation=<name>``
  belongs to that installation. One without the label belongs to the
  installations that take unlabelled Transactions (the default; ``--pinned-only``
  opts out); if several of those lead at once, the one leading longest (earliest
  ``acquireTime`` of its Lease) takes it and the others leave it alone, saying
  so in their logs: never two bridges on one Transaction. Once taken (its
  finalizer on it), it stays with that installation.
* **kopf's keys.** Each installation's kopf keeps its own finalizer
  (``backup.janus.io/finalizer-<name>``) and annotations (prefix
  ``<name>.backup.janus.io``), so it never removes another installation's
  finalizer or mistakes another's progress for its own. The default
  installation keeps 0.1.0's keys, so existing Transactions carry over.
* **Saying so.** A bridge that finds another installation's leader logs it as a
  warning. A Transaction that no leading installation will handle (pinned to an
  installation nobody runs, or unlabelled while every installation is pinned
  only) gets a Warning Event, posted by one installation only (the first by
  name among those leading), so no two write on it.

Target Leases are *not* per installation: they protect targets, which the
installations share, so two installations changing one ConfigMap still take
turns. Lease holder identities stay derived from the Transaction alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from kubernetes import client as k8s
from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from janus.contract.models import API_GROUP
from janus.contract.settings import DEFAULT_INSTALLATION, BridgeSettings

logger = logging.getLogger(__name__)

INSTALLATION_LABEL = f"{API_GROUP}/installation"
"""On a Transaction: the installation it is pinned to. On an election Lease: whose it is."""
UNPINNED_LABEL = f"{API_GROUP}/takes-unpinned"
"""On an election Lease: whether that installation takes unlabelled Transactions."""

NEVER = datetime.max.replace(tzinfo=UTC)


def lease_labels(settings: BridgeSettings) -> dict[str, str]:
    """The labels an installation's election Lease carries, for the other installations."""
    return {
        INSTALLATION_LABEL: settings.installation,
        UNPINNED_LABEL: "false" if settings.pinned_only else "true",
    }


def finalizer(installation: str) -> str:
    """The finalizer of an installation's kopf (0.1.0's for the default one)."""
    suffix = "" if installation == DEFAULT_INSTALLATION else f"-{installation}"
    return f"{API_GROUP}/finalizer{suffix}"


def installation_of(finalizer_name: str) -> str | None:
    """The installation whose finalizer this is, or None for any other finalizer."""
    base = finalizer(DEFAULT_INSTALLATION)
    if finalizer_name == base:
        return DEFAULT_INSTALLATION
    if finalizer_name.startswith(f"{base}-"):
        return finalizer_name.removeprefix(f"{base}-")
    return None


def annotation_prefix(installation: str) -> str:
    """The prefix of an installation's kopf annotations (0.1.0's for the default one)."""
    return API_GROUP if installation == DEFAULT_INSTALLATION else f"{installation}.{API_GROUP}"


@dataclass(frozen=True)
class Leader:
    """One installation's leading bridge, from its election Lease."""

    installation: str
    lease: str
    holder: str
    takes_unpinned: bool
    since: datetime


@dataclass
class Directory:
    """The installations leading in this cluster, as this bridge last saw them.

    ``refresh`` lists the election Leases; the handler filters ask ``handles``.
    """

    api: ApiClient
    settings: BridgeSettings
    leaders: dict[str, Leader] = field(default_factory=dict)
    """The other installations' leaders, by installation."""
    own: Leader | None = None
    """This installation's own Lease, once listed (None without leader election)."""
    _announced: set[Leader] = field(default_factory=set)
    _listing_refused: bool = False

    @property
    def me(self) -> str:
        return self.settings.installation

    def handles(self, labels: Mapping[str, str], finalizers: Sequence[str] = ()) -> bool:
        """Whether this installation handles a Transaction with these labels and finalizers."""
        return self.owner(labels, finalizers) == self.me

    def owner(self, labels: Mapping[str, str], finalizers: Sequence[str] = ()) -> str | None:
        """The installation that handles it, or None when no leading one will.

        A pin decides; else an installation's finalizer already on it (an unlabelled
        Transaction stays with the installation that took it, even when the one
        leading longest changes, so no kopf ever drops a finalizer it did not add);
        else the installation taking unlabelled ones that leads longest.
        """
        pinned = labels.get(INSTALLATION_LABEL)
        if pinned:
            return pinned if pinned == self.me or pinned in self.leaders else None
        taken = [installation_of(f) for f in finalizers]
        if any(taken):
            return next(name for name in taken if name)
        takers = [leader for leader in self._everyone() if leader.takes_unpinned]
        if not takers:
            return None
        return min(takers, key=lambda leader: (leader.since, leader.installation)).installation

    def reports(self) -> bool:
        """Whether this installation posts the Events on Transactions nobody handles."""
        return self.me == min(leader.installation for leader in self._everyone())

    def refresh(self) -> None:
        """List the election Leases; warn about each other installation seen leading."""
        try:
            leases = k8s.CoordinationV1Api(self.api).list_namespaced_lease(
                self.settings.election_namespace, label_selector=INSTALLATION_LABEL
            )
        except ApiException as err:
            if not self._listing_refused:
                logger.warning(
                    "cannot list the election Leases in %s (%s %s): other Janus "
                    "installations in this cluster go unnoticed; grant `list` on leases "
                    "there (deploy/bridge-rbac.yaml)",
                    self.settings.election_namespace,
                    err.status,
                    err.reason,
                )
                self._listing_refused = True
            return
        now = datetime.now(UTC)
        found = (_leader(lease, now) for lease in leases.items)
        leaders = {leader.installation: leader for leader in found if leader is not None}
        self.own = leaders.pop(self.me, None)
        self.leaders = leaders
        self._announce()

    async def refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.renew_seconds)
            await asyncio.to_thread(self.refresh)

    def _everyone(self) -> list[Leader]:
        """The other leaders and this installation (without a Lease: leading "last")."""
        takes = not self.settings.pinned_only
        mine = self.own or Leader(self.me, self.settings.election_lease, "", takes, NEVER)
        return [*self.leaders.values(), mine]

    def _announce(self) -> None:
        for leader in self.leaders.values():
            if leader in self._announced:
                continue
            self._announced.add(leader)
            logger.warning(
                "another Janus installation, %r, leads in this cluster (Lease %s/%s, held "
                "by %s); this bridge is installation %r and handles only Transactions "
                "labelled %s=%s%s",
                leader.installation,
                self.settings.election_namespace,
                leader.lease,
                leader.holder,
                self.me,
                INSTALLATION_LABEL,
                self.me,
                self._unpinned_note(leader),
            )

    def _unpinned_note(self, other: Leader) -> str:
        if self.settings.pinned_only:
            return " (it is --pinned-only)"
        if not other.takes_unpinned:
            return f", and those without the label ({other.installation!r} is --pinned-only)"
        owner = self.owner({})
        return (
            f"; both take Transactions without the label, and {owner!r} (leading longer) "
            "handles them while the other leaves them: start one of the two with --pinned-only"
        )


def _leader(lease: k8s.V1Lease, now: datetime) -> Leader | None:
    """The leader an election Lease names, or None when it is released or expired."""
    spec, meta = lease.spec, lease.metadata or k8s.V1ObjectMeta()
    labels = meta.labels or {}
    if spec is None or not spec.holder_identity or spec.renew_time is None:
        return None
    # Twice the duration: another node's clock may be somewhat off.
    duration = timedelta(seconds=2 * (spec.lease_duration_seconds or 15))
    if spec.renew_time + duration < now:
        return None
    return Leader(
        installation=labels[INSTALLATION_LABEL],
        lease=meta.name or "?",
        holder=spec.holder_identity,
        takes_unpinned=labels.get(UNPINNED_LABEL) != "false",
        since=spec.acquire_time or spec.renew_time,
    )

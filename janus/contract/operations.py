"""The contract between the saga and the cluster: activity names, inputs and results.

``workflows`` calls activities by these names and ``activities`` implements them;
neither imports the other. Every input is one model so fields can be added
without breaking a running workflow's history.
"""

from __future__ import annotations

import enum
import hashlib
import re
from datetime import datetime, timedelta
from typing import Any

from pydantic import Field

from janus.contract.models import (
    ChangeType,
    Phase,
    StrictModel,
    TransactionRef,
    TransactionSpec,
    TransactionStatus,
)

RESOLVE_TARGETS = "resolve_targets"
ACQUIRE_LEASES = "acquire_leases"
RELEASE_LEASES = "release_leases"
SNAPSHOT_TARGETS = "snapshot_targets"
APPLY_CHANGES = "apply_changes"
UNDO_CHANGES = "undo_changes"
MIRROR_STATUS = "mirror_status"

#: The annotation Janus writes on every object it creates, updates or patches:
#: ``<transaction uid>/<change index>``. It makes a repeated apply recognise its own
#: earlier write. An undo restores the snapshot, so a rolled-back object carries none.
CHANGE_MARKER = "backup.janus.io/change"

#: The label on every snapshot shard: the uid of the Transaction it belongs to.
TRANSACTION_UID_LABEL = "backup.janus.io/transaction-uid"

#: The uid of the transaction holding a Lease, so the workers and the bridge can
#: find every lease of a transaction without knowing its targets.
HOLDER_UID_LABEL = "backup.janus.io/holder-uid"

#: How long one attempt of an activity that writes targets (apply, undo) may send
#: requests, from its start. Past it the attempt stops (a new one continues), so a
#: timed-out attempt cannot write much later than it started: the workflow waits
#: this long (plus the API server's slack) before undoing what such an attempt
#: may still write. A batch needs about a second, so this is generous.
ATTEMPT_WRITE_WINDOW = timedelta(seconds=20)

#: How long after an attempt's last request was cut off the API server may
#: still store it (it checks the request's deadline between steps, not inside
#: the storage write).
API_SERVER_SLACK = timedelta(seconds=5)

LEASE_PREFIX = "janus-"
_LEASE_NAME_MAX = 63


class ResolvedTarget(StrictModel):
    """A change's target after discovery: which resource, which namespace, which lease."""

    index: int
    change_type: ChangeType
    api_version: str
    kind: str
    resource: str = Field(description="The plural resource name, e.g. 'deployments'.")
    name: str
    namespace: str | None = Field(description="None for cluster-scoped kinds.")
    lease_name: str
    lease_namespace: str
    content: dict[str, Any] | None = None
    content_withheld: bool = Field(
        default=False,
        description="A Secret's content: not in the history; read it from the Transaction.",
    )

    @property
    def builtin(self) -> bool:
        """Built-in kinds take strategic merge patches; custom resources do not."""
        group = self.api_version.split("/")[0] if "/" in self.api_version else ""
        return group == "" or "." not in group or group.endswith(".k8s.io")

    def key(self) -> str:
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.api_version} {self.kind} {where}"

    def describe(self) -> str:
        """How the UI and status name this step, e.g. 'change 2 (Patch apps/v1 ...)'."""
        return f"change {self.index} ({self.change_type.value} {self.key()})"


def lease_name(api_version: str, kind: str, namespace: str | None, name: str) -> str:
    """A readable, valid Lease name, unique per target.

    The hash covers the full identity, so truncating the readable part never makes
    two targets share a lease.
    """
    identity = f"{api_version}|{kind}|{namespace or ''}|{name}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:10]
    readable = re.sub(r"[^a-z0-9-]+", "-", f"{kind}-{name}".lower()).strip("-")
    room = _LEASE_NAME_MAX - len(LEASE_PREFIX) - len(digest) - 1
    return f"{LEASE_PREFIX}{readable[:room].rstrip('-')}-{digest}"


class Identity(StrictModel):
    """Whom the worker acts as for a transaction's target reads and writes."""

    namespace: str
    service_account: str | None = None


class ResolveInput(StrictModel):
    ref: TransactionRef
    spec: TransactionSpec
    withheld: list[int] = Field(
        default_factory=list, description="Changes whose content stays in the Transaction."
    )


class ResolveResult(StrictModel):
    targets: list[ResolvedTarget]


class LeaseRef(StrictModel):
    name: str
    namespace: str
    target: str = Field(description="The target this lease guards, for messages.")


class AcquireLeasesInput(StrictModel):
    holder: str
    leases: list[LeaseRef] = Field(description="In canonical order; acquired in this order.")
    duration_seconds: int
    renewal: bool = Field(
        default=False, description="All are held already: renew them, in any order."
    )


class Holder(StrictModel):
    lease: LeaseRef
    identity: str
    expires_at: datetime | None = None


class AcquireLeasesResult(StrictModel):
    acquired: list[str] = Field(description="Names of the leases we hold, in order.")
    blocked_by: Holder | None = None
    renewed_at: datetime | None = Field(
        default=None,
        description="The worker's clock before the first write: every acquired lease "
        "is valid for its duration from then.",
    )


class ReleaseLeasesInput(StrictModel):
    holder: str
    leases: list[LeaseRef]


class SnapshotStoreKind(enum.StrEnum):
    CONFIG_MAP = "ConfigMap"
    SECRET = "Secret"


class Snapshot(StrictModel):
    """Where a target's prior state is kept; the state itself stays in the cluster."""

    index: int
    exists: bool
    resource_version: str = ""
    uid: str = ""
    store_kind: SnapshotStoreKind = SnapshotStoreKind.CONFIG_MAP
    store_name: str = ""
    store_key: str = ""
    store_namespace: str = Field(
        default="",
        description="Where the shard is: the system namespace; '' (recorded by 0.1.0) "
        "for the Transaction's namespace.",
    )
    fingerprint: str = Field(default="", description="Of what a user sees; see ``comparable``.")
    managers: dict[str, str] | None = Field(
        default=None,
        description="Every other field manager's managedFields entry then (see "
        "``activities.ownership``); None for snapshots taken before 0.2.",
    )
    absent_at: str = Field(
        default="",
        description="For a target found absent (a Create's): the resourceVersion of its "
        "collection then, from which a retried attempt watches for an earlier attempt's "
        "object ('' when unknown: the account may not list, or taken before 0.2).",
    )


class StepFailure(StrictModel):
    """Why a change in a batch failed: what the workflow raises for it."""

    index: int
    type: str
    message: str
    retryable: bool = Field(description="A passing fault: the change is tried again.")


class SnapshotInput(StrictModel):
    ref: TransactionRef
    identity: Identity
    targets: list[ResolvedTarget]
    refuse_each: bool = Field(
        default=False,
        description="Report a target's refusal (not found, conflict, dry run) in the "
        "result and snapshot the others, instead of failing the batch: a run a reset "
        "started must undo what an earlier run applied to them.",
    )


class SnapshotResult(StrictModel):
    snapshots: list[Snapshot]
    refused: list[StepFailure] = Field(
        default_factory=list,
        description="With refuse_each: the targets refused, not snapshotted.",
    )


class ApplyInput(StrictModel):
    """A run of consecutive changes to apply in order, within a time budget."""

    ref: TransactionRef
    identity: Identity
    steps: list[tuple[ResolvedTarget, Snapshot]]
    lease_duration_seconds: int
    leases_renewed_at: datetime | None = Field(
        default=None,
        description="When every lease was last renewed; a write well inside the lease's "
        "duration needs no fencing request.",
    )
    budget_seconds: float = Field(
        description="Stop after the change that crosses this, so progress and a cancel "
        "are seen between batches."
    )


class ApplyResult(StrictModel):
    resource_version: str = Field(description="After our write; '' when the object is gone.")
    fingerprint: str = Field(default="", description="Of the object as we left it.")
    already_applied: bool = False


class ApplyBatchResult(StrictModel):
    applied: list[ApplyResult] = Field(description="One per change applied, in order.")
    failure: StepFailure | None = Field(
        default=None, description="The change after the applied ones, when it failed."
    )
    attempt: int = Field(
        default=1,
        description="The activity attempt that reported this; after the first, an earlier "
        "attempt may have timed out and still be sending (until its write window ends).",
    )


class UndoOutcome(enum.StrEnum):
    RESTORED = "Restored"
    NOTHING_TO_UNDO = "NothingToUndo"
    MODIFIED_BY_OTHERS = "ModifiedByOthers"


class UndoStep(StrictModel):
    target: ResolvedTarget
    snapshot: Snapshot
    applied: ApplyResult | None = Field(
        default=None,
        description="None when the action failed or its outcome is unknown (cancelled).",
    )
    action_failed: bool = Field(
        default=False,
        description="The action ended in an error: whatever is there without our marker "
        "was not written by this transaction.",
    )


class UndoInput(StrictModel):
    """Undos to run in the order given (the reverse of the commit), within a time budget."""

    ref: TransactionRef
    identity: Identity
    steps: list[UndoStep]
    budget_seconds: float
    lease_duration_seconds: int = Field(
        default=0,
        description="Fence every undo write with the target's lease (renewed for this "
        "long when due); 0: not fenced (workflows recorded by 0.1.0).",
    )
    leases_renewed_at: datetime | None = None


class UndoResult(StrictModel):
    outcome: UndoOutcome
    message: str = ""
    foreign: bool = Field(
        default=False,
        description="Nothing of ours to undo, but someone else changed the target "
        "(e.g. deleted it before our Delete ran): the message goes on the item.",
    )


class UndoBatchResult(StrictModel):
    done: list[UndoResult] = Field(description="One per undo finished, in order.")
    failure: StepFailure | None = Field(
        default=None, description="The undo after the finished ones, when it failed."
    )


class PhaseEvent(StrictModel):
    """A Kubernetes Event to emit on the Transaction."""

    phase: Phase
    reason: str
    message: str
    warning: bool = False


class MirrorStatusInput(StrictModel):
    ref: TransactionRef
    status: TransactionStatus
    events: list[PhaseEvent] = Field(default_factory=list)


def marker_for(ref: TransactionRef, index: int) -> str:
    return f"{ref.uid}/{index}"

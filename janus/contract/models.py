"""The Transaction API: one set of pydantic models for spec, status and workflow input.

These models are the source of truth. The CRD's OpenAPI schema in ``deploy/`` is
generated from them (``janus crd``), the CEL rules the API server enforces at
admission live beside the fields they guard, and the same models travel as the
workflow's and the activities' inputs and results, so a field means one thing
everywhere.

Vocabulary (borrowed from steno): a *change* is one step of the saga. Its
*action* mutates a *target*; its *undo* puts the target back from the
*snapshot* taken while the target's *lease* was held.
"""

from __future__ import annotations

import enum
import re
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

API_GROUP = "backup.janus.io"
API_VERSION = "v1alpha1"
KIND = "Transaction"
PLURAL = "transactions"

#: The most changes one Transaction may list (checked at admission and again in
#: the workflow). Larger change sets go in several Transactions.
MAX_CHANGES = 5000

#: Above this many changes no change's content travels through Temporal: the
#: workflow's input and the target list resolved from it (content plus about
#: 200 bytes a change) would near Temporal's 2 MiB payload limit. Activities
#: read the content from the Transaction instead, once per activity.
WITHHOLD_CONTENT_ABOVE = 1000

#: The service account a Transaction acts as when it names none. Every
#: Transaction acts as a service account of its own namespace, never as the worker.
DEFAULT_SERVICE_ACCOUNT = "janus"

#: ``VERSION`` (the core group) or ``GROUP/VERSION``: a DNS subdomain, one slash, a
#: DNS label. Refused at admission (CEL) and again before the first write, so no
#: second spelling of a group (``/v1``, ``apps/``, ``apps//v1``) reaches discovery,
#: which would match it loosely (an empty group matches *every* group).
API_VERSION_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[a-z]([-a-z0-9]*[a-z0-9])?$"
)
API_VERSION_HELP = (
    "write it as VERSION for the core group (v1) or GROUP/VERSION (e.g. apps/v1), "
    "lowercase, with one slash and no empty part"
)
_API_VERSION = re.compile(API_VERSION_PATTERN)

_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a Go-style duration such as ``5m``, ``90s`` or ``1h30m``.

    Raises:
        ValueError: the text is not a duration; the message says what is accepted.
    """
    if not _DURATION.match(text):
        raise ValueError(
            f"{text!r} is not a duration: use a number with a unit, e.g. 30s, 5m or 1h30m"
        )
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))
    return timedelta(seconds=seconds)


class StrictModel(BaseModel):
    """The base of every model Janus exchanges (the API's and the activities'):
    unknown fields are refused; fields with a camelCase alias (the Kubernetes API's
    spelling) also accept their snake_case name."""

    model_config = ConfigDict(populate_by_name=True, use_enum_values=False, extra="forbid")


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """Attach CEL validation rules (rule, message) to a schema node."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class ChangeType(enum.StrEnum):
    CREATE = "Create"
    UPDATE = "Update"
    PATCH = "Patch"
    DELETE = "Delete"


class Target(StrictModel):
    """The object a change acts on. Any kind the API server serves."""

    api_version: str = Field(
        alias="apiVersion",
        min_length=1,
        max_length=253,
        json_schema_extra=_cel(
            (
                # The full pattern is checked by the workflow: a regex over 5,000
                # changes exceeds the API server's CEL cost budget; these do not.
                "!self.startsWith('/') && !self.endsWith('/') "
                "&& self.indexOf('/') == self.lastIndexOf('/')",
                f"target.apiVersion is malformed: {API_VERSION_HELP}",
            )
        ),
    )
    kind: str = Field(min_length=1, max_length=63)
    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = Field(
        default=None,
        max_length=63,
        description="Defaults to the Transaction's namespace; ignored for cluster-scoped kinds.",
    )

    def key(self) -> str:
        """A readable identity, e.g. ``apps/v1 Deployment shop/web``."""
        where = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{self.api_version} {self.kind} {where}"


class Change(StrictModel):
    model_config = ConfigDict(
        json_schema_extra=_cel(
            (
                "self.type == 'Delete' || has(self.content)",
                "content is required for Create, Update and Patch: add the object "
                "(or, for Patch, the fields to merge) under content",
            ),
            (
                "self.type != 'Delete' || !has(self.content)",
                "content is forbidden for Delete: remove content from this change",
            ),
        )
    )

    target: Target
    type: ChangeType
    content: dict[str, Any] | None = Field(
        default=None,
        description="Create/Update: the whole object. Patch: the fields to merge "
        "(strategic merge for built-in kinds, JSON merge for custom resources).",
    )


class TransactionSpec(StrictModel):
    # Duplicate targets are refused by the workflow before the first write, not at
    # admission: a CEL rule comparing every pair of changes is quadratic, and the
    # API server's static cost estimate refuses it at MAX_CHANGES.
    changes: list[Change] = Field(min_length=1, max_length=MAX_CHANGES)
    lock_timeout: str = Field(
        default="5m",
        alias="lockTimeout",
        max_length=32,
        pattern=_DURATION.pattern,
        description="How long to wait for leases held by other transactions, e.g. 30s or 5m.",
    )
    timeout: str | None = Field(
        default=None,
        max_length=32,
        pattern=_DURATION.pattern,
        description="Roll back when the transaction has not committed within this duration.",
    )
    service_account_name: str | None = Field(
        default=DEFAULT_SERVICE_ACCOUNT,
        alias="serviceAccountName",
        max_length=253,
        description="Read and write targets as this service account of the "
        "Transaction's namespace (impersonated by the worker). Admitted only when its "
        "creator may impersonate the account.",
    )


class Phase(enum.StrEnum):
    PENDING = "Pending"
    PREPARING = "Preparing"
    PREPARED = "Prepared"
    COMMITTING = "Committing"
    COMMITTED = "Committed"
    ROLLING_BACK = "RollingBack"
    ROLLED_BACK = "RolledBack"
    FAILED = "Failed"

    @property
    def terminal(self) -> bool:
        return self in (Phase.COMMITTED, Phase.ROLLED_BACK, Phase.FAILED)


class ItemStatus(StrictModel):
    """What happened to one change; ``index`` is its position in spec.changes."""

    index: int
    target: str = Field(description="The target, e.g. 'apps/v1 Deployment shop/web'.")
    type: ChangeType
    lease: str | None = None
    resource_version: str | None = Field(
        default=None,
        alias="resourceVersion",
        description="The target's resourceVersion when snapshotted ('' when it did not exist).",
    )
    prepared: bool = False
    committed: bool = False
    rolled_back: bool = Field(default=False, alias="rolledBack")
    error: str | None = None


class Condition(StrictModel):
    type: str
    status: str
    reason: str
    message: str = ""
    last_transition_time: datetime = Field(alias="lastTransitionTime")


class Summary(StrictModel):
    total: int = 0
    prepared: int = 0
    committed: int = 0
    rolled_back: int = Field(default=0, alias="rolledBack")


class LeaseWait(StrictModel):
    """A lease the transaction waits for, because another transaction holds it."""

    lease: str = Field(description="The Lease, as namespace/name.")
    target: str = Field(description="The target it guards, e.g. 'v1 ConfigMap shop/config'.")
    holder: str = Field(description="The transaction holding it (namespace/name/uid).")
    since: datetime = Field(description="When this transaction first found it held by holder.")
    undo: bool = Field(default=False, description="Waiting to roll back (an undo), not to prepare.")
    gave_up: bool = Field(
        default=False,
        alias="gaveUp",
        description="lockTimeout ran out: the transaction stopped waiting and rolled back "
        "(or, waiting to undo, ended Failed).",
    )


class TransactionStatus(StrictModel):
    phase: Phase = Phase.PENDING
    message: str = ""
    waiting: LeaseWait | None = Field(
        default=None,
        description="Set while the transaction waits for a lease another transaction "
        "holds, and kept, with gaveUp, when it gave up after lockTimeout.",
    )
    summary: Summary = Field(default_factory=Summary)
    items: list[ItemStatus] = Field(default_factory=list)
    items_omitted: int = Field(
        default=0,
        alias="itemsOmitted",
        description="Items not listed (a large transaction lists only those with an error); "
        "the workflow's `status` query shows every one.",
    )
    conditions: list[Condition] = Field(default_factory=list)
    started_at: datetime | None = Field(default=None, alias="startedAt")
    completed_at: datetime | None = Field(default=None, alias="completedAt")
    workflow_id: str | None = Field(default=None, alias="workflowId")
    temporal_ui: str | None = Field(
        default=None, alias="temporalUI", description="Where to follow the workflow."
    )
    observed_generation: int | None = Field(default=None, alias="observedGeneration")
    sequence: int = Field(
        default=0,
        description="Grows with every status write (milliseconds of workflow time, at "
        "least one more than the last); the API server refuses a write with a smaller "
        "one, so a delayed or stale writer cannot put back an older status.",
    )


#: The CEL rule on ``status`` that makes ``sequence`` a precondition. Comparing two
#: integers costs the same at any size of Transaction.
STATUS_SEQUENCE_RULE = (
    "!has(oldSelf.sequence) || (has(self.sequence) && self.sequence >= oldSelf.sequence)"
)
STALE_STATUS_MESSAGE = "status.sequence may not decrease: this status is older than the one stored"


class TransactionRef(StrictModel):
    """Which Transaction custom resource a workflow serves."""

    namespace: str
    name: str
    uid: str

    def workflow_id(self) -> str:
        return f"txn/{self.namespace}/{self.name}/{self.uid}"

    def holder_identity(self) -> str:
        """Who holds a lease: the transaction, not the worker, so any worker can resume."""
        return f"{self.namespace}/{self.name}/{self.uid}"


def api_version_problem(api_version: str) -> str | None:
    """Why a target's apiVersion is malformed, or None when it is well formed."""
    if _API_VERSION.match(api_version):
        return None
    return f"target.apiVersion {api_version!r} is malformed: {API_VERSION_HELP}"


def group_of(api_version: str) -> str:
    """The API group a spelling names ('' for the core group), read as discovery would:
    before the first slash, or nothing when there is none or nothing before it."""
    return api_version.split("/", 1)[0] if "/" in api_version else ""


class Spelled(Protocol):
    """A target as spelled by its apiVersion and kind: a change's, or a resolved one."""

    @property
    def api_version(self) -> str: ...

    @property
    def kind(self) -> str: ...


def holds_secret(target: Spelled) -> bool:
    """Whether a target is (or may resolve to) a core-group Secret: the one check for
    the Secret rules (content never through Temporal, snapshots only in Secrets,
    values scrubbed from messages).

    Also decided before discovery (the bridge has none), so on the spelling,
    leniently: every spelling that could resolve to the core group's Secret
    counts, malformed ones included (those are refused later, but their content
    must not reach the workflow's input first). A resolved target's spelling is
    canonical (``v1``, ``Secret``), where this is exact.
    """
    return group_of(target.api_version.strip()) == "" and target.kind.strip().lower() in (
        "secret",
        "secrets",
    )


class TransactionInput(StrictModel):
    """The workflow's input: the Transaction as the bridge saw it when starting.

    A Secret's content is *withheld*: it stays in the Transaction (in the cluster)
    and the activities read it from there, so no Secret value ever reaches a
    workflow's history. So is every change's content in a transaction of more
    than WITHHOLD_CONTENT_ABOVE changes, so that no input or result nears
    Temporal's payload limit. ``withheld`` lists those changes.
    """

    ref: TransactionRef
    generation: int = 1
    spec: TransactionSpec
    temporal_ui: str | None = None
    withheld: list[int] = Field(
        default_factory=list,
        description="Changes whose content was left out (Secrets, or all in a large "
        "transaction); activities read it from the Transaction.",
    )

    @classmethod
    def from_resource(
        cls, obj: dict[str, Any], *, temporal_ui: str | None = None
    ) -> TransactionInput:
        """Build the input from a Transaction as the API server returns it."""
        meta = obj["metadata"]
        spec = TransactionSpec.model_validate(obj["spec"])
        large = len(spec.changes) > WITHHOLD_CONTENT_ABOVE
        withheld = [
            i
            for i, change in enumerate(spec.changes)
            if change.content is not None and (large or holds_secret(change.target))
        ]
        for i in withheld:
            spec.changes[i].content = None
        return cls(
            ref=TransactionRef(namespace=meta["namespace"], name=meta["name"], uid=meta["uid"]),
            generation=meta.get("generation", 1),
            spec=spec,
            temporal_ui=temporal_ui,
            withheld=withheld,
        )


def manifest(name: str, spec: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    """A Transaction object ready for the API server."""
    metadata: dict[str, Any] = {"name": name}
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": metadata,
        "spec": spec,
    }

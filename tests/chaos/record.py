"""What one trial leaves behind for the checker: the plan, the trace, the end state.

The checker never trusts Janus's account of what it did. It gets the
Transactions' final status only to compare it with what the API server
recorded (the audit log, parsed by ``tests.chaos.audit``) and with the objects
read at the end. Everything here is plain data, so a unit test can build a
trial by hand, plant a violation in it, and see the checker catch it.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from janus.contract.operations import lease_name

#: apiVersion/kind -> the resource name the API server's audit log uses.
RESOURCES = {
    ("v1", "ConfigMap"): "configmaps",
    ("v1", "Secret"): "secrets",
    ("apps/v1", "Deployment"): "deployments",
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): "clusterroles",
    ("chaos.janus.dev/v1", "Widget"): "widgets",
    ("chaos.janus.dev/v1", "Gadget"): "gadgets",
}
TERMINAL = ("Committed", "RolledBack", "Failed")


class TargetRef(BaseModel):
    """One object a trial's transactions may change."""

    api_version: str
    kind: str
    name: str
    namespace: str | None = None

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def resource(self) -> str:
        return RESOURCES[(self.api_version, self.kind)]

    @property
    def key(self) -> str:
        """How the audit log names it: group/resource/namespace/name."""
        return f"{self.group}/{self.resource}/{self.namespace or ''}/{self.name}"

    @property
    def lease(self) -> str:
        return lease_name(self.api_version, self.kind, self.namespace, self.name)

    def manifest_target(self) -> dict[str, str]:
        """The change's ``target`` (the namespace defaults to the Transaction's)."""
        return {"apiVersion": self.api_version, "kind": self.kind, "name": self.name}


class ChangeRecord(BaseModel):
    index: int
    target: TargetRef
    type: str
    content: dict[str, Any] | None = None


class TxnRecord(BaseModel):
    """A Transaction of the trial: what it asked for, and how it ended (its own claim)."""

    name: str
    namespace: str
    uid: str = ""
    service_account: str
    changes: list[ChangeRecord]
    phase: str | None = None
    status: dict[str, Any] = Field(default_factory=dict)
    deleted: bool = Field(
        default=False, description="Gone by the end (kubectl delete): phase from the audit log."
    )

    @property
    def user(self) -> str:
        """Who the audit log names for its target writes (the worker impersonates it)."""
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def holder(self) -> str:
        return f"{self.namespace}/{self.name}/{self.uid}"


class TraceEntry(BaseModel):
    """One action or fault of a trial, ``at`` seconds after it began."""

    at: float
    kind: str
    detail: str


class TrialRecord(BaseModel):
    seed: int
    trial: int
    namespace: str
    targets: list[TargetRef]
    initial: dict[str, dict[str, Any] | None] = Field(
        description="Each target (by key) as read just before the first transaction."
    )
    txns: list[TxnRecord]
    trace: list[TraceEntry] = Field(default_factory=list)
    leases_left: list[str] = Field(default_factory=list)
    snapshots_left: list[str] = Field(default_factory=list)
    finalizers_left: list[str] = Field(default_factory=list)
    stuck: list[str] = Field(default_factory=list, description="Never reached a terminal phase.")

"""Configuration shared by the worker and the bridge, from flags and environment."""

from __future__ import annotations

import os

from pydantic import BaseModel, Field


class WorkerSettings(BaseModel):
    """What the activities need to know about their cluster.

    (The worker's test seams, ``JANUS_FAULTS`` and the like, are no part of it:
    ``activities.seams`` reads them.)
    """

    lease_namespace: str = Field(
        default="janus-system",
        description="Where every target's Lease lives, so all transactions agree on it.",
    )
    require_service_account: bool = Field(
        default=False,
        description="Refuse Transactions without spec.serviceAccountName "
        "(JANUS_REQUIRE_SERVICE_ACCOUNT=1), so the worker never changes a target with "
        "its own rights: with the minimal RBAC those still cover updating ConfigMaps and "
        "Secrets (it keeps snapshots in them).",
    )

    @classmethod
    def from_env(cls) -> WorkerSettings:
        return cls(
            lease_namespace=os.environ.get("JANUS_LEASE_NAMESPACE", "janus-system"),
            require_service_account=env_flag("JANUS_REQUIRE_SERVICE_ACCOUNT"),
        )


def env_flag(variable: str) -> bool:
    """Whether an environment variable turns a setting on (1, true or yes)."""
    return os.environ.get(variable, "").lower() in ("1", "true", "yes")

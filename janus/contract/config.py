"""Configuration shared by the worker and the bridge, from flags and environment."""

from __future__ import annotations

import enum
import fnmatch
import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from janus.contract.models import parse_duration


class FaultPoint(enum.StrEnum):
    """Where an injected fault strikes: before an activity's API call, or after it
    succeeded but before its result is recorded (the crash window)."""

    BEFORE = "before"
    AFTER = "after"


#: The steps a fault can strike. ``index`` is the change's position in
#: spec.changes, except for ``acquire`` and ``release``, where it is the lease's
#: position in the canonical (sorted) order.
FaultOperation = Literal["acquire", "snapshot", "apply", "undo", "release"]


class Fault(BaseModel):
    """One injected failure, e.g. ``apply:2:before`` or ``undo:0:after@deploy-v2``.

    Faults exist to prove the saga through a real seam: they are read from the
    worker's configuration, never patched into code by a test. The same syntax
    names the point for each of three effects:

    - a *failure* (``JANUS_FAULTS``): ``before`` is permanent, the step fails and
      the saga rolls back; ``after`` fires once per transaction and step: the
      write has happened, the activity reports a transient error, and Temporal
      runs it again;
    - a *crash* (``JANUS_CRASH_AT``): the worker process kills itself with
      SIGKILL at that point, as a machine failure would;
    - a *delay* (``JANUS_DELAYS``, with a duration: ``apply:1:before:5s``): the
      step waits first, which opens a window for another writer.
    """

    model_config = ConfigDict(frozen=True)

    operation: FaultOperation
    index: int
    point: FaultPoint
    transaction: str = Field(default="*", description="A glob on the Transaction's name.")
    seconds: float = Field(default=0.0, description="How long a delay lasts.")

    @classmethod
    def parse(cls, text: str) -> Fault:
        spec, _, transaction = text.strip().partition("@")
        try:
            operation, index, point, *duration = spec.split(":")
            if len(duration) > 1:
                raise ValueError(spec)
            seconds = _seconds(duration[0]) if duration else 0.0
            return cls(
                operation=operation,
                index=int(index),
                point=FaultPoint(point),
                transaction=transaction or "*",
                seconds=seconds,
            )
        except ValueError as err:
            raise ValueError(
                f"fault {text!r} is not operation:index:point[:duration][@transaction], "
                "e.g. apply:2:before, undo:0:after@deploy-v2 or apply:1:before:5s"
            ) from err

    def matches(self, operation: str, index: int, transaction: str) -> bool:
        return (
            self.operation == operation
            and self.index == index
            and fnmatch.fnmatchcase(transaction, self.transaction)
        )


def _seconds(text: str) -> float:
    return parse_duration(text).total_seconds()


def faults_from_env(
    value: str | None = None, *, variable: str = "JANUS_FAULTS"
) -> tuple[Fault, ...]:
    text = os.environ.get(variable, "") if value is None else value
    return tuple(Fault.parse(part) for part in text.split(",") if part.strip())


class WorkerSettings(BaseModel):
    """What the activities need to know about their cluster, and the test seams.

    ``faults``, ``crashes``, ``delays`` and ``repeat_activities`` are off unless
    configured; they exist so tests prove the saga through the worker's own
    configuration, never by patching its code.
    """

    lease_namespace: str = Field(
        default="janus-system",
        description="Where every target's Lease lives, so all transactions agree on it.",
    )
    faults: tuple[Fault, ...] = ()
    crashes: tuple[Fault, ...] = Field(
        default=(),
        description="Points where the worker process SIGKILLs itself (JANUS_CRASH_AT).",
    )
    delays: tuple[Fault, ...] = Field(
        default=(), description="Points where a step waits first (JANUS_DELAYS)."
    )
    repeat_activities: bool = Field(
        default=False,
        description="Run every activity's effect twice (JANUS_REPEAT_ACTIVITIES=1): "
        "the proof of idempotence.",
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
            faults=faults_from_env(),
            crashes=faults_from_env(variable="JANUS_CRASH_AT"),
            delays=faults_from_env(variable="JANUS_DELAYS"),
            repeat_activities=_flag("JANUS_REPEAT_ACTIVITIES"),
            require_service_account=_flag("JANUS_REQUIRE_SERVICE_ACCOUNT"),
        )


def _flag(variable: str) -> bool:
    return os.environ.get(variable, "").lower() in ("1", "true", "yes")

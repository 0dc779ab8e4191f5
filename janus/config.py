"""Configuration shared by the worker and the bridge, from flags and environment."""

from __future__ import annotations

import enum
import fnmatch
import os
from typing import Literal

from kubernetes import config as kube_config
from kubernetes.client import ApiClient, Configuration
from pydantic import BaseModel, ConfigDict, Field


class FaultPoint(enum.StrEnum):
    """Where an injected fault strikes: before an activity's API call, or after it
    succeeded but before its result is recorded (the crash window)."""

    BEFORE = "before"
    AFTER = "after"


class Fault(BaseModel):
    """One injected failure, e.g. ``apply:2:before`` or ``undo:0:after@deploy-v2``.

    Faults exist to prove the saga through a real seam: they are read from the
    worker's configuration (``JANUS_FAULTS``), never patched into code by a test.
    A ``before`` fault is permanent: the step fails and the saga rolls back. An
    ``after`` fault fires once per transaction and step: the write has happened,
    the activity reports a transient error, and Temporal runs it again.
    """

    model_config = ConfigDict(frozen=True)

    operation: Literal["apply", "undo", "snapshot"]
    index: int
    point: FaultPoint
    transaction: str = Field(default="*", description="A glob on the Transaction's name.")

    @classmethod
    def parse(cls, text: str) -> Fault:
        spec, _, transaction = text.strip().partition("@")
        try:
            operation, index, point = spec.split(":")
            return cls(
                operation=operation,
                index=int(index),
                point=FaultPoint(point),
                transaction=transaction or "*",
            )
        except ValueError as err:
            raise ValueError(
                f"JANUS_FAULTS entry {text!r} is not operation:index:point[@transaction], "
                "e.g. apply:2:before or undo:0:after@deploy-v2"
            ) from err

    def matches(self, operation: str, index: int, transaction: str) -> bool:
        return (
            self.operation == operation
            and self.index == index
            and fnmatch.fnmatchcase(transaction, self.transaction)
        )


def faults_from_env(value: str | None = None) -> tuple[Fault, ...]:
    text = os.environ.get("JANUS_FAULTS", "") if value is None else value
    return tuple(Fault.parse(part) for part in text.split(",") if part.strip())


class WorkerSettings(BaseModel):
    """What the activities need to know about their cluster."""

    lease_namespace: str = Field(
        default="janus-system",
        description="Where every target's Lease lives, so all transactions agree on it.",
    )
    faults: tuple[Fault, ...] = ()
    repeat_activities: bool = Field(
        default=False,
        description="Run every activity's effect twice (JANUS_REPEAT_ACTIVITIES=1): "
        "the proof of idempotence.",
    )

    @classmethod
    def from_env(cls) -> WorkerSettings:
        return cls(
            lease_namespace=os.environ.get("JANUS_LEASE_NAMESPACE", "janus-system"),
            faults=faults_from_env(),
            repeat_activities=os.environ.get("JANUS_REPEAT_ACTIVITIES", "") in ("1", "true"),
        )


def kubernetes_client(kubeconfig: str | None = None) -> ApiClient:
    """A client from a kubeconfig (flag, then KUBECONFIG), or the in-cluster account."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path:
        return kube_config.new_client_from_config(config_file=path)
    configuration = Configuration()
    kube_config.load_incluster_config(client_configuration=configuration)
    return ApiClient(configuration)

"""A withheld change's content, read from the Transaction itself.

Secret contents never travel through Temporal (``TransactionInput.from_resource``
leaves them out, and every content of a very large transaction), so the
activities that need one (dry run, apply) read it from the Transaction custom
resource. Its spec is immutable (a CEL rule), and the uid
must match the workflow's, so what is read is exactly what was submitted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, ClassVar

from kubernetes.client.exceptions import ApiException

from activities import redact
from activities.cluster import Cluster, translate
from janus.contract.errors import InvalidTransaction, JanusError
from janus.contract.models import (
    API_GROUP,
    API_VERSION,
    PLURAL,
    WITHHOLD_CONTENT_ABOVE,
    TransactionRef,
    holds_secret,
)
from janus.contract.operations import ResolvedTarget


def transaction_changes(cluster: Cluster, ref: TransactionRef) -> list[dict[str, Any]]:
    """The Transaction's spec.changes, as submitted."""
    where = f"transaction {ref.namespace}/{ref.name}"
    try:
        found = cluster.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, ref.namespace, PLURAL, ref.name
        )
    except ApiException as err:
        if err.status == 404:
            raise InvalidTransaction(
                f"{where} was deleted; the Secret content it carried is gone with it"
            ) from None
        raise translate(err, where, rejected=JanusError) from None
    obj: dict[str, Any] = found if isinstance(found, dict) else {}
    if obj.get("metadata", {}).get("uid") != ref.uid:
        raise InvalidTransaction(f"{where} was deleted and created again; not using its content")
    spec: dict[str, Any] = obj.get("spec") or {}
    changes: list[dict[str, Any]] = spec.get("changes") or []
    return changes


#: Transactions whose change lists a worker keeps for its activities.
SHARED_TRANSACTIONS = 4


class TransactionContent:
    """The contents of one Transaction's changes, read from it at most once per activity.

    A large transaction's (every content withheld) are also shared by the worker's
    activities, for a few transactions at a time: its spec is immutable and the
    uid is checked, so a copy never goes stale. A small one's (only Secrets) are
    not kept beyond the activity."""

    _shared: ClassVar[OrderedDict[str, list[dict[str, Any]]]] = OrderedDict()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, cluster: Cluster, ref: TransactionRef) -> None:
        self.cluster = cluster
        self.ref = ref
        self._changes: list[dict[str, Any]] | None = None

    def of(self, target: ResolvedTarget) -> dict[str, Any] | None:
        """The change's content: from the history, or from the Transaction when withheld."""
        if not target.content_withheld:
            return target.content
        if self._changes is None:
            self._changes = self._read()
        content: dict[str, Any] | None = self._changes[target.index].get("content")
        if holds_secret(target):
            redact.remember_content(content)
        return content

    def _read(self) -> list[dict[str, Any]]:
        # One read at a time: the snapshot batches of a large transaction start
        # together, and each would otherwise read (and hold) the whole object.
        with self._lock:
            cached = self._shared.get(self.ref.uid)
            if cached is not None:
                return cached
            changes = transaction_changes(self.cluster, self.ref)
            if len(changes) > WITHHOLD_CONTENT_ABOVE:
                self._shared[self.ref.uid] = changes
                while len(self._shared) > SHARED_TRANSACTIONS:
                    self._shared.popitem(last=False)
            return changes

"""The fingerprint key: a random secret only the worker holds.

Kept in the Secret ``janus-fingerprint-key`` of the system namespace, created by
the first worker that needs it (a second one racing it reads the winner's), and
read once per process. It never leaves the worker: not in the workflow's
history, not in a log. Every worker of one installation shares it, so one
worker's fingerprint is checked by another after a crash.
"""

from __future__ import annotations

import base64
import secrets
import threading

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from activities.cluster import Cluster, api_errors
from janus.contract.errors import JanusError

SECRET_NAME = "janus-fingerprint-key"
_DATA_KEY = "key"
_KEY_BYTES = 32


class FingerprintKey:
    """The key of one system namespace, fetched (or made) on first use."""

    def __init__(self, cluster: Cluster, namespace: str) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def get(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._read_or_create()
            return self._key

    def _read_or_create(self) -> bytes:
        core = self.cluster.core
        where = f"fingerprint key {self.namespace}/{SECRET_NAME}"
        with api_errors(where, rejected=JanusError, expected=(404, 409)):
            try:
                secret = core.read_namespaced_secret(SECRET_NAME, self.namespace)
            except ApiException as err:
                if err.status != 404:
                    raise
                secret = self._create(core)
        return base64.b64decode((secret.data or {})[_DATA_KEY])

    def _create(self, core: k8s.CoreV1Api) -> k8s.V1Secret:
        body = k8s.V1Secret(
            metadata=k8s.V1ObjectMeta(
                name=SECRET_NAME,
                namespace=self.namespace,
                labels={"app.kubernetes.io/managed-by": "janus"},
            ),
            type="Opaque",
            data={_DATA_KEY: base64.b64encode(secrets.token_bytes(_KEY_BYTES)).decode()},
        )
        try:
            created: k8s.V1Secret = core.create_namespaced_secret(self.namespace, body)
        except ApiException as err:
            if err.status != 409:  # another worker made it first: use theirs
                raise
            created = core.read_namespaced_secret(SECRET_NAME, self.namespace)
        return created

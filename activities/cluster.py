"""Access to the API server: clients per identity, discovery, and error translation.

Every read and write of a *target* goes through the client of the transaction's
identity: a service account of the Transaction's namespace, impersonated
(``spec.serviceAccountName``, or ``janus`` when a history recorded none). The
worker never touches a target with its own rights, so the API server's RBAC
decides what a transaction may touch. Janus's own objects (leases, snapshots,
the Transaction's status and events) are written as the worker.
"""

from __future__ import annotations

import json
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError
from kubernetes.dynamic.resource import Resource

from janus.clients.kubernetes import TimedApiClient
from janus.contract.errors import ChangeRejected, Forbidden, InvalidTransaction, JanusError
from janus.contract.models import DEFAULT_SERVICE_ACCOUNT
from janus.contract.operations import Identity


def api_message(err: ApiException) -> str:
    """The API server's own words from a failed request."""
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or err.reason or f"HTTP {err.status}")


def is_permanent(status: int | None) -> bool:
    """400/401/403/404/422 describe the request; 409, 429, 5xx and timeouts may pass."""
    return status in (400, 401, 403, 404, 405, 410, 413, 415, 422)


def translate(err: ApiException, context: str, *, rejected: type[JanusError]) -> Exception:
    """An ApiException as a user-facing error, or itself when a retry may help."""
    if err.status == 403:
        return Forbidden(f"{context}: forbidden: {api_message(err)}")
    if is_permanent(err.status):
        return rejected(f"{context}: {api_message(err)}")
    return err


@contextmanager
def api_errors(
    context: str,
    *,
    rejected: type[JanusError] = ChangeRejected,
    expected: tuple[int, ...] = (),
) -> Iterator[None]:
    """Turn permanent API errors into JanusErrors; let transient ones be retried.

    Statuses in ``expected`` stay ApiExceptions, for the caller to handle.
    """
    try:
        yield
    except ApiException as err:
        if err.status in expected:
            raise
        raise translate(err, context, rejected=rejected) from err


@dataclass(frozen=True)
class Impersonation:
    namespace: str
    service_account: str

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"


def impersonation(identity: Identity | None) -> Impersonation | None:
    """Whom to impersonate for ``identity``; None (the worker) only for discovery.

    A transaction without an account (recorded before accounts were defaulted)
    acts as the default account, never as the worker.
    """
    if identity is None:
        return None
    return Impersonation(identity.namespace, identity.service_account or DEFAULT_SERVICE_ACCOUNT)


class Cluster:
    """The worker's clients, built once per process and shared by all activities."""

    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api_client = api_client
        self._lock = threading.Lock()
        self._discovery_lock = threading.Lock()
        self._dynamic: dict[Impersonation | None, DynamicClient] = {}
        self._clients: dict[Impersonation, k8s.ApiClient] = {}
        # Removed when the Cluster is collected or the process exits.
        self._cache = tempfile.TemporaryDirectory(prefix="janus-discovery-")
        self._cache_dir = Path(self._cache.name)
        # Built here, not on first use: the client imports these modules lazily,
        # and CoreV1Api alone takes over a second, which would otherwise land on
        # the first transaction's activities (all of them, behind the import lock).
        self.core = k8s.CoreV1Api(api_client)
        self.coordination = k8s.CoordinationV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)
        k8s.AuthorizationV1Api(api_client)

    def dynamic(self, identity: Identity | None = None) -> DynamicClient:
        """A dynamic client acting as ``identity``'s service account (None: the worker,
        for discovery only)."""
        key = impersonation(identity)
        with self._lock:
            if key not in self._dynamic:
                self._dynamic[key] = self._new_dynamic(key)
            return self._dynamic[key]

    def client_for(self, identity: Identity | None) -> k8s.ApiClient:
        """A plain API client acting as ``identity``'s service account (None: the worker)."""
        who = impersonation(identity)
        if who is None:
            return self.api_client
        with self._lock:
            if who not in self._clients:
                api_client = TimedApiClient(self.api_client.configuration)
                # The API server adds the service-account groups itself when only
                # the user is impersonated.
                api_client.set_default_header("Impersonate-User", who.user)
                self._clients[who] = api_client
            return self._clients[who]

    def _new_dynamic(self, who: Impersonation | None) -> DynamicClient:
        api_client = self.api_client
        if who is not None:
            api_client = TimedApiClient(self.api_client.configuration)
            api_client.set_default_header("Impersonate-User", who.user)
        cache = self._cache_dir / f"{who.user if who else 'worker'}.json"
        try:
            return DynamicClient(api_client, cache_file=str(cache))
        except ApiException as err:
            whom = f"service account {who.namespace}/{who.service_account}" if who else "worker"
            raise translate(err, f"discovery as {whom}", rejected=InvalidTransaction) from None

    def resource(self, api_version: str, kind: str) -> Resource:
        """Discover a kind; refresh discovery once, since CRDs come and go.

        The dynamic client's discovery cache is not thread-safe: one activity
        refreshing it while another reads it fails the reader (a KeyError), or
        worse, reports a served kind as unknown. So lookups take turns.
        """
        dyn = self.dynamic()
        with self._discovery_lock:
            try:
                return dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                dyn.resources.invalidate_cache()
            try:
                return dyn.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                pass
        raise InvalidTransaction(
            f"kind {kind} in {api_version} is not served by the API server: check "
            "target.apiVersion and target.kind (kubectl api-resources lists what is served)"
        )

    def lease_api_version(self, resource: Resource) -> str:
        """The apiVersion that keys a kind's leases: its group's preferred version.

        Every served version of a kind names one object, so all take one lease; the
        preferred version (not the group alone) keeps the lease names of 0.1.0 for
        the usual spelling, so old and new workers exclude each other during an
        upgrade. A kind the preferred version does not serve keys on its own.
        """
        if not resource.group:
            return "v1"
        dyn = self.dynamic()
        with self._discovery_lock:
            found = dyn.resources.search(group=resource.group, kind=resource.kind)
        preferred = sorted(r.group_version for r in found if getattr(r, "preferred", False))
        return preferred[0] if preferred else str(resource.group_version)


def get_object(
    dyn: DynamicClient, resource: Resource, name: str, namespace: str | None, context: str
) -> dict[str, Any] | None:
    """The object as a plain dict, or None when it does not exist."""
    try:
        obj = dyn.get(resource, name=name, namespace=namespace)
    except ApiException as err:
        if err.status == 404:
            return None
        raise translate(err, context, rejected=InvalidTransaction) from err
    result: dict[str, Any] = obj.to_dict()
    return result

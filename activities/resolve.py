"""Resolve targets through discovery, and refuse a Transaction that cannot run.

Runs before any lease or write. Every problem names the change (by index and
target) and says how to fix it.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from activities import redact
from activities.access import AccessCheck
from activities.cluster import Cluster, translate
from activities.content import transaction_changes
from janus.errors import InvalidTransaction, about_change
from janus.models import MAX_CHANGES, Change, ChangeType, TransactionSpec, holds_secret
from janus.operations import Identity, ResolvedTarget, ResolveInput, ResolveResult, lease_name


def resolve_targets(
    cluster: Cluster,
    request: ResolveInput,
    lease_namespace: str,
    *,
    require_service_account: bool = False,
) -> ResolveResult:
    spec, home = request.spec, request.ref.namespace
    withheld = set(request.withheld)
    if withheld:
        spec = _with_withheld_content(cluster, request)
    _check_shape(spec)
    if require_service_account and not spec.service_account_name:
        raise InvalidTransaction(
            "spec.serviceAccountName is required: this worker changes targets only as a "
            f"service account of namespace {home} (impersonated), never with its own rights"
        )
    if spec.service_account_name:
        _check_service_account(cluster, home, spec.service_account_name)
    impersonating = bool(spec.service_account_name)
    targets = []
    for i, change in enumerate(spec.changes):
        with about_change(i):
            target = _resolve(cluster, i, change, home, lease_namespace, impersonating)
        if i in withheld:
            target.content, target.content_withheld = None, True
        targets.append(target)
    _check_unique(targets)
    identity = Identity(namespace=home, service_account=spec.service_account_name)
    AccessCheck(cluster, identity).require(targets)
    return ResolveResult(targets=targets)


def _with_withheld_content(cluster: Cluster, request: ResolveInput) -> TransactionSpec:
    """The spec with the withheld contents read back from the Transaction, for the
    checks only: the result carries none of them."""
    submitted = transaction_changes(cluster, request.ref)
    spec = request.spec.model_copy(deep=True)
    for i in request.withheld:
        content = submitted[i].get("content") if i < len(submitted) else None
        if holds_secret(spec.changes[i].target):
            redact.remember_content(content)
        spec.changes[i].content = content
    return spec


def _check_shape(spec: TransactionSpec) -> None:
    """The admission rules again: a Transaction may reach us from an older CRD."""
    if not 1 <= len(spec.changes) <= MAX_CHANGES:
        raise InvalidTransaction(f"spec.changes must list 1 to {MAX_CHANGES} changes")
    for i, change in enumerate(spec.changes):
        if change.type == ChangeType.DELETE and change.content is not None:
            raise InvalidTransaction(f"spec.changes[{i}]: content is forbidden for Delete")
        if change.type != ChangeType.DELETE and change.content is None:
            raise InvalidTransaction(
                f"spec.changes[{i}]: content is required for {change.type.value}"
            )


def _resolve(
    cluster: Cluster,
    index: int,
    change: Change,
    home: str,
    lease_namespace: str,
    impersonating: bool,
) -> ResolvedTarget:
    t = change.target
    where = f"spec.changes[{index}] ({t.key()})"
    try:
        resource = cluster.resource(t.api_version, t.kind)
    except InvalidTransaction as err:
        raise InvalidTransaction(f"{where}: {err.message}") from None
    namespace = (t.namespace or home) if resource.namespaced else None
    if not impersonating and namespace != home:
        scope = f"namespace {namespace}" if namespace else "a cluster-scoped object"
        raise InvalidTransaction(
            f"{where}: targets {scope}, outside the Transaction's namespace {home}; set "
            "spec.serviceAccountName to a service account whose RBAC allows it"
        )
    _check_content(where, change)
    return ResolvedTarget(
        index=index,
        change_type=ChangeType(change.type),
        api_version=t.api_version,
        kind=t.kind,
        resource=resource.name,
        name=t.name,
        namespace=namespace,
        lease_name=lease_name(t.api_version, t.kind, namespace, t.name),
        lease_namespace=lease_namespace,
        content=change.content,
    )


def _check_content(where: str, change: Change) -> None:
    content = change.content or {}
    meta = content.get("metadata") or {}
    t = change.target
    for field, expected in (("name", t.name), ("namespace", t.namespace)):
        given = meta.get(field)
        if given is not None and expected is not None and given != expected:
            raise InvalidTransaction(
                f"{where}: content.metadata.{field} is {given!r} but target.{field} is "
                f"{expected!r}; make them match or drop it from content"
            )
    for field, expected in (("apiVersion", t.api_version), ("kind", t.kind)):
        given = content.get(field)
        if given is not None and given != expected:
            raise InvalidTransaction(
                f"{where}: content.{field} is {given!r} but target.{field} is {expected!r}"
            )


def _check_unique(targets: list[ResolvedTarget]) -> None:
    seen: dict[tuple[str, str, str | None, str], int] = {}
    for t in targets:
        key = (t.api_version, t.kind, t.namespace, t.name)
        if key in seen:
            raise InvalidTransaction(
                index=t.index,
                message=f"spec.changes[{seen[key]}] and spec.changes[{t.index}] both target "
                f"{t.key()}: merge them into one change",
            )
        seen[key] = t.index


def _check_service_account(cluster: Cluster, namespace: str, name: str) -> None:
    try:
        cluster.core.read_namespaced_service_account(name, namespace)
    except ApiException as err:
        if err.status == 404:
            raise InvalidTransaction(
                f"spec.serviceAccountName: service account {name} not found in namespace "
                f"{namespace}; create it or fix the name"
            ) from None
        where = f"service account {namespace}/{name}"
        raise translate(err, where, rejected=InvalidTransaction) from err

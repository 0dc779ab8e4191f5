"""Resolve targets through discovery, and refuse a Transaction that cannot run.

Runs before any lease or write. Every problem names the change (by index and
target) and says how to fix it.

Every target leaves here *canonical*: its apiVersion as discovery serves it
(``v1``, ``apps/v1``), its kind as discovery names it, its namespace defaulted or
dropped by scope. Secret handling, lease names and the duplicate check read
only canonical targets, so no second spelling of one object gets a second lease
or escapes the Secret rules. The lease and the duplicate check key on (group,
kind, namespace, name): two served versions of one kind are one object.
"""

from __future__ import annotations

from kubernetes.client.exceptions import ApiException

from activities import redact
from activities.access import AccessCheck
from activities.cluster import Cluster, translate
from activities.content import transaction_changes
from activities.kinds import kind_of
from janus.contract.errors import InvalidTransaction, about_change
from janus.contract.models import (
    DEFAULT_SERVICE_ACCOUNT,
    MAX_CHANGES,
    Change,
    TransactionSpec,
    api_version_problem,
    group_of,
    holds_secret,
)
from janus.contract.operations import (
    Identity,
    ResolvedTarget,
    ResolveInput,
    ResolveResult,
    lease_name,
)


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
    account = spec.service_account_name or DEFAULT_SERVICE_ACCOUNT
    _check_service_account(cluster, home, account, named=bool(spec.service_account_name))
    targets = []
    for i, change in enumerate(spec.changes):
        with about_change(i):
            target = _resolve(cluster, i, change, home, lease_namespace)
        if holds_secret(target) and target.content is not None and i not in withheld:
            # Only a bridge older than the spelling rules gets here: refuse before
            # any read, and say nothing of the content.
            raise InvalidTransaction(
                f"spec.changes[{i}] ({target.key()}): a Secret's content reached the "
                "workflow; upgrade the bridge and create the Transaction again",
                index=i,
            )
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
        problem = api_version_problem(change.target.api_version)
        if problem:
            raise InvalidTransaction(f"spec.changes[{i}]: {problem}", index=i)
        kind_of(change.type).check_shape(i, change)


def _resolve(
    cluster: Cluster,
    index: int,
    change: Change,
    home: str,
    lease_namespace: str,
) -> ResolvedTarget:
    t = change.target
    where = f"spec.changes[{index}] ({t.key()})"
    try:
        resource = cluster.resource(t.api_version, t.kind)
        lease_version = cluster.lease_api_version(resource)
    except InvalidTransaction as err:
        raise InvalidTransaction(f"{where}: {err.message}") from None
    namespace = (t.namespace or home) if resource.namespaced else None
    _check_content(where, change, resource.group_version)
    return ResolvedTarget(
        index=index,
        change_type=change.type,
        api_version=resource.group_version,
        kind=resource.kind,
        resource=resource.name,
        name=t.name,
        namespace=namespace,
        lease_name=lease_name(lease_version, resource.kind, namespace, t.name),
        lease_namespace=lease_namespace,
        content=change.content,
    )


def _check_content(where: str, change: Change, api_version: str) -> None:
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
    for field, expected in (("apiVersion", api_version), ("kind", t.kind)):
        given = content.get(field)
        if given is not None and given != expected:
            raise InvalidTransaction(
                f"{where}: content.{field} is {given!r} but target.{field} is {expected!r}"
            )


def _check_unique(targets: list[ResolvedTarget]) -> None:
    """One change per object: canonical (group, kind, namespace, name), any version."""
    seen: dict[tuple[str, str, str | None, str], int] = {}
    for t in targets:
        key = (group_of(t.api_version), t.kind, t.namespace, t.name)
        if key in seen:
            raise InvalidTransaction(
                index=t.index,
                message=f"spec.changes[{seen[key]}] and spec.changes[{t.index}] both target "
                f"{t.key()}: merge them into one change",
            )
        seen[key] = t.index


def _check_service_account(cluster: Cluster, namespace: str, name: str, *, named: bool) -> None:
    try:
        cluster.core.read_namespaced_service_account(name, namespace)
    except ApiException as err:
        if err.status == 404:
            fix = (
                "create it or fix the name"
                if named
                else "a Transaction without spec.serviceAccountName acts as it: create it "
                "and grant it the rights your Transactions need, or name another account"
            )
            raise InvalidTransaction(
                f"spec.serviceAccountName: service account {name} not found in namespace "
                f"{namespace}; {fix}"
            ) from None
        where = f"service account {namespace}/{name}"
        raise translate(err, where, rejected=InvalidTransaction) from err

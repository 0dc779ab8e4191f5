"""Check, before the first write, that the transaction's identity may do every step.

The dry run of each change proves the *action* is allowed, but not its *undo*:
a service account that may patch a Deployment but not update it would commit
the patch and then be unable to restore the snapshot, leaving the Transaction
Failed and the cluster half-changed. So before any lease or write, we ask the
API server (a SelfSubjectAccessReview, sent as the identity itself) about every
verb a change may need: ``get`` to snapshot and check it, the action's verb,
and the verb of its undo. A refusal names the verb, the resource and whom.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from kubernetes import client as k8s

from activities.cluster import Cluster, api_errors
from activities.kinds import kind_of
from activities.parallel import side_by_side
from janus.contract.errors import Forbidden, InvalidTransaction
from janus.contract.models import DEFAULT_SERVICE_ACCOUNT, group_of
from janus.contract.operations import Identity, ResolvedTarget


@dataclass(frozen=True)
class _Ask:
    group: str
    resource: str
    namespace: str | None
    verb: str
    name: str | None


def needed(target: ResolvedTarget) -> list[tuple[str, str]]:
    """(verb, why) pairs a change needs, in the order a user would think of them."""
    action, undo = kind_of(target.change_type).verbs
    kind = target.change_type.value
    wanted = [
        ("get", "read it for the snapshot and the checks"),
        (action, f"apply the {kind}"),
        (undo, f"undo the {kind} should the transaction roll back"),
    ]
    distinct: list[tuple[str, str]] = []
    for verb, why in wanted:
        if all(verb != v for v, _ in distinct):
            distinct.append((verb, why))
    return distinct


def whom(identity: Identity) -> str:
    account = identity.service_account or DEFAULT_SERVICE_ACCOUNT
    return f"service account {identity.namespace}/{account}"


class AccessCheck:
    """SelfSubjectAccessReviews as one identity, asked namespace-wide first."""

    def __init__(self, cluster: Cluster, identity: Identity) -> None:
        self.identity = identity
        self.api = k8s.AuthorizationV1Api(cluster.client_for(identity))
        self._answers: dict[_Ask, bool] = {}

    def require(self, targets: Iterable[ResolvedTarget]) -> None:
        """Raise ``Forbidden`` naming the first step a target's change may not take."""
        targets = list(targets)
        self._ask_all(
            _Ask(_group(t), t.resource, t.namespace, verb, None)
            for t in targets
            for verb, _why in needed(t)
        )
        for target in targets:
            group = _group(target)
            for verb, why in needed(target):
                if not self._allowed(group, target.resource, target.namespace, verb, target.name):
                    raise Forbidden(
                        f"spec.changes[{target.index}] ({target.key()}): {whom(self.identity)} "
                        f"may not {verb} {_resource(group, target.resource)} "
                        f"{_where(target)} (needed to {why}); grant it with RBAC, or use a "
                        "service account that has it",
                        index=target.index,
                    )

    def _allowed(
        self, group: str, resource: str, namespace: str | None, verb: str, name: str
    ) -> bool:
        # RBAC may grant by resourceNames; ask about the name only when the
        # namespace-wide question is refused (create never carries a name).
        if self._ask(_Ask(group, resource, namespace, verb, None)):
            return True
        return verb != "create" and self._ask(_Ask(group, resource, namespace, verb, name))

    def _ask_all(self, asks: Iterable[_Ask]) -> None:
        """Ask the namespace-wide questions at once: a handful of round trips, not one
        after another."""
        side_by_side(self._ask, [a for a in dict.fromkeys(asks) if a not in self._answers])

    def _ask(self, ask: _Ask) -> bool:
        if ask not in self._answers:
            review = k8s.V1SelfSubjectAccessReview(
                spec=k8s.V1SelfSubjectAccessReviewSpec(
                    resource_attributes=k8s.V1ResourceAttributes(
                        group=ask.group,
                        resource=ask.resource,
                        namespace=ask.namespace,
                        verb=ask.verb,
                        name=ask.name,
                    )
                )
            )
            with api_errors(f"access review as {whom(self.identity)}", rejected=InvalidTransaction):
                answer = self.api.create_self_subject_access_review(review)
            self._answers[ask] = bool(answer.status and answer.status.allowed)
        return self._answers[ask]


def _group(target: ResolvedTarget) -> str:
    return group_of(target.api_version)


def _resource(group: str, resource: str) -> str:
    return f"{resource}.{group}" if group else resource


def _where(target: ResolvedTarget) -> str:
    if target.namespace:
        return f"{target.name!r} in namespace {target.namespace}"
    return f"{target.name!r} (cluster-scoped)"

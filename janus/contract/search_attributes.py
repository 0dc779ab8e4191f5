"""Temporal search attributes Janus sets on every transaction workflow.

They let an operator find a transaction in the Temporal UI or with
``temporal workflow list --query 'TransactionPhase="RolledBack"'``. The dev server
and the test environments register them at start (see ``ALL``).
"""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

TRANSACTION_NAMESPACE = SearchAttributeKey.for_keyword("TransactionNamespace")
TRANSACTION_NAME = SearchAttributeKey.for_keyword("TransactionName")
TRANSACTION_PHASE = SearchAttributeKey.for_keyword("TransactionPhase")

ALL: tuple[SearchAttributeKey[str], ...] = (
    TRANSACTION_NAMESPACE,
    TRANSACTION_NAME,
    TRANSACTION_PHASE,
)


def at_start(namespace: str, name: str) -> TypedSearchAttributes:
    """The attributes a transaction's workflow starts with: which Transaction it runs
    (its phase follows, upserted by the workflow as it runs)."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(TRANSACTION_NAMESPACE, namespace),
            SearchAttributePair(TRANSACTION_NAME, name),
        ]
    )

"""The status the workflow keeps and what of it the Transaction shows (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from janus.contract.models import TransactionInput, TransactionRef, TransactionSpec
from workflows.policies import lease_duration, progress_every
from workflows.status import ITEMS_SHOWN_UP_TO, StatusBook

NOW = datetime(2026, 11, 26, tzinfo=UTC)


def book_of(changes: int) -> StatusBook:
    spec = TransactionSpec.model_validate(
        {
            "changes": [
                {
                    "target": {"apiVersion": "v1", "kind": "ConfigMap", "name": f"c{i}"},
                    "type": "Patch",
                    "content": {"data": {"k": "v"}},
                }
                for i in range(changes)
            ]
        }
    )
    txn = TransactionInput(ref=TransactionRef(namespace="ns", name="t", uid="u"), spec=spec)
    return StatusBook(txn, workflow_id="txn/ns/t/u", now=NOW)


def test_a_transaction_up_to_the_limit_shows_every_item() -> None:
    book = book_of(ITEMS_SHOWN_UP_TO)
    book.committed(3)
    shown = book.visible()
    assert len(shown.items) == ITEMS_SHOWN_UP_TO and shown.items_omitted == 0
    assert shown.items[3].committed and shown.summary.committed == 1


def test_a_larger_one_shows_counts_and_only_the_items_with_an_error() -> None:
    book = book_of(ITEMS_SHOWN_UP_TO + 1)
    for i in range(10):
        book.prepared(i, "1")
        book.committed(i)
    book.failed(10, "spec.replicas: Invalid value")

    shown = book.visible()
    assert [i.index for i in shown.items] == [10]
    assert shown.items_omitted == ITEMS_SHOWN_UP_TO
    assert (shown.summary.prepared, shown.summary.committed) == (10, 10)
    # The workflow's own view (its status query) keeps every item.
    assert len(book.status.items) == ITEMS_SHOWN_UP_TO + 1


def test_counts_do_not_count_a_step_twice() -> None:
    book = book_of(3)
    for _ in range(2):
        book.prepared(0, "7")
        book.committed(0)
        book.rolled_back(0)
    summary = book.status.summary
    assert (summary.prepared, summary.committed, summary.rolled_back) == (1, 1, 1)


def test_large_transactions_show_progress_and_renew_leases_less_often() -> None:
    assert progress_every(10) == progress_every(1000) == timedelta(seconds=2)
    assert progress_every(5000) == timedelta(seconds=10)
    assert lease_duration(10) == lease_duration(1000) == timedelta(seconds=60)
    assert lease_duration(5000) == timedelta(seconds=300)

"""Metrics from status changes: pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from bridge.observe import Observer, item_operations, lock_operations, phase_path
from janus.contract.models import ChangeType, ItemStatus, Phase, TransactionStatus

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def item(index: int, **flags: object) -> ItemStatus:
    return ItemStatus(
        index=index, target=f"v1 ConfigMap ns/cm-{index}", type=ChangeType.PATCH, **flags
    )


def status(
    phase: Phase, *items: ItemStatus, message: str = "", **times: datetime
) -> TransactionStatus:
    return TransactionStatus(phase=phase, items=list(items), message=message, **times)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (None, Phase.PENDING, [("", "Pending")]),
        (Phase.PENDING, Phase.PENDING, []),
        (
            Phase.PREPARING,
            Phase.COMMITTING,
            [("Preparing", "Prepared"), ("Prepared", "Committing")],
        ),
        (None, Phase.PREPARING, [("", "Pending"), ("Pending", "Preparing")]),
        (Phase.COMMITTING, Phase.ROLLING_BACK, [("Committing", "RollingBack")]),
        (
            Phase.COMMITTING,
            Phase.ROLLED_BACK,
            [("Committing", "RollingBack"), ("RollingBack", "RolledBack")],
        ),
        (Phase.ROLLING_BACK, Phase.FAILED, [("RollingBack", "Failed")]),
        (Phase.PENDING, Phase.FAILED, [("Pending", "Failed")]),
    ],
)
def test_phase_path_fills_in_what_a_watch_skipped(
    old: Phase | None, new: Phase, expected: list[tuple[str, str]]
) -> None:
    assert phase_path(old, new) == expected


def test_item_operations_count_each_flag_once_and_blame_the_step() -> None:
    before = [item(0), item(1, prepared=True, committed=True)]
    after = [
        item(0, prepared=True, error="dry run rejected"),
        item(1, prepared=True, committed=True, rolled_back=True),
        item(2, prepared=True, committed=True, error="undo failed"),
    ]

    assert sorted(item_operations(before, after)) == sorted(
        [
            ("prepare", "succeeded"),
            ("commit", "failed"),
            ("undo", "succeeded"),
            ("prepare", "succeeded"),
            ("commit", "succeeded"),
            ("undo", "failed"),
        ]
    )
    assert item_operations(after, after) == []


def test_lock_operations_from_leases_waits_timeouts_and_the_end() -> None:
    waiting = status(
        Phase.PREPARING,
        item(0, lease="janus-a"),
        item(1),
        message="Waiting: lease janus-system/janus-b is held by transaction x/y/z",
    )
    gave_up = status(
        Phase.ROLLED_BACK,
        item(0, lease="janus-a"),
        item(1),
        message="Rolled back 0 changes: ...; gave up after lockTimeout 5s",
    )

    assert lock_operations(None, waiting) == [("acquire", "acquired"), ("acquire", "contended")]
    assert lock_operations(waiting, waiting) == []
    assert lock_operations(waiting, gave_up) == [("acquire", "timeout"), ("release", "released")]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_observer_counts_changes_but_not_history_it_did_not_see() -> None:
    observer = Observer()
    before = value(
        "janus_transaction_phase_transitions_total", **{"from": "Committing", "to": "Committed"}
    )
    done = status(
        Phase.COMMITTED,
        item(0, prepared=True, committed=True, lease="janus-a"),
        started_at=T0,
        completed_at=T0 + timedelta(seconds=3),
    )
    observer.observe("old", done)  # ran before this process: recorded, not counted
    observer.observe("new", None)
    observer.observe("new", status(Phase.COMMITTING, item(0, prepared=True, lease="janus-a")))
    assert value("janus_transactions_active") == 1
    observer.observe("new", done)

    counted = value(
        "janus_transaction_phase_transitions_total", **{"from": "Committing", "to": "Committed"}
    )
    assert counted - before == 1
    assert value("janus_transactions", phase="Committed") == 2
    assert value("janus_transactions_active") == 0
    observer.forget("old")
    assert value("janus_transactions", phase="Committed") == 1

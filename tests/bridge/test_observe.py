"""What the bridge counts from the status changes it sees: pure functions, no server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from bridge.observe import Observer, is_waiting, phase_path
from janus.contract.models import ChangeType, ItemStatus, LeaseWait, Phase, TransactionStatus

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


def test_waiting_is_read_from_the_status_field_not_the_message() -> None:
    wait = LeaseWait(lease="janus-system/janus-b", target="v1 ConfigMap ns/b", holder="x/y/z",
                     since=T0)  # fmt: skip
    waiting = status(Phase.PREPARING, item(0), message="anything at all")
    waiting.waiting = wait
    gave_up = status(Phase.PREPARING, item(0), message="Waiting: lease ... is held by ...")
    gave_up.waiting = wait.model_copy(update={"gave_up": True})

    assert is_waiting(waiting)
    assert not is_waiting(gave_up)
    assert not is_waiting(status(Phase.PREPARING, item(0), message="Waiting: lease ... held"))
    assert not is_waiting(None)


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
    committing = status(Phase.COMMITTING, item(0, prepared=True, lease="janus-a"))
    committing.waiting = LeaseWait(lease="a/b", target="t", holder="x/y/z", since=T0)
    observer.observe("new", committing)
    assert value("janus_transactions_active") == 1
    assert value("janus_transactions_waiting") == 1
    observer.observe("new", done)

    counted = value(
        "janus_transaction_phase_transitions_total", **{"from": "Committing", "to": "Committed"}
    )
    assert counted - before == 1
    assert value("janus_transactions", phase="Committed") == 2
    assert value("janus_transactions_active") == 0
    assert value("janus_transactions_waiting") == 0
    observer.forget("old")
    assert value("janus_transactions", phase="Committed") == 1

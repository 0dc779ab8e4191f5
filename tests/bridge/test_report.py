"""``janus status`` wording, from a status alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from janus.cli.report import render
from janus.contract.models import (
    ChangeType,
    ItemStatus,
    LeaseWait,
    Phase,
    Summary,
    TransactionStatus,
)

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_a_rolled_back_transaction_reads_top_to_bottom() -> None:
    status = TransactionStatus(
        phase=Phase.ROLLED_BACK,
        message="Rolled back 1 changes: change 1 failed",
        summary=Summary(total=2, prepared=2, committed=1, rolled_back=1),
        items=[
            ItemStatus(
                index=0,
                target="v1 ConfigMap shop/app",
                type=ChangeType.PATCH,
                prepared=True,
                committed=True,
                rolled_back=True,
            ),
            ItemStatus(
                index=1,
                target="apps/v1 Deployment shop/web",
                type=ChangeType.PATCH,
                prepared=True,
                error="replicas must be >= 0",
            ),
        ],
        started_at=T0,
        completed_at=T0 + timedelta(seconds=2.5),
        workflow_id="txn/shop/t/uid",
        temporal_ui="http://ui/namespaces/default/workflows/txn%2Fshop%2Ft%2Fuid",
    )

    assert render("shop", "t", status).splitlines() == [
        "Transaction shop/t: RolledBack (no change stayed applied)",
        "  Rolled back 1 changes: change 1 failed",
        "  started 2026-01-01 12:00:00 UTC, finished 2026-01-01 12:00:02 UTC (2.5s)",
        "",
        "Changes (2 total, 2 prepared, 1 committed, 1 rolled back):",
        "  [↺] 0: Patch v1 ConfigMap shop/app — committed, then rolled back",
        "  [!] 1: Patch apps/v1 Deployment shop/web — failed",
        "        error: replicas must be >= 0",
        "",
        "Workflow: txn/shop/t/uid",
        "Temporal UI: http://ui/namespaces/default/workflows/txn%2Fshop%2Ft%2Fuid",
    ]


def test_no_status_points_at_the_bridge() -> None:
    assert "is the bridge running and watching shop?" in render("shop", "t", None)


def test_a_large_transaction_says_which_items_are_not_listed_and_where_they_are() -> None:
    status = TransactionStatus(
        phase=Phase.COMMITTED,
        message="All 5000 changes committed",
        summary=Summary(total=5000, prepared=5000, committed=5000),
        items_omitted=5000,
        workflow_id="txn/shop/big/uid",
    )

    told = render("shop", "big", status)

    assert "Changes (5000 total, 5000 prepared, 5000 committed, 0 rolled back):" in told
    assert (
        "  … and 5000 more without an error, not listed in the status of a transaction "
        "this large; every one: temporal workflow query --type status --workflow-id "
        "txn/shop/big/uid"
    ) in told


def test_a_wait_for_a_lease_is_told_from_the_status_field() -> None:
    wait = LeaseWait(
        lease="janus-system/janus-configmap-app-1a2b",
        target="v1 ConfigMap shop/app",
        holder="shop/other/uid-2",
        since=T0,
    )
    status = TransactionStatus(phase=Phase.PREPARING, message="Waiting: ...", waiting=wait)

    assert (
        "  waiting to prepare for lease janus-system/janus-configmap-app-1a2b for "
        "v1 ConfigMap shop/app, held by transaction shop/other/uid-2, since 2026-01-01 12:00:00 UTC"
    ) in render("shop", "t", status).splitlines()

    status.waiting = wait.model_copy(update={"gave_up": True, "undo": True})
    assert "  gave up after lockTimeout waiting to roll back for lease" in render(
        "shop", "t", status
    )

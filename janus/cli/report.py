"""``janus status``: what happened to a Transaction, in words.

``kubectl get txn`` shows a phase and counts; the full status is a long YAML.
This renders the same status as a short account a person reads top to bottom:
where it stands and why, then each change's fate, then where to look next.
"""

from __future__ import annotations

from datetime import datetime

from janus.contract.models import ItemStatus, Phase, TransactionStatus

_PHASE_STORY = {
    Phase.PENDING: "waiting for its workflow to start",
    Phase.PREPARING: "taking leases and snapshotting its targets",
    Phase.PREPARED: "holds every lease and a snapshot of every target",
    Phase.COMMITTING: "applying its changes",
    Phase.COMMITTED: "every change is applied",
    Phase.ROLLING_BACK: "undoing its changes",
    Phase.ROLLED_BACK: "no change stayed applied",
    Phase.FAILED: "a rollback could not complete: check the items with errors",
}


def render(namespace: str, name: str, status: TransactionStatus | None) -> str:
    """The account of one Transaction; ``status`` None means nothing has run yet."""
    title = f"Transaction {namespace}/{name}"
    if status is None:
        return f"{title}: no status yet (is the bridge running and watching {namespace}?)\n"
    lines = [
        f"{title}: {status.phase.value} ({_PHASE_STORY[status.phase]})",
        f"  {status.message}" if status.message else None,
        _waiting(status),
        _timing(status),
        "",
        f"Changes ({_counts(status)}):",
        *(f"  {line}" for item in status.items for line in _item(item, status.phase)),
        _omitted(status),
        "",
        *_links(status),
    ]
    return "\n".join(line for line in lines if line is not None) + "\n"


def _waiting(status: TransactionStatus) -> str | None:
    """The lease it waits for (or gave up on), from ``status.waiting``."""
    wait = status.waiting
    if wait is None:
        return None
    why = "to roll back" if wait.undo else "to prepare"
    held = f"lease {wait.lease} for {wait.target}, held by transaction {wait.holder}"
    if wait.gave_up:
        return f"  gave up after lockTimeout waiting {why} for {held} (since {_clock(wait.since)})"
    return f"  waiting {why} for {held}, since {_clock(wait.since)}"


def _omitted(status: TransactionStatus) -> str | None:
    if not status.items_omitted:
        return None
    query = f"temporal workflow query --type status --workflow-id {status.workflow_id}"
    return (
        f"  … and {status.items_omitted} more without an error, not listed in the status "
        f"of a transaction this large; every one: {query}"
    )


def _timing(status: TransactionStatus) -> str | None:
    if status.started_at is None:
        return None
    started = _clock(status.started_at)
    if status.completed_at is None:
        return f"  started {started}"
    seconds = (status.completed_at - status.started_at).total_seconds()
    return f"  started {started}, finished {_clock(status.completed_at)} ({seconds:.1f}s)"


def _clock(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _counts(status: TransactionStatus) -> str:
    s = status.summary
    return (
        f"{s.total} total, {s.prepared} prepared, {s.committed} committed, "
        f"{s.rolled_back} rolled back"
    )


def _item(item: ItemStatus, phase: Phase) -> list[str]:
    fate = _fate(item, ended=phase.terminal)
    lines = [f"[{_mark(item)}] {item.index}: {item.type.value} {item.target} — {fate}"]
    if item.error:
        lines.append(f"      error: {item.error}")
    return lines


def _mark(item: ItemStatus) -> str:
    if item.error:
        return "!"
    if item.rolled_back:
        return "↺"
    return "✓" if item.committed else " "


def _fate(item: ItemStatus, *, ended: bool) -> str:
    if item.rolled_back:
        return "committed, then rolled back"
    if item.committed:
        return "committed"
    if item.error:
        return "failed"
    if ended:
        return "not applied"
    if item.prepared:
        return "prepared (leased and snapshotted)"
    return "leased" if item.lease else "waiting"


def _links(status: TransactionStatus) -> list[str]:
    lines = []
    if status.workflow_id:
        lines.append(f"Workflow: {status.workflow_id}")
    if status.temporal_ui:
        lines.append(f"Temporal UI: {status.temporal_ui}")
    return lines

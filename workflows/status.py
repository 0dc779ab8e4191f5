"""The Transaction's status as the workflow keeps it: pure, deterministic bookkeeping.

The workflow owns one ``StatusBook`` and mirrors ``book.status`` to the custom
resource after every step. Nothing here does I/O or reads a clock; times come in
as arguments (from ``workflow.now()``).
"""

from __future__ import annotations

from datetime import datetime

from janus.contract.models import (
    ChangeType,
    Condition,
    ItemStatus,
    LeaseWait,
    Phase,
    Summary,
    TransactionInput,
    TransactionStatus,
)

#: Transactions up to this many changes show every item in their status.
ITEMS_SHOWN_UP_TO = 1000

#: Beyond ITEMS_SHOWN_UP_TO, at most this many items with an error are listed
#: (the first ones); ``itemsOmitted`` counts the rest. Thousands of failed undos
#: must still fit in one object: the API server refuses a status write that
#: would make the object larger than its limit (about 1.5 MiB), and the
#: Transaction would stay RollingBack.
ERRORS_LISTED_UP_TO = 200

#: The longest error shown on one item, and the longest message; longer ones are
#: cut, saying so (the workflow's ``status`` query has them whole).
ITEM_ERROR_MAX = 512
MESSAGE_MAX = 2048


def clipped(text: str, limit: int) -> str:
    """``text``, cut to ``limit`` characters with a note when longer."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text) - limit} more characters; the workflow's status query has all)"
    return text[: max(0, limit - len(note))] + note


def rollback_incomplete(blocked: list[str]) -> str:
    """The Failed message: how many undos failed, and the first few, within MESSAGE_MAX."""
    head = f"Rollback incomplete: {len(blocked)} undo(s) did not complete: "
    shown: list[str] = []
    room = MESSAGE_MAX - len(head) - 80
    for text in blocked:
        text = clipped(text, ITEM_ERROR_MAX)
        if shown and sum(len(t) + 2 for t in shown) + len(text) > room:
            break
        shown.append(text)
    rest = len(blocked) - len(shown)
    tail = f"; and {rest} more (see status.items)" if rest else ""
    return head + "; ".join(shown) + tail


class StatusBook:
    """Builds and updates a ``TransactionStatus``; every method is a small, named fact."""

    def __init__(self, txn: TransactionInput, *, workflow_id: str, now: datetime) -> None:
        items = [
            ItemStatus(
                index=i,
                target=change.target.key(),
                type=ChangeType(change.type),
            )
            for i, change in enumerate(txn.spec.changes)
        ]
        self.status = TransactionStatus(
            phase=Phase.PENDING,
            items=items,
            summary=Summary(total=len(items)),
            started_at=now,
            workflow_id=workflow_id,
            temporal_ui=txn.temporal_ui,
            observed_generation=txn.generation,
        )

    def item(self, index: int) -> ItemStatus:
        return self.status.items[index]

    def enter(self, phase: Phase, message: str, *, now: datetime) -> None:
        self.status.phase = phase
        self.status.message = message
        if phase.terminal:
            self.status.completed_at = now

    def note(self, message: str) -> None:
        self.status.message = message

    def wait_for(self, wait: LeaseWait) -> None:
        """Waiting for a lease (or, ``gave_up``, no longer). ``since`` stays while the
        same transaction keeps the same lease: it says how long this wait has lasted."""
        was = self.status.waiting
        if was is not None and (was.lease, was.holder, was.undo) == (
            wait.lease,
            wait.holder,
            wait.undo,
        ):
            wait = wait.model_copy(update={"since": was.since})
        self.status.waiting = wait

    def done_waiting(self) -> None:
        """The lease waited for was taken: no longer waiting (a give-up stays shown)."""
        if self.status.waiting is not None and not self.status.waiting.gave_up:
            self.status.waiting = None

    def set_target(self, index: int, key: str) -> None:
        """Discovery may fill in a namespace; show the target as resolved."""
        self.item(index).target = key

    def leased(self, index: int, lease: str) -> None:
        self.item(index).lease = lease

    def prepared(self, index: int, resource_version: str) -> None:
        item = self.item(index)
        item.resource_version = resource_version
        if not item.prepared:
            item.prepared = True
            self.status.summary.prepared += 1

    def committed(self, index: int) -> None:
        item = self.item(index)
        if not item.committed:
            item.committed = True
            self.status.summary.committed += 1

    def rolled_back(self, index: int) -> None:
        item = self.item(index)
        if not item.rolled_back:
            item.rolled_back = True
            self.status.summary.rolled_back += 1

    def failed(self, index: int, error: str) -> None:
        self.item(index).error = error

    def condition(
        self, type_: str, status: bool, reason: str, message: str, *, now: datetime
    ) -> None:
        """Set a condition; its transition time moves only when its status flips."""
        value = "True" if status else "False"
        for existing in self.status.conditions:
            if existing.type == type_:
                if existing.status != value:
                    existing.last_transition_time = now
                existing.status, existing.reason, existing.message = value, reason, message
                return
        self.status.conditions.append(
            Condition(
                type=type_, status=value, reason=reason, message=message, last_transition_time=now
            )
        )

    def next_sequence(self, now: datetime) -> None:
        """Before a status write: a sequence above every earlier one, also across a
        reset (which replays the earlier writes, then writes later in time)."""
        self.status.sequence = max(self.status.sequence + 1, int(now.timestamp() * 1000))

    def visible(self, *, compact: bool = False) -> TransactionStatus:
        """The status as the custom resource shows it.

        Up to ITEMS_SHOWN_UP_TO changes, one item each; beyond, only the items that
        carry an error, so a Transaction of thousands of changes still fits in one
        object (the workflow's ``status`` query has them all). ``compact``: also at
        most ERRORS_LISTED_UP_TO of those, and no error or message longer than its
        limit, so thousands of failed undos fit too."""
        total = len(self.status.items)
        if not compact:
            if total <= ITEMS_SHOWN_UP_TO:
                return self.status
            shown = [i for i in self.status.items if i.error]
            return self.status.model_copy(
                update={"items": shown, "items_omitted": total - len(shown)}
            )
        items = self.status.items
        if total > ITEMS_SHOWN_UP_TO:
            items = [i for i in items if i.error][:ERRORS_LISTED_UP_TO]
        items = [
            i.model_copy(update={"error": clipped(i.error, ITEM_ERROR_MAX)})
            if i.error and len(i.error) > ITEM_ERROR_MAX
            else i
            for i in items
        ]
        conditions = [
            c.model_copy(update={"message": clipped(c.message, MESSAGE_MAX)})
            for c in self.status.conditions
        ]
        return self.status.model_copy(
            update={
                "items": items,
                "items_omitted": total - len(items),
                "message": clipped(self.status.message, MESSAGE_MAX),
                "conditions": conditions,
            }
        )

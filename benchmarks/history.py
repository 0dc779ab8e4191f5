"""Read a transaction's workflow history: where the time went, lease waits, sizes.

Temporal stamps every event, so the history says, for each activity, how long
it waited for a worker (scheduled → started: Temporal's scheduling) and how
long it ran (started → completed: the work), and how long each workflow task
took. ``breakdown`` attributes every instant of the workflow's life to exactly
one bucket, so the buckets add up to the wall time even when activities overlap
(snapshot batches run concurrently): an instant where some activity runs counts
as that activity's work; otherwise one where an activity waits for a worker
counts as activity scheduling; otherwise a workflow task being handed to the
worker (dispatch) or run by it; otherwise a lease-wait timer.

Local activities run inside a workflow task and leave only a marker with their
completion time (the worker's clock, on the same machine here). Each is taken to
have run from the previous one's completion (or the task's start) to its own, so
a task's time is split between its local activities and the workflow code.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.common.v1 import Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from janus.contract import operations as ops

#: Activity type → what it is for.
CATEGORY = {
    ops.RESOLVE_TARGETS: "resolve (discovery)",
    ops.ACQUIRE_LEASES: "leases",
    ops.RELEASE_LEASES: "leases",
    ops.SNAPSHOT_TARGETS: "snapshots + dry-run",
    ops.APPLY_CHANGES: "mutations",
    ops.UNDO_CHANGES: "mutations",
    ops.MIRROR_STATUS: "status writes",
}
ACTIVITY_QUEUE = "Temporal: activity scheduling"
WORKFLOW_DISPATCH = "Temporal: workflow task dispatch"
WORKFLOW_TASKS = "workflow tasks (worker: workflow code, SDK, completion RPC)"
LEASE_WAIT = "lease waits (timers)"
OTHER = "other"
#: Order of the buckets in tables and plots.
_PLATFORM = (ACTIVITY_QUEUE, WORKFLOW_DISPATCH, WORKFLOW_TASKS, LEASE_WAIT)
BUCKETS = (*dict.fromkeys(CATEGORY.values()), *_PLATFORM, OTHER)
#: When buckets overlap, the one that ranks highest wins; any activity's work ranks above all.
_RANK = {
    b: i for i, b in enumerate((LEASE_WAIT, WORKFLOW_DISPATCH, WORKFLOW_TASKS, ACTIVITY_QUEUE))
}

_E = EventType
_ACTIVITY_CLOSED = {
    _E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "completed",
    _E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "failed",
    _E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "timed out",
    _E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "canceled",
}
_WORKFLOW_TASK_CLOSED = {
    _E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    _E.EVENT_TYPE_WORKFLOW_TASK_FAILED,
    _E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT,
}
_WORKFLOW_CLOSED = {
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    _E.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class ActivitySpan:
    type: str
    scheduled: float
    started: float | None = None
    closed: float | None = None
    outcome: str | None = None
    result: Payloads | None = None


@dataclass
class History:
    workflow_id: str
    start: float
    largest_event_bytes: int
    close: float | None = None
    close_type: str | None = None
    """How the workflow closed: completed, failed, terminated, ..."""
    activities: list[ActivitySpan] = field(default_factory=list)
    workflow_tasks: list[tuple[float, float, float]] = field(default_factory=list)
    """(scheduled, started, completed) of every workflow task."""
    timers: list[tuple[float, float]] = field(default_factory=list)


def parse(workflow_id: str, events: list[HistoryEvent]) -> History:
    history = History(workflow_id, _at(events[0]), max(e.ByteSize() for e in events))
    spans: dict[int, ActivitySpan] = {}
    task: list[float] = []  # the open workflow task: [scheduled, started]
    timers: dict[int, float] = {}
    for event in events:
        at, kind = _at(event), event.event_type
        attrs: Any = getattr(event, event.WhichOneof("attributes") or "", None)
        if kind == _E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            spans[event.event_id] = ActivitySpan(attrs.activity_type.name, at)
        elif kind == _E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            spans[attrs.scheduled_event_id].started = at
        elif kind in _ACTIVITY_CLOSED:
            span = spans[attrs.scheduled_event_id]
            span.closed, span.outcome = at, _ACTIVITY_CLOSED[kind]
            span.result = attrs.result if span.outcome == "completed" else None
        elif kind == _E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            task = [at, at]
        elif kind == _E.EVENT_TYPE_WORKFLOW_TASK_STARTED and task:
            task[1] = at
        elif kind in _WORKFLOW_TASK_CLOSED and task:
            history.workflow_tasks.append((task[0], task[1], at))
            task = []
        elif kind == _E.EVENT_TYPE_MARKER_RECORDED:
            _local_activity(attrs, history)
        elif kind == _E.EVENT_TYPE_TIMER_STARTED:
            timers[event.event_id] = at
        elif kind == _E.EVENT_TYPE_TIMER_FIRED:
            history.timers.append((timers.pop(attrs.started_event_id, at), at))
        elif kind in _WORKFLOW_CLOSED:
            history.close = at
            history.close_type = _E.Name(kind).split("EXECUTION_")[1].lower().replace("_", " ")
    history.activities = sorted([*history.activities, *spans.values()], key=lambda s: s.scheduled)
    return history


def _at(event: HistoryEvent) -> float:
    return event.event_time.seconds + event.event_time.nanos / 1e9


def _local_activity(attrs: Any, history: History) -> None:
    """A local activity's span, from its marker and the workflow task that ran it."""
    if attrs.marker_name != LOCAL_ACTIVITY_MARKER or not history.workflow_tasks:
        return
    data = json.loads(attrs.details["data"].payloads[0].data)
    done = data.get("complete_time") or {}
    closed = done.get("seconds", 0) + done.get("nanos", 0) / 1e9
    task_started = history.workflow_tasks[-1][1]
    earlier = [
        a.closed
        for a in history.activities
        if a.closed is not None and task_started <= a.closed <= closed
    ]
    # A long local activity outlives the task that started it (the worker renews
    # the task): then its start is unknown and only its end is counted here.
    began = min(max([task_started, *earlier]), closed)
    # Indexing a protobuf map inserts the key, hence the test first.
    result = attrs.details["result"] if "result" in attrs.details else None  # noqa: SIM401
    outcome = "completed" if result is not None else "failed"
    span = ActivitySpan(data.get("activity_type", "?"), began, began, closed, outcome, result)
    history.activities.append(span)


async def load(client: Client, workflow_id: str) -> History:
    fetched = await client.get_workflow_handle(workflow_id).fetch_history()
    return parse(workflow_id, list(fetched.events))


def breakdown(history: History) -> dict[str, float]:
    """Seconds per bucket over [start, close]; the buckets sum to the wall time."""
    end = history.close if history.close is not None else history.start
    edges: list[tuple[float, int, str]] = []  # (time, +1/-1, bucket)

    def add(begin: float | None, finish: float | None, bucket: str) -> None:
        if begin is not None and finish is not None and finish > begin:
            edges.extend([(begin, 1, bucket), (finish, -1, bucket)])

    for span in history.activities:
        add(span.scheduled, span.started, ACTIVITY_QUEUE)
        add(span.started, span.closed, CATEGORY.get(span.type, OTHER))
    for scheduled, started, finish in history.workflow_tasks:
        add(scheduled, started, WORKFLOW_DISPATCH)
        add(started, finish, WORKFLOW_TASKS)
    for begin, finish in history.timers:
        add(begin, finish, LEASE_WAIT)
    active: Counter[str] = Counter()
    totals = dict.fromkeys(BUCKETS, 0.0)
    cursor = history.start
    for at, delta, bucket in sorted(edges, key=lambda e: (e[0], e[1])):
        at = min(max(at, history.start), end)
        if at > cursor:
            live = [b for b, n in active.items() if n > 0]
            winner = max(live, key=lambda b: _RANK.get(b, len(_RANK))) if live else OTHER
            totals[winner] += at - cursor
            cursor = at
        active[bucket] += delta
    totals[OTHER] += max(end - cursor, 0.0)
    return totals


def activity_times(history: History) -> dict[str, dict[str, float]]:
    """Per activity type: count, summed scheduling (queue) and summed work seconds."""
    out: dict[str, dict[str, float]] = {}
    for span in history.activities:
        row = out.setdefault(span.type, {"count": 0, "queue": 0.0, "work": 0.0})
        row["count"] += 1
        if span.started is not None:
            row["queue"] += span.started - span.scheduled
            if span.closed is not None:
                row["work"] += span.closed - span.started
    return out


def results_of(client: Client, history: History, activity: str, kind: type[Any]) -> list[Any]:
    """``(span, result)`` of every completed ``activity`` (its result decoded as ``kind``)."""
    converter = client.data_converter.payload_converter
    return [
        (span, converter.from_payloads(list(span.result.payloads), [kind])[0])
        for span in history.activities
        if span.type == activity and span.result is not None
    ]


@dataclass
class LeaseWait:
    workflow_id: str
    lease: str
    holder: str
    at: float


def lease_waits(client: Client, history: History) -> list[LeaseWait]:
    """Every acquire_leases result that reported a lease held by another transaction."""
    acquired = results_of(client, history, ops.ACQUIRE_LEASES, ops.AcquireLeasesResult)
    return [
        LeaseWait(history.workflow_id, r.blocked_by.lease.name, r.blocked_by.identity, span.started)
        for span, r in acquired
        if r.blocked_by is not None
    ]


def leases_acquired_at(client: Client, history: History) -> float | None:
    """When the workflow held all its leases (the first acquire that was not blocked)."""
    acquired = results_of(client, history, ops.ACQUIRE_LEASES, ops.AcquireLeasesResult)
    return next((span.closed for span, r in acquired if r.blocked_by is None), None)


def resolved_targets(client: Client, history: History) -> list[ops.ResolvedTarget]:
    """The targets (with their lease names) the workflow resolved, from its history."""
    resolved = results_of(client, history, ops.RESOLVE_TARGETS, ops.ResolveResult)
    return list(resolved[0][1].targets) if resolved else []

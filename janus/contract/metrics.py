"""Prometheus metrics of Janus, defined once so every process exports the same names.

The names are the seed operator's (``janus_transaction_phase_transitions_total``,
``janus_transaction_duration_seconds``, ``janus_transactions_active``,
``janus_item_operations_total``, ``janus_lock_operations_total``), so dashboards
and alerts written for it keep working.

Each is counted where the thing it counts happens, by one process:

* the **worker** counts what its activities do (``activities``): every change
  prepared, applied or undone, every lease operation, every snapshot; and each
  workflow's outcome as the workflow decides it (``janus.runtime.outcomes``, a worker
  interceptor that reads the workflow's final status, not its messages). Several
  workers each count what they ran: sum over them.
* the **bridge** counts what it sees of the Transactions it watches: their
  phases (``bridge.observe``), and its own workflow starts and leadership. The
  bridge replica that leads (see ``bridge.leadership``) is the one that counts;
  ``janus_bridge_leader`` says which one that is.

An activity may run twice (a retry, a worker that died before reporting): each
run's operations happened, and are counted; ``already_applied`` tells a repeated
apply that found its own earlier write.

Label values:

* ``phase``, ``from``, ``to``: the phases of ``janus.contract.models.Phase``; ``from`` is
  ``""`` for a Transaction that had no status yet.
* item ``operation``: ``prepare`` (a target snapshotted and its change dry-run),
  ``commit`` (the change's action), ``undo``; ``outcome``: ``succeeded``,
  ``already_applied`` (commit: an earlier attempt's write was found),
  ``skipped`` (undo: nothing of ours there, the action never landed),
  ``conflict`` (undo: someone else wrote the target after us; left as they wrote
  it), ``failed`` (refused for good: the Transaction rolls back, or the undo is
  reported), ``retried`` (a passing error: the step runs again).
* lock ``operation``: ``acquire`` (``outcome`` ``acquired``; ``taken_over``, an
  expired lease of a transaction that stopped renewing; ``contended``, a try that
  found the lease held by a live transaction, which the workflow waits for and
  tries again; ``timeout``, the workflow gave up after ``lockTimeout``), ``renew``
  (``renewed``, ``lost``: another transaction holds it now) and ``release``
  (``released``, ``skipped``: gone already, or another's); any of them may end
  in ``error`` (a timeout, a 5xx: whether the request took effect is unknown; the
  activity is retried).
* snapshot ``operation``: ``take`` (a target's state read and kept, absence
  included), ``store`` (a shard written), ``load`` (read back for an undo),
  ``reuse`` (the snapshot an earlier run of the same Transaction stored, after a
  reset); ``outcome``: ``succeeded``, ``failed``, ``lost`` (reuse: it is gone).
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# -- the bridge: what it sees ------------------------------------------------------

TRANSACTIONS_ACTIVE = Gauge(
    "janus_transactions_active",
    "Transactions not yet in a terminal phase (Committed, RolledBack, Failed).",
)

TRANSACTIONS_BY_PHASE = Gauge(
    "janus_transactions",
    "Transactions the bridge watches, by their current phase.",
    ["phase"],
)

TRANSACTIONS_WAITING = Gauge(
    "janus_transactions_waiting",
    "Transactions the bridge watches whose status says they wait for a lease another "
    "transaction holds (status.waiting).",
)

PHASE_TRANSITIONS = Counter(
    "janus_transaction_phase_transitions_total",
    "Phase changes of Transactions, as mirrored to their status.",
    ["from", "to"],
)

BRIDGE_LEADER = Gauge(
    "janus_bridge_leader",
    "1 while this bridge replica holds the leader-election Lease and handles Transactions.",
)

WORKFLOW_STARTS = Counter(
    "janus_bridge_workflow_starts_total",
    "Calls to start a Transaction's workflow, by result: started, existing (already "
    "running or closed: the id is the Transaction's uid) or error.",
    ["result"],
)

# -- the worker: what its workflows decide and its activities do -------------------

TRANSACTION_OUTCOMES = Counter(
    "janus_transaction_outcomes_total",
    "Transactions whose workflow ended on this worker, by terminal phase.",
    ["phase"],
)

TRANSACTION_DURATION = Histogram(
    "janus_transaction_duration_seconds",
    "Time from a Transaction's startedAt to its completedAt, by terminal phase.",
    ["phase"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)

ITEM_OPERATIONS = Counter(
    "janus_item_operations_total",
    "Per-change steps the worker ran: prepare, commit and undo, by outcome.",
    ["operation", "outcome"],
)

LOCK_OPERATIONS = Counter(
    "janus_lock_operations_total",
    "Lease operations on targets: acquired, taken over, contended tries, timeouts, "
    "renewals, releases.",
    ["operation", "outcome"],
)

SNAPSHOT_OPERATIONS = Counter(
    "janus_snapshot_operations_total",
    "Snapshots of targets: taken, shards stored, loaded for an undo, reused after a reset.",
    ["operation", "outcome"],
)

"""The bridge: from ``kubectl apply`` of a Transaction to its workflow, and back.

Users never talk to Temporal to run a transaction. They apply a ``Transaction``
custom resource; the bridge, a kopf operator, sees it and starts one
``TransactionWorkflow`` for it. From then on the workflow owns the status (it
mirrors every step to the status subresource and emits the Events), and the
bridge only watches:

* **create / resume** — start the workflow, idempotently: the id comes from the
  Transaction's uid and Temporal's id policies reject a second run
  (``bridge.runs``). On start, Transactions without a workflow get one;
  terminal ones are left alone.
* **delete** — a finalizer holds a running Transaction; the bridge cancels its
  workflow (which rolls back, shielded) and lets the object go once the
  workflow has closed (``bridge.handlers``).
* **every change** — the metrics of what the bridge sees: phase changes and
  gauges by phase and of lease waits (``status.waiting``) (``bridge.observe``,
  ``janus.contract.metrics``); the worker counts what it does.

Several replicas may run; a Lease elects the one that acts
(``bridge.leadership``). The bridge never imports the activities; it starts the
workflow by its type (``bridge.runs.start_transaction``, the one place a
Transaction's workflow is started), with the shared models of
``janus.contract.models`` as input.
"""

from bridge.component import Bridge
from bridge.handlers import FINALIZER

__all__ = ["FINALIZER", "Bridge"]

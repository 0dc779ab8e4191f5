"""A Secret's value appears nowhere but in Secrets: targets and their Secret-typed snapshots.

Three transactions change Secrets (patch one, delete one, create one): one
rolls back from a failure, one commits, and one is rejected by the API server
with a message that echoes a value (an invalid label holding it). Then every
other place a value could leak is searched, in plain text and base64: the
namespace's ConfigMaps (snapshots of other kinds among them), its Events, each
Transaction's status, the leases, the worker process's log, and each
workflow's history (payloads included, searched in the history's protobuf
bytes). The Transaction's own spec is where the user wrote the new values, so
it is not searched; the old values were never in it.
"""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any, cast

from kubernetes import client as k8s
from temporalio.api.history.v1 import History

from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from tests.reliability import tally
from tests.reliability.stage import Stage, config_maps
from tests.reliability.worker_process import WorkerProcess, Zygote
from tests.saga.harness import LEASE_NAMESPACE, Harness, change, transaction


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def forms(value: str) -> list[str]:
    """The ways a value can be written: as is, base64, base64 of base64 (a JSON payload)."""
    return [value, b64(value), b64(b64(value))]


def leaks(haystack: str | bytes, values: dict[str, str], where: str) -> list[str]:
    found = []
    for label, value in values.items():
        for form in forms(value):
            needle = form.encode() if isinstance(haystack, bytes) else form
            if needle in haystack:  # type: ignore[operator]
                found.append(f"{label} found in {where}")
                break
    return found


async def test_secret_values_stay_in_secrets(
    harness: Harness, zygote: Zygote, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:10]
    values = {
        "old key": f"old-key-{tag}",
        "old token": f"old-token-{tag}",
        "new token": f"new-token-{tag}",
        "created": f"created-{tag}",
        "echoed": f"echo me {tag}",
    }
    stage = Stage(harness, "secrets")
    log = tmp_path / "worker.log"
    queue = f"{harness.task_queue}-secrets"
    worker = WorkerProcess(zygote, queue, log, {"JANUS_FAULTS": "apply:3:before@rotate"})
    h = Harness(harness.api, harness.temporal, queue, stage.namespace)
    try:
        config_maps(h, ["anchor"], {"k": "v"})
        h.create_objects(
            [
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": name},
                    "data": {"v": b64(values[label])},
                }
                for name, label in (("old-key", "old key"), ("token", "old token"))
            ]
        )
        worker.start()
        await worker.ready()

        def rotation(name: str) -> dict[str, Any]:
            return transaction(
                name,
                change("Secret", "token", "Patch", {"stringData": {"v": values["new token"]}}),
                change("Secret", "old-key", "Delete"),
                change(
                    "Secret", f"fresh-{name}", "Create", {"data": {"v": b64(values["created"])}}
                ),
                change("ConfigMap", "anchor", "Patch", {"data": {"by": name}}),
            )

        echo = {
            "metadata": {"labels": {"k": values["echoed"]}},
            "stringData": {"v": values["echoed"]},
        }
        names = ["rotate", "rejected", "commit"]
        rolled = await h.run(rotation("rotate"))
        rejected = await h.run(transaction("rejected", change("Secret", "token", "Patch", echo)))
        committed = await h.run(rotation("commit"))
    finally:
        worker.stop()

    problems: list[str] = []
    for txn, phase in ((rolled, "RolledBack"), (rejected, "RolledBack"), (committed, "Committed")):
        if txn["status"]["phase"] != phase:
            problems.append(f"{txn['metadata']['name']}: {txn['status']['phase']}, not {phase}")
    if "[redacted]" not in rejected["status"]["message"]:
        problems.append(f"the API server's echo was not redacted: {rejected['status']['message']}")

    core = k8s.CoreV1Api(harness.api)
    snapshot_namespace_maps = core.list_namespaced_config_map(LEASE_NAMESPACE).items
    for cm in core.list_namespaced_config_map(stage.namespace).items + snapshot_namespace_maps:
        problems += leaks(json.dumps(cm.data or {}), values, f"ConfigMap {cm.metadata.name}")  # type: ignore[union-attr]
    for event in core.list_namespaced_event(stage.namespace).items:
        problems += leaks(event.message or "", values, f"Event {event.metadata.name}")
    for name in names:
        found = h.custom.get_namespaced_custom_object(
            API_GROUP, API_VERSION, stage.namespace, PLURAL, name
        )
        status = cast(dict[str, Any], found).get("status", {})
        problems += leaks(json.dumps(status), values, f"status of {name}")
    for lease in k8s.CoordinationV1Api(harness.api).list_namespaced_lease(LEASE_NAMESPACE).items:
        problems += leaks(str(lease.metadata.annotations), values, f"lease {lease.metadata.name}")  # type: ignore[union-attr]
    worker_log = log.read_text(errors="replace")
    problems += leaks(worker_log, values, "the worker's log")
    histories = 0
    for txn in (rolled, rejected, committed):
        handle = harness.temporal.get_workflow_handle(txn["status"]["workflowId"])
        history = await handle.fetch_history()
        raw = History(events=history.events).SerializeToString()
        if b"anchor" not in raw and txn is not rejected:
            problems.append("history search is blind: it does not even find 'anchor'")
        problems += leaks(raw, values, f"history of {txn['metadata']['name']}")
        problems += leaks(history.to_json(), values, f"history JSON of {txn['metadata']['name']}")
        histories += 1

    # The positive control: the old key does sit in a Secret-typed snapshot.
    snapshot_secrets = [
        s
        for s in core.list_namespaced_secret(LEASE_NAMESPACE).items
        if (s.metadata.labels or {}).get("backup.janus.io/transaction-uid")  # type: ignore[union-attr]
    ]
    if not any(
        values["old key"] in json.dumps(s.data)
        or b64(values["old key"])
        in json.dumps({k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()})
        for s in snapshot_secrets
    ):
        problems.append("no Secret-typed snapshot holds the old key (is the search blind?)")
    stage.cleanup()

    checks = 3 + 1 + 1 + 1 + 1 + histories  # channels searched per run, for the count
    tally.record("secret-leak checks", "secrets stay in Secrets", not problems, "; ".join(problems))
    print(f"\n[secret-leak checks] {len(values)} values x {checks} channels: {problems or 'clean'}")
    assert not problems, problems

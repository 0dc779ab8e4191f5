"""One trial: set up its targets, run its transactions through its faults, record what happened.

The trial's actions run on a clock from its start; every one of them, and
every event the trial notices (a worker exit, a phase), goes into the trace
with its time, so a violation can be read and replayed. The record handed to
the checker holds the targets as read before the first transaction, the
Transactions' final status, and what was left behind once they were deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any, cast

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from janus.contract.models import API_GROUP, API_VERSION, PLURAL
from tests.chaos.audit import AuditTail, parse
from tests.chaos.checker import Verdict, check
from tests.chaos.plan import FOREIGN, Action, TrialPlan, content_of, initial_object
from tests.chaos.record import TERMINAL, TargetRef, TraceEntry, TrialRecord, TxnRecord
from tests.chaos.world import LEASE_NAMESPACE, TARGET_ROLE, World
from tests.reliability.worker_process import WorkerProcess

SETTLE_SECONDS = 240.0
DELETE_SECONDS = 90.0
HOLD_FINALIZER = "chaos.janus.dev/hold"
THIEF = "chaos-thief"
STOLEN_FOR = 5


class Trial:
    def __init__(self, world: World, plan: TrialPlan, seed: int) -> None:
        self.world, self.plan, self.seed = world, plan, seed
        self.trace: list[TraceEntry] = []
        self.faults: Counter[str] = Counter()
        self.uids: dict[str, str] = {}
        self.t0 = time.monotonic()
        self.worker: WorkerProcess | None = None
        self.workers = 0
        self.audit_lines: list[str] = []
        self.when_down: list[Action] = []

    def log(self, kind: str, detail: str) -> None:
        self.trace.append(
            TraceEntry(at=round(time.monotonic() - self.t0, 3), kind=kind, detail=detail)
        )

    # -- the run ----------------------------------------------------------------------

    async def run(self) -> tuple[TrialRecord, Verdict]:
        tail = AuditTail(self.world.plane.layout.audit_log)
        await asyncio.to_thread(self._setup)
        tail.mark()
        initial = {t.key: await asyncio.to_thread(self._read, t) for t in self.plan.targets}
        self.t0 = time.monotonic()
        self.log("plan", self._describe())
        for kind, n in self.plan.env_faults.items():
            self.faults[kind] += n
        self._start_worker(first=True)
        self.when_down = [a for a in self.plan.actions if a.when == "worker-down"]
        keeper = asyncio.create_task(self._keep_worker())
        try:
            await asyncio.gather(
                *(self._start_txn(t.name, t.start_at, t.changes) for t in self.plan.txns),
                *(self._act(a) for a in self.plan.actions if a.when != "worker-down"),
            )
            stuck = await self._settle()
            if self.plan.retry_failed:
                stuck = await self._retry_failed() or stuck
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        self.world.proxy.disarm()  # type: ignore[union-attr]
        txns = [await asyncio.to_thread(self._final, t.name, t.changes) for t in self.plan.txns]
        record = TrialRecord(
            seed=self.seed,
            trial=self.plan.trial,
            namespace=self.plan.namespace,
            targets=self.plan.targets,
            initial=initial,
            txns=txns,
            trace=self.trace,
            stuck=stuck,
        )
        await self._clean_up(record)
        if self.worker is not None:
            self.worker.stop()
        self.audit_lines = tail.read()
        writes = parse(self.audit_lines)
        for txn in record.txns:
            if txn.phase is None:  # deleted: its last status write says how it ended
                txn.phase, txn.status = _last_status(writes, txn)
        verdict = check(record, writes)
        await asyncio.to_thread(self._teardown)
        return record, verdict

    def _describe(self) -> str:
        txns = "; ".join(
            f"{t.name}@{t.start_at}s: "
            + ", ".join(f"{c.type} {c.target.kind}/{c.target.name}" for c in t.changes)
            for t in self.plan.txns
        )
        env = (
            f"crash={self.plan.crash_at!r} faults={self.plan.faults!r} delays={self.plan.delays!r}"
        )
        actions = ", ".join(
            f"{a.kind}@{a.when + '+' if a.when else ''}{a.at}s" for a in self.plan.actions
        )
        return f"{txns} | {env} | {actions} | retry_failed={self.plan.retry_failed}"

    # -- setup -------------------------------------------------------------------------

    def _setup(self) -> None:
        ns = self.plan.namespace
        core = k8s.CoreV1Api(self.world.admin)
        core.create_namespace({"metadata": {"name": ns, "labels": {"janus.dev/chaos": "true"}}})  # type: ignore[arg-type]
        k8s.RbacAuthorizationV1Api(self.world.admin).create_cluster_role_binding(
            {  # type: ignore[arg-type]
                "metadata": {"name": f"chaos-{ns}", "labels": {"janus.dev/chaos": "true"}},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": TARGET_ROLE,
                },
                "subjects": [
                    {
                        "kind": "Group",
                        "name": f"system:serviceaccounts:{ns}",
                        "apiGroup": "rbac.authorization.k8s.io",
                    }
                ],
            }
        )
        for txn in self.plan.txns:
            core.create_namespaced_service_account(ns, {"metadata": {"name": f"sa-{txn.name}"}})  # type: ignore[arg-type]
        for target, exists in zip(self.plan.targets, self.plan.existing, strict=True):
            if exists:
                self._create(self.world.dyn, target, initial_object(target))

    def _resource(self, target: TargetRef) -> Any:
        return self.world.dyn.resources.get(api_version=target.api_version, kind=target.kind)

    def _create(self, client: Any, target: TargetRef, body: dict[str, Any]) -> None:
        client.create(self._resource(target), body=body, namespace=target.namespace)

    def _read(self, target: TargetRef) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self.world.dyn.get(  # type: ignore[no-untyped-call]
                self._resource(target), name=target.name, namespace=target.namespace
            ).to_dict()
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return found

    def _teardown(self) -> None:
        ns = self.plan.namespace
        for target in self.plan.targets:
            if target.namespace is None:
                with contextlib.suppress(ApiException):
                    self.world.dyn.delete(self._resource(target), name=target.name)  # type: ignore[no-untyped-call]
        with contextlib.suppress(ApiException):
            k8s.RbacAuthorizationV1Api(self.world.admin).delete_cluster_role_binding(f"chaos-{ns}")
        with contextlib.suppress(ApiException):
            k8s.CoreV1Api(self.world.admin).delete_namespace(ns, propagation_policy="Background")

    # -- the worker ------------------------------------------------------------------------

    def _start_worker(self, *, first: bool) -> None:
        settings = {"JANUS_FAULTS": self.plan.faults, "JANUS_DELAYS": self.plan.delays}
        if first:
            settings["JANUS_CRASH_AT"] = self.plan.crash_at
        log = self.world.logs / f"worker-{self.plan.namespace}-{self.workers}.log"
        self.workers += 1
        self.worker = self.world.worker(log, settings)
        self.log("worker", f"started pid {self.worker.pid}" + (" (crash seam)" if first else ""))

    async def _keep_worker(self) -> None:
        """A worker that died (its crash seam, a server restart) is replaced, as a pod would be."""
        while True:
            await asyncio.sleep(0.2)
            if self.world.keep_bridge():
                self.log("bridge", "exited; started again")
            assert self.worker is not None
            code = self.worker.exit_code()
            if code is None:
                continue
            self.log("worker", f"pid {self.worker.pid} exited with {code}")
            while self.when_down:
                await self._act(self.when_down.pop(0))
            await asyncio.sleep(1.0)
            self._start_worker(first=False)

    # -- transactions ------------------------------------------------------------------------

    def _manifest(self, name: str, changes: list[Any]) -> dict[str, Any]:
        items = []
        for c in changes:
            item: dict[str, Any] = {"target": c.target.manifest_target(), "type": c.type}
            if c.content is not None:
                item["content"] = c.content
            items.append(item)
        return {
            "apiVersion": f"{API_GROUP}/{API_VERSION}",
            "kind": "Transaction",
            "metadata": {"name": name},
            "spec": {"changes": items, "serviceAccountName": f"sa-{name}", "lockTimeout": "60s"},
        }

    async def _start_txn(self, name: str, at: float, changes: list[Any]) -> None:
        await self._until(at)
        custom = k8s.CustomObjectsApi(self.world.admin)
        for _ in range(60):  # the API server may be restarting
            try:
                created = await asyncio.to_thread(
                    custom.create_namespaced_custom_object,
                    API_GROUP,
                    API_VERSION,
                    self.plan.namespace,
                    PLURAL,
                    self._manifest(name, changes),
                )
                break
            except Exception as err:
                self.log("txn", f"create {name} failed ({err.__class__.__name__}); again")
                await asyncio.sleep(1)
        else:
            raise RuntimeError(f"could not create transaction {name}")
        self.uids[name] = cast(dict[str, Any], created)["metadata"]["uid"]
        self.log("txn", f"created {name} uid {self.uids[name]}")

    def _workflow_id(self, name: str) -> str:
        return f"txn/{self.plan.namespace}/{name}/{self.uids[name]}"

    def _transaction(self, name: str) -> dict[str, Any] | None:
        try:
            found = k8s.CustomObjectsApi(self.world.admin).get_namespaced_custom_object(
                API_GROUP, API_VERSION, self.plan.namespace, PLURAL, name
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return cast(dict[str, Any], found)

    async def _closed(self, name: str) -> bool:
        """Its workflow's latest run closed and the Transaction (if still there) terminal."""
        try:
            handle = self.world.temporal.get_workflow_handle(self._workflow_id(name))
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                return False
            txn = await asyncio.to_thread(self._transaction, name)
        except Exception:
            return False  # a server restarting
        return txn is None or (txn.get("status") or {}).get("phase") in TERMINAL

    async def _settle(self) -> list[str]:
        deadline = time.monotonic() + SETTLE_SECONDS
        pending = [t.name for t in self.plan.txns if t.name in self.uids]
        while pending and time.monotonic() < deadline:
            pending = [n for n in pending if not await self._closed(n)]
            await asyncio.sleep(0.5)
        for name in pending:
            self.log("stuck", f"{name} not terminal after {SETTLE_SECONDS:.0f}s")
        self.log("settled", "all transactions closed" if not pending else f"stuck: {pending}")
        return pending

    async def _retry_failed(self) -> list[str]:
        failed = []
        for t in self.plan.txns:
            txn = await asyncio.to_thread(self._transaction, t.name)
            if txn is not None and (txn.get("status") or {}).get("phase") == "Failed":
                failed.append(t.name)
        for name in failed:
            done = await self.world.cli("janus", "retry", f"{self.plan.namespace}/{name}")
            self.faults["retry"] += 1
            self.log("retry", f"janus retry {name}: rc {done.returncode} {done.stdout.strip()}")
        return await self._settle() if failed else []

    # -- faults and other actors ------------------------------------------------------------

    async def _until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, self.t0 + at - time.monotonic()))

    async def _until_committing(self, name: str, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                txn = (
                    await asyncio.to_thread(self._transaction, name) if name in self.uids else None
                )
                phase = ((txn or {}).get("status") or {}).get("phase")
                if (name in self.uids and txn is None) or phase in (
                    "Committing",
                    "RollingBack",
                    *TERMINAL,
                ):
                    return
            await asyncio.sleep(0.1)

    async def _act(self, action: Action) -> None:
        if action.when == "committing":
            await self._until_committing(self.plan.txns[action.txn].name)
            await asyncio.sleep(action.at)
        elif action.when == "worker-down":
            await asyncio.sleep(action.at)
        else:
            await self._until(action.at)
        self.faults[action.kind] += 1
        try:
            detail = await self._do(action)
        except Exception as err:
            detail = f"failed: {err.__class__.__name__}: {str(err)[:200]}"
        self.log(action.kind, f"{detail}{f' ({action.when})' if action.when else ''}")

    async def _do(self, action: Action) -> str:
        target = self.plan.targets[action.target]
        name = self.plan.txns[action.txn].name
        proxy = self.world.proxy
        assert proxy is not None
        if action.kind in FOREIGN:
            return await asyncio.to_thread(self._foreign, action.kind, target, action.how)
        if action.kind == "lease-steal":
            return await asyncio.to_thread(self._steal, target)
        if action.kind.startswith("proxy-"):
            kind = action.kind.removeprefix("proxy-")
            proxy.arm(kind, action.count, action.seconds)  # type: ignore[arg-type]
            return f"next {action.count} requests: {kind} {action.seconds:.1f}s"
        if action.kind.startswith("restart-"):
            server = "temporal" if action.kind == "restart-temporal" else "kube-apiserver"
            started = time.monotonic()
            await self.world.restart(server, action.seconds)
            return f"{server} back after {time.monotonic() - started:.1f}s"
        if name not in self.uids:
            return f"{name} not created yet"
        if action.kind == "cancel":
            done = await self.world.cli(
                "temporal", "workflow", "cancel", "--workflow-id", self._workflow_id(name)
            )
            return (
                f"temporal workflow cancel {name}: rc {done.returncode} {done.stderr.strip()[:200]}"
            )
        if action.kind == "kubectl-delete":
            done = await self.world.cli(
                "kubectl", "-n", self.plan.namespace, "delete", "txn", name, "--wait=false"
            )
            return f"kubectl delete txn {name}: rc {done.returncode} {done.stderr.strip()[:200]}"
        if action.kind == "reset":
            return await self._reset(name, action)
        raise ValueError(action.kind)

    async def _reset(self, name: str, action: Action) -> str:
        args = ["temporal", "workflow", "reset", "--workflow-id", self._workflow_id(name)]
        args += ["--reason", "chaos", "--yes"]
        if action.how == "event":
            handle = self.world.temporal.get_workflow_handle(self._workflow_id(name))
            history = await handle.fetch_history()
            completed = [
                e.event_id
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
            ]
            if not completed:
                return f"{name}: no workflow task completed yet"
            event = completed[action.count % len(completed)]
            args += ["--event-id", str(event)]
            how = f"event {event} of {len(history.events)}"
        else:
            args += ["--type", action.how]
            how = action.how
        done = await self.world.cli(*args)
        said = (done.stdout + done.stderr).strip()[:200]
        return f"reset {name} to {how}: rc {done.returncode} {said}"

    def _foreign(self, kind: str, target: TargetRef, tag: str) -> str:
        """Another writer (``janus-tester``) changes a target behind Janus's back."""
        client, resource = self.world.foreign, self._resource(target)
        where = {"name": target.name, "namespace": target.namespace}
        try:
            if kind == "foreign-edit":
                patch = content_of(target, "Patch", tag)
                client.patch(  # type: ignore[no-untyped-call]
                    resource, body=patch, content_type="application/merge-patch+json", **where
                )
            elif kind == "foreign-delete":
                client.delete(resource, **where)  # type: ignore[no-untyped-call]
            elif kind == "foreign-finalizer":
                patch = {"metadata": {"finalizers": [HOLD_FINALIZER]}}
                client.patch(  # type: ignore[no-untyped-call]
                    resource, body=patch, content_type="application/merge-patch+json", **where
                )
            else:
                with contextlib.suppress(ApiException):
                    client.delete(resource, **where)  # type: ignore[no-untyped-call]
                body = initial_object(target)
                body["metadata"]["labels"] = {"chaos": f"recreated-{tag}"}
                self._create(client, target, body)
        except ApiException as err:
            return f"{kind} {target.key}: HTTP {err.status}"
        return f"{kind} {target.key} done"

    def _steal(self, target: TargetRef) -> str:
        """Someone hands a target's Lease to another holder by hand, for a few seconds
        (as a takeover would once it expired); whatever holds it then must stop writing."""
        leases = k8s.CoordinationV1Api(self.world.tester)
        now = datetime.now(UTC)
        spec = k8s.V1LeaseSpec(
            holder_identity=f"{THIEF}/{self.plan.namespace}",
            lease_duration_seconds=STOLEN_FOR,
            acquire_time=now,
            renew_time=now,
        )
        try:
            lease = leases.read_namespaced_lease(target.lease, LEASE_NAMESPACE)
            was = lease.spec.holder_identity if lease.spec else None
            lease.spec = spec
            leases.replace_namespaced_lease(target.lease, LEASE_NAMESPACE, lease)
        except ApiException as err:
            if err.status != 404:
                return f"lease of {target.key}: HTTP {err.status}"
            was = None
            body = k8s.V1Lease(metadata=k8s.V1ObjectMeta(name=target.lease), spec=spec)
            try:
                leases.create_namespaced_lease(LEASE_NAMESPACE, body)
            except ApiException as again:
                return f"lease of {target.key}: HTTP {again.status}"
        return f"lease {target.lease} of {target.key} taken from {was!r} for {STOLEN_FOR}s"

    # -- the end ---------------------------------------------------------------------------

    def _final(self, name: str, changes: list[Any]) -> TxnRecord:
        txn = self._transaction(name) if name in self.uids else None
        status = (txn or {}).get("status") or {}
        return TxnRecord(
            name=name,
            namespace=self.plan.namespace,
            uid=self.uids.get(name, ""),
            service_account=f"sa-{name}",
            changes=changes,
            phase=status.get("phase") if txn is not None else None,
            status=status,
            deleted=txn is None and name in self.uids,
        )

    async def _clean_up(self, record: TrialRecord) -> None:
        """Release the foreign finalizers, delete the Transactions (the bridge releases
        theirs), then look for what is left: leases, snapshots, finalizers."""
        ns = self.plan.namespace
        for target in self.plan.targets:
            with contextlib.suppress(ApiException):
                await asyncio.to_thread(
                    self.world.foreign.patch,
                    self._resource(target),
                    name=target.name,
                    namespace=target.namespace,
                    body={"metadata": {"finalizers": None}},
                    content_type="application/merge-patch+json",
                )
        await self.world.cli("kubectl", "-n", ns, "delete", "txn", "--all", "--wait=false")
        deadline = time.monotonic() + DELETE_SECONDS
        left: list[str] = []
        while time.monotonic() < deadline:
            left = [
                t.name for t in self.plan.txns if await asyncio.to_thread(self._transaction, t.name)
            ]
            snapshots = await asyncio.to_thread(self._snapshots)
            if not left and not snapshots:
                break
            await asyncio.sleep(0.5)
        record.finalizers_left = [f"Transaction {ns}/{n}" for n in left]
        record.snapshots_left = await asyncio.to_thread(self._snapshots)
        record.leases_left = await asyncio.to_thread(self._leases)
        await asyncio.to_thread(self._return_stolen)
        self.log("cleaned", f"left: {left or 'no'} transactions")

    def _return_stolen(self) -> None:
        leases = k8s.CoordinationV1Api(self.world.admin)
        for target in self.plan.targets:
            with contextlib.suppress(ApiException):
                lease = leases.read_namespaced_lease(target.lease, LEASE_NAMESPACE)
                if lease.spec and (lease.spec.holder_identity or "").startswith(THIEF):
                    leases.delete_namespaced_lease(target.lease, LEASE_NAMESPACE)

    def _snapshots(self) -> list[str]:
        core = k8s.CoreV1Api(self.world.admin)
        uids = set(self.uids.values())
        found = []
        for kind, items in (
            ("ConfigMap", core.list_namespaced_config_map(self.plan.namespace).items),
            ("Secret", core.list_namespaced_secret(self.plan.namespace).items),
        ):
            for item in items:
                if (item.metadata.labels or {}).get("backup.janus.io/transaction-uid") in uids:  # type: ignore[operator,union-attr]
                    found.append(f"{kind}/{item.metadata.name}")  # type: ignore[union-attr]
        return found

    def _leases(self) -> list[str]:
        leases = k8s.CoordinationV1Api(self.world.admin).list_namespaced_lease(LEASE_NAMESPACE)
        prefix = f"{self.plan.namespace}/"
        return [
            f"{lease.metadata.name} held by {lease.spec.holder_identity}"  # type: ignore[union-attr]
            for lease in leases.items
            if lease.spec and (lease.spec.holder_identity or "").startswith(prefix)
        ]


def _last_status(writes: list[Any], txn: TxnRecord) -> tuple[str | None, dict[str, Any]]:
    phase: str | None = None
    status: dict[str, Any] = {}
    for w in writes:
        if w.resource == "transactions" and w.name == txn.name and w.subresource == "status":
            found = (w.response or {}).get("status") or {}
            uid = (w.response or {}).get("metadata", {}).get("uid")
            if w.succeeded and found.get("phase") and uid == txn.uid:
                phase, status = found["phase"], found
    return phase, status

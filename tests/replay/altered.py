"""Altered copies of the workflow, for the tests that the replay test bites, and
that the rule it points at is the fix. Never registered with a worker.

- ``SnapshotsBeforeLeases`` swaps two activity calls, as a careless refactoring might.
- ``PausesFirst`` adds a step (a timer) before the others, unguarded.
- ``PausesFirstPatched`` adds the same step the way the rule says: behind
  ``workflow.patched``, so a history recorded without it replays the old path.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from janus.contract import operations as ops
    from janus.contract.models import Phase, TransactionInput, TransactionStatus
    from workflows.policies import LOCAL
    from workflows.transaction import TransactionWorkflow


@workflow.defn(name="TransactionWorkflow")
class SnapshotsBeforeLeases(TransactionWorkflow):
    @workflow.run
    async def run(self, txn: TransactionInput) -> TransactionStatus:
        return await super().run(txn)

    async def _prepare(self) -> None:
        await self._resolve_targets_swapped()

    async def _resolve_targets_swapped(self) -> None:
        resolved: ops.ResolveResult = await workflow.execute_local_activity(
            ops.RESOLVE_TARGETS,
            ops.ResolveInput(ref=self._txn.ref, spec=self._txn.spec, withheld=self._txn.withheld),
            result_type=ops.ResolveResult,
            **LOCAL,
        )
        self._targets = resolved.targets
        for target in self._targets:
            self.book.set_target(target.index, target.key())
        await self._snapshot_all()  # was after the leases
        await self._acquire_all_leases()
        await self._enter(Phase.PREPARED, f"Prepared {len(self._targets)} changes", mirror=False)


@workflow.defn(name="TransactionWorkflow")
class PausesFirst(TransactionWorkflow):
    @workflow.run
    async def run(self, txn: TransactionInput) -> TransactionStatus:
        return await super().run(txn)

    async def _prepare(self) -> None:
        await workflow.sleep(timedelta(seconds=1))
        await super()._prepare()


@workflow.defn(name="TransactionWorkflow")
class PausesFirstPatched(TransactionWorkflow):
    @workflow.run
    async def run(self, txn: TransactionInput) -> TransactionStatus:
        return await super().run(txn)

    async def _prepare(self) -> None:
        if workflow.patched("test-pause-before-prepare"):
            await workflow.sleep(timedelta(seconds=1))
        await super()._prepare()

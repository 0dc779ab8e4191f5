"""The test seams as one wrapper around a step: what each configured point does to it."""

from __future__ import annotations

import pytest

from activities.seams import Fault, Seams
from janus.contract.errors import NON_RETRYABLE, ChangeRejected
from janus.contract.models import TransactionRef

REF = TransactionRef(namespace="ns", name="txn-1", uid="u1")


def faulty(*specs: str) -> Seams:
    return Seams(faults=tuple(Fault.parse(s) for s in specs))


def test_a_step_without_seams_just_runs() -> None:
    assert Seams().around("apply", REF, 0, lambda: "done") == "done"


def test_a_fault_before_a_step_fails_it_for_good_and_it_never_runs() -> None:
    ran: list[int] = []
    with pytest.raises(ChangeRejected, match="injected fault: apply of change 2 failed"):
        faulty("apply:2:before").around("apply", REF, 2, lambda: ran.append(2))
    assert ran == []


def test_a_fault_after_a_step_fails_once_per_transaction_after_it_ran() -> None:
    seams, ran = faulty("undo:1:after"), []
    with pytest.raises(RuntimeError, match="injected crash after undo of change 1"):
        seams.around("undo", REF, 1, lambda: ran.append(1))
    assert seams.around("undo", REF, 1, lambda: ran.append(1)) is None  # the retry passes
    assert ran == [1, 1]
    other = REF.model_copy(update={"uid": "u2"})
    with pytest.raises(RuntimeError):  # another transaction's step fails in its turn
        seams.around("undo", other, 1, lambda: None)


def test_a_fault_names_its_step_index_and_transaction() -> None:
    seams = faulty("apply:1:before@other-*")
    assert seams.around("apply", REF, 1, lambda: 1) == 1  # another transaction's
    assert seams.around("undo", REF.model_copy(update={"name": "other-3"}), 1, lambda: 2) == 2
    with pytest.raises(ChangeRejected):
        seams.around("apply", REF.model_copy(update={"name": "other-3"}), 1, lambda: 3)


def test_after_strikes_only_a_step_that_landed() -> None:
    seams = faulty("acquire:0:after")
    assert seams.around("acquire", REF, 0, lambda: "held by someone", landed=lambda b: not b) == (
        "held by someone"
    )
    with pytest.raises(RuntimeError):
        seams.around("acquire", REF, 0, lambda: None, landed=lambda b: not b)


def test_a_delay_ends_the_batch_before_its_step() -> None:
    seams = Seams(delays=(Fault.parse("apply:3:before:1ms"),))
    assert seams.delays_before("apply", REF, 3)
    assert not seams.delays_before("apply", REF, 2) and not seams.delays_before("undo", REF, 3)


def test_repetition_runs_the_work_twice() -> None:
    runs: list[int] = []

    def work() -> int:
        runs.append(1)
        return len(runs)

    assert Seams(repeat_activities=True).repeated(work) == 2  # the second run's result
    assert Seams().repeated(work) == 3


def test_an_injected_failure_is_the_refusal_it_stands_for_and_adds_no_error_type() -> None:
    with pytest.raises(ChangeRejected) as raised:
        faulty("snapshot:0:before").around("snapshot", REF, 0, lambda: None)
    assert type(raised.value) is ChangeRejected  # no subclass of the seams' own
    assert NON_RETRYABLE == [
        "InvalidTransaction",
        "Forbidden",
        "TargetConflict",
        "LeaseLost",
        "LockTimeout",
        "ChangeRejected",
    ]

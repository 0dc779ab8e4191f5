"""Every recorded history replays with today's workflow code (no server needed).

The histories under ``tests/replay/histories/<release>/`` were recorded from
real runs of each released version, one per path a Transaction can take
(``tests/replay/record.py`` lists them). A workflow change that would break a
transaction in flight during an upgrade, or a ``janus retry`` of an old one,
fails here, naming the history and the rule to follow.
"""

from __future__ import annotations

import pytest

from tests.replay.altered import PausesFirst, PausesFirstPatched, SnapshotsBeforeLeases
from tests.replay.record import SCENARIOS
from tests.replay.releases import last_release, releases
from tests.replay.replaying import RULE, RecordedHistory, recorded_histories, replay_problem

HISTORIES = recorded_histories()


@pytest.mark.parametrize("recorded", HISTORIES, ids=str)
async def test_recorded_history_replays_with_current_workflow(recorded: RecordedHistory) -> None:
    problem = await replay_problem(recorded)
    assert problem is None, problem


def test_every_path_of_every_release_is_recorded() -> None:
    recorded = {(h.release, h.name) for h in HISTORIES}
    missing = [
        f"{r.version}/{name}"
        for r in releases()
        for name in SCENARIOS
        if (r.version, name) not in recorded
    ]
    assert not missing, f"no history recorded for {missing}: run tests/replay/record.py"
    assert any(h.release == last_release().version for h in HISTORIES)


async def test_reordered_copy_of_the_workflow_fails_replay_with_a_clear_message() -> None:
    commit = next(h for h in HISTORIES if h.name == "commit")
    problem = await replay_problem(commit, SnapshotsBeforeLeases)
    assert problem is not None, "swapping two steps went unnoticed by the replay"
    assert f"{commit.path.name}" in problem and commit.release in problem
    assert "no longer replays" in problem and "SnapshotResult" in problem, problem
    assert RULE in problem


async def test_an_unguarded_new_step_fails_replay_and_the_patched_one_replays() -> None:
    for recorded in (h for h in HISTORIES if h.name in ("commit", "retry")):
        problem = await replay_problem(recorded, PausesFirst)
        assert problem is not None and "NondeterminismError" in problem, problem
        assert recorded.path.name in problem and RULE in problem
        assert await replay_problem(recorded, PausesFirstPatched) is None

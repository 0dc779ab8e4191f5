"""The fault explorer's fixed-seed campaign, as CI runs it: no invariant broken.

It runs on a control plane of its own (it restarts its servers), started in a
temporary directory and purged afterwards; trials start for
``CAMPAIGN_MINUTES`` (each then runs to its end, bounded), so the test stays
within about six minutes on two cores. A longer campaign:
``make chaos SEED=… MINUTES=60``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.chaos import conftest, trial
from tests.chaos.campaign import report, run_campaign
from tests.chaos.world import World

SEED = 20261201
CAMPAIGN_MINUTES = 3.0
MAX_TRIALS = 40


async def test_a_fixed_seed_campaign_breaks_no_invariant() -> None:
    trial.SETTLE_SECONDS, trial.DELETE_SECONDS = 90.0, 45.0
    state_dir = Path(tempfile.mkdtemp(prefix="janus-chaos-"))
    world = World(state_dir)
    lines: list[str] = []

    def echo(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        await world.up()
        summary = await run_campaign(
            world, seed=SEED, trials=MAX_TRIALS, minutes=CAMPAIGN_MINUTES, echo=echo
        )
    finally:
        await world.down(purge=True)
    conftest.SUMMARY.extend(summary.lines())
    assert summary.trials > 0
    assert not summary.violations, "\n".join(
        report(record, [v]) for record, v in summary.violations
    )

"""``python -m tests.chaos``: the fault explorer (``make chaos SEED=… MINUTES=… TRIALS=…``).

Runs on a control plane of its own (``--state-dir``, default
``$JANUS_STATE_DIR`` or ``~/.local/state/janus/chaos``), since it restarts its
servers; it stops it at the end (``--keep`` leaves it up for a look).
Exit status 1 when any trial broke an invariant.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
from pathlib import Path

from tests.chaos.campaign import run_campaign
from tests.chaos.world import World


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--trials", type=int, default=1000, help="at most this many trials")
    parser.add_argument("--minutes", type=float, default=5.0, help="start no trial after this")
    parser.add_argument("--trial", type=int, default=None, help="replay only this trial")
    default_dir = os.environ.get("JANUS_STATE_DIR") or "~/.local/state/janus/chaos"
    parser.add_argument("--state-dir", type=Path, default=Path(default_dir))
    parser.add_argument("--keep", action="store_true", help="leave the control plane running")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**31)
    summary = asyncio.run(_run(args, seed))
    sys.exit(1 if summary.violations else 0)


async def _run(args: argparse.Namespace, seed: int):  # type: ignore[no-untyped-def]
    state_dir = args.state_dir.expanduser().absolute()
    world = World(state_dir)
    await world.up()
    try:
        return await run_campaign(
            world,
            seed=seed,
            trials=args.trials,
            minutes=args.minutes,
            only=args.trial,
            records=state_dir / "chaos" / "trials",
        )
    finally:
        if not args.keep:
            await world.down(purge=False)


if __name__ == "__main__":
    main()

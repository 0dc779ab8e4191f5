"""``python -m benchmarks``: run the benchmarks and print the targets table."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import report
from benchmarks.context import SCENARIOS, BenchConfig
from benchmarks.environment import BenchError, stop_all_children
from benchmarks.runner import run


def _sizes(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.replace(",", " ").split())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of numbers, e.g. 10,100"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError("give at least one positive number")
    return values


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmark Janus on the local control plane (janus dev up): latency and "
        "overhead, throughput, scale. Prints the targets table; writes results.json, "
        "report.md and PNG plots to the results directory.",
    )
    p.add_argument(
        "scenarios",
        nargs="*",
        choices=[*SCENARIOS, []],
        metavar="SCENARIO",
        help=f"which to run: {', '.join(SCENARIOS)} (default: all)",
    )
    p.add_argument("--quick", action="store_true", help="a short run with small sizes")
    p.add_argument("--runs", type=int, help="latency runs per kind (default 20; quick 5)")
    p.add_argument("--warmup", type=int, help="uncounted warm-up rounds (default 1)")
    p.add_argument(
        "--throughput", type=_sizes, metavar="N,N", help="concurrent transactions (50,200)"
    )
    p.add_argument("--no-overlap", action="store_true", help="skip the overlapping-target runs")
    p.add_argument("--overlap-groups", type=int, help="shared ConfigMaps when overlapping (10)")
    p.add_argument(
        "--overlap-shared",
        type=int,
        help="shared ConfigMaps per overlapping transaction (1; 2 chains them in a ring)",
    )
    p.add_argument(
        "--scale", type=_sizes, metavar="N,N", help="changes per transaction (10,100,1000,5000)"
    )
    p.add_argument("--no-rollback", action="store_true", help="scale: commit runs only")
    p.add_argument(
        "--writes", type=_sizes, metavar="N,N", help="writes: changes per object (10,100,1000,5000)"
    )
    p.add_argument("--results", type=Path, help="results directory (default results/)")
    p.add_argument("--no-plots", action="store_true")
    p.add_argument(
        "--via-bridge",
        action="store_true",
        help="start `janus bridge` and let it start the workflows, so the clock runs from the "
        "create (kubectl apply) through the bridge; only on a control plane of your own: the "
        "bridge watches every namespace",
    )
    p.add_argument(
        "--bridge-arg", action="append", default=[], help="extra argument for `janus bridge`"
    )
    p.add_argument(
        "--apply-with",
        choices=["api", "kubectl"],
        help="create Transactions with the API client (default) or `kubectl apply`",
    )
    p.add_argument("--keep-namespaces", action="store_true", help="leave bench namespaces")
    p.add_argument(
        "--render",
        type=Path,
        metavar="RESULTS_JSON",
        help="run nothing: print the tables and rewrite report.md and the plots from a "
        "results.json (into --results, default: beside it)",
    )
    return p


def config_from(args: argparse.Namespace) -> BenchConfig:
    overrides: dict[str, Any] = {}
    if args.scenarios:
        overrides["scenarios"] = tuple(dict.fromkeys(args.scenarios))
    for name, field in (
        ("runs", "latency_runs"),
        ("warmup", "warmup_runs"),
        ("throughput", "throughput_counts"),
        ("overlap_groups", "overlap_groups"),
        ("overlap_shared", "overlap_shared"),
        ("scale", "scale_sizes"),
        ("writes", "write_sizes"),
        ("results", "results_dir"),
        ("apply_with", "apply_with"),
    ):
        value = getattr(args, name)
        if value is not None:
            overrides[field] = value
    overrides["overlap"] = not args.no_overlap
    overrides["scale_rollback"] = not args.no_rollback
    overrides["plots"] = not args.no_plots
    overrides["via_bridge"] = args.via_bridge
    overrides["bridge_args"] = tuple(args.bridge_arg)
    overrides["keep_namespaces"] = args.keep_namespaces
    base = BenchConfig.quick() if args.quick else BenchConfig()
    return replace(base, **overrides)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.render is not None:
        results = json.loads(args.render.read_text())
        directory = args.results or args.render.parent
        report.write(results, directory, plots=not args.no_plots)
        print(report.text_report(results))
        return 0
    config = config_from(args)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = asyncio.run(run(config))
    except BenchError as err:
        print(f"benchmarks: {err}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("benchmarks: interrupted; stopping the worker and bridge", file=sys.stderr)
        stop_all_children()
        # Threads blocked in API calls must not hold the exit; the servers clean up.
        os._exit(130)
    print(report.text_report(results))
    print(f"\nResults: {config.results_dir}/ (results.json, report.md, *.png)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

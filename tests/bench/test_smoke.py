"""A tiny run of the benchmark harness on the real servers, so it keeps working.

Nothing here is timed: benchmarks measure, the suite only checks that every
scenario runs end to end and reports what it should.
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks import BenchConfig, report, run
from janus.dev import Endpoints


async def test_harness_runs_every_scenario(endpoints: Endpoints, tmp_path: Path) -> None:
    config = BenchConfig(
        latency_runs=2,
        warmup_runs=0,
        throughput_counts=(3,),
        overlap_groups=2,
        scale_sizes=(3, 120),
        write_sizes=(3,),
        results_dir=tmp_path,
    )
    results = await run(config, endpoints)

    latency = results["latency"]
    assert {k: s["n"] for k, s in latency["stats"].items()} == {
        "commit": 2,
        "rollback": 2,
        "plain": 2,
    }
    assert latency["failures"] == {"commit": 0, "rollback": 0}, latency["failure_examples"]
    assert latency["overhead"]["median_ratio"] is not None
    assert latency["breakdown_mean"]["commit"]["mutations"] > 0
    requests = latency["api_requests"]
    assert sum(requests["janus"].values()) > sum(requests["plain"].values()) > 0, requests

    runs = {r["mode"]: r for r in results["throughput"]["runs"]}
    assert set(runs) == {"independent", "overlapping"}
    for run_ in runs.values():
        assert run_["all_committed"], run_["phases"]
        assert run_["unneeded_waits"] == 0, run_["unneeded_examples"]
    assert runs["independent"]["lease_waits"] == 0

    scale = results["scale"]
    # 120 changes: more than one commit batch and more than one undo batch.
    assert [(r["changes"], r["mode"], r["phase"]) for r in scale["runs"]] == [
        (3, "commit", "Committed"),
        (3, "rollback", "RolledBack"),
        (120, "commit", "Committed"),
        (120, "rollback", "RolledBack"),
    ]
    assert all(r["ok"] for r in scale["runs"]), scale["runs"]
    assert scale["runs"][0]["plain_seconds"] > 0

    writes = {r["variant"]: r for r in results["writes"]["rows"]}
    assert len(writes) == 2 and all("status_write_median" in r for r in writes.values()), writes

    names = [t["name"] for t in results["targets"]]
    assert any(n.startswith("Overhead") for n in names)
    assert any(n.startswith("Unneeded lease waits") for n in names)
    for name in ("results.json", "report.md", "latency.png", "throughput.png", "scale.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "results.json").read_text())["machine"]["nproc"]
    assert "## Targets" in report.text_report(results)

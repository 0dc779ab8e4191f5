"""Benchmarks of Janus on the local control plane: latency, overhead, throughput, scale, writes.

Run them with ``python -m benchmarks`` (``--quick`` for a short run, ``--help``
for the options). Each scenario prints its progress; at the end the harness
prints the targets table (each target as a ratio beside its goal) and writes
``results.json``, ``report.md`` and PNG plots to the results directory. The
figures and what they mean: ``docs/benchmarks.md``.

Benchmarks measure; they never assert timings. ``tests/bench`` runs a tiny
configuration on the real servers to keep the harness working.
"""

from benchmarks.context import BenchConfig, run

__all__ = ["BenchConfig", "run"]

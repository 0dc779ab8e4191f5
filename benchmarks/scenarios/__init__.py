"""The benchmark's scenarios: latency (and overhead), throughput, scale."""

"""Benchmarks of the course's service: latency, throughput, cold start (see docs/performance.md)."""

"""Benchmarks for case-linker (`make bench`, `python -m bench`); see docs/bench.md.

Four measurements, each against a comparison run in the same invocation: backlog drain against a quota
(`bench.drain`, baseline in `bench.baseline`), batch latency and per-record overhead (`bench.envrun`, driven by
`bench.inproc`), and cold start (`bench.coldstart`).
"""

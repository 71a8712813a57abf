"""Benchmarks for Micro for Python; see bench/rpc/run.py and bench/_harness.py."""

"""Benchmarks: purse measured against the floor it stands on (PERFORMANCE.md)."""

"""Benchmarks: purse measured against the floor it stands on (docs/development.md)."""

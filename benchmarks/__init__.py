"""Benchmarks: scripts that print numbers, run by hand (see benchmarks/RESULTS.md)."""

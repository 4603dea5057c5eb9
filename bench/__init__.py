"""Benchmarks that print figures (never timed assertions). `make bench` runs the quick ones."""

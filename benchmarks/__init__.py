"""Benchmarks: each module runs with `python -m benchmarks.<name>`, prints a table and writes
JSON to benchmarks/results/<name>.json together with the environment it ran in."""

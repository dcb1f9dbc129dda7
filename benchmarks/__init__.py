"""Throughput benchmarks: xvae's `fit` against hand-written loops, measured in one run.

Run `python -m benchmarks.run` from the repository root (see benchmarks/README.md).
"""

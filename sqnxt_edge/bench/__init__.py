"""Benchmarking: the one-file runner (device side), local and remote harness, statistics and reports."""

from .api import BENCH_RUNTIMES, BenchConfig, BenchRun, run_bench

__all__ = ["BenchConfig", "BenchRun", "run_bench", "BENCH_RUNTIMES"]

"""Benchmarking: the harness over the runner (sqnxt_edge/runner/) - config, local and remote runs, statistics and
reports. The runner itself is the package's inference layer and lives at the top level."""

from .api import BENCH_RUNTIMES, BenchConfig, BenchRun, BoardUnreachable, board_estimates, run_bench

__all__ = ["BenchConfig", "BenchRun", "BoardUnreachable", "run_bench", "board_estimates", "BENCH_RUNTIMES"]

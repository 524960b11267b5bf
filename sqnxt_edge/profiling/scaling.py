"""Thread scaling: how much faster a model runs on T threads than on one, per board, with where the figure comes from.

A CNN at batch 1 does not run T times faster on T cores: the cores share the memory bandwidth and the last-level
cache, and the runtime splits every layer into chunks and waits for the slowest (small layers barely split). So the
cost model's compute peak on T threads is the per-core peak times a speed-up

    S(T) = 1 + (T - 1) x e            e: the parallel efficiency of each added thread (1 = linear, 0 = none)

and the memory term keeps the board's shared bandwidth whatever the thread count; the per-layer overhead does not
shrink either. `e` comes from the board's profile (its published or assumed speed-up at all cores, with a range) or,
when the board was calibrated at 1 and at N threads, is fitted to those measurements (`fit_efficiency`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

__all__ = ["ThreadScaling", "for_profile", "fit_efficiency", "LINEAR"]


@dataclass(frozen=True)
class ThreadScaling:
    """The parallel efficiency `e` of each added thread, the range the evidence allows, and that evidence."""

    efficiency: float
    low: float
    high: float
    source: str
    fitted: bool = False

    def speedup(self, threads: int, efficiency: float | None = None) -> float:
        """S(T) = 1 + (T - 1) x e: the compute speed-up of `threads` threads over one."""
        e = self.efficiency if efficiency is None else efficiency
        return 1.0 + (max(int(threads), 1) - 1) * e

    def ratio(self, threads: int, measured_at: int, efficiency: float | None = None) -> float:
        """How much faster compute runs at `threads` than at `measured_at` threads."""
        return self.speedup(threads, efficiency) / self.speedup(measured_at, efficiency)

    def to_dict(self) -> dict:
        """The scaling as JSON-ready data."""
        return asdict(self)


# What the cost model did before issue 24, and still does when nothing better is known for a machine: every thread a
# full core (the local probe measures its peaks at the thread count asked, which a 512^3 GEMM nearly reaches).
LINEAR = ThreadScaling(1.0, 1.0, 1.0, "linear (no thread-scaling figure for this machine: each thread a full core)")


def for_profile(prof) -> ThreadScaling | None:
    """The scaling a hardware profile states: its speed-up at all cores (expected, low, high) as efficiencies."""
    figure = getattr(prof, "thread_speedup", None)
    if not figure or not prof.cores or prof.cores < 2:
        return None
    expected, low, high = figure
    per = prof.cores - 1
    source = (prof.figure_sources or {}).get("thread_speedup", "profile")
    return ThreadScaling(
        (expected - 1) / per,
        (low - 1) / per,
        (high - 1) / per,
        f"{source} (x{expected:g} at {prof.cores} threads, range x{low:g}-x{high:g}: e = {(expected - 1) / per:.2f})",
    )


def fit_efficiency(predicted_ms: Callable[[float], float], measured_ms: float) -> float:
    """The efficiency in [0, 1] at which the cost model's prediction for another thread count (a function of `e`)
    meets the measurement there; bisection (the prediction is monotonic in `e`)."""
    lo, hi = 0.0, 1.0
    f_lo, f_hi = predicted_ms(lo) - measured_ms, predicted_ms(hi) - measured_ms
    if f_lo * f_hi > 0:  # the measurement lies beyond either end: the nearer end
        return lo if abs(f_lo) < abs(f_hi) else hi
    for _ in range(50):
        mid = (lo + hi) / 2
        f_mid = predicted_ms(mid) - measured_ms
        if f_mid * f_lo > 0:
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return (lo + hi) / 2

"""Interleaved latency sampling: fp32 and its int8 candidates timed in alternating rounds.

On a shared machine the load changes over seconds; timing A then B lets that drift decide the ratio. Alternating
short rounds exposes every model to the same conditions, so speed-up ratios stay fair. Measuring only returns raw
samples; statistics are separate.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatencySamples", "interleaved_latency"]


@dataclass
class LatencySamples:
    """Latency samples of one model, in ms."""

    name: str
    ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        """Median latency (nan without samples)."""
        return statistics.median(self.ms) if self.ms else float("nan")

    @property
    def p90(self) -> float:
        """90th percentile latency (nan without samples)."""
        return float(np.percentile(self.ms, 90)) if self.ms else float("nan")


def interleaved_latency(
    models: dict, inputs: dict, rounds: int = 10, reps: int = 5, warmup: int = 3
) -> dict[str, LatencySamples]:
    """`models`/`inputs`: name -> runner Model / prepared input. Each round runs every model `reps` times (the
    order rotates per round); returns every single-run time in ms."""
    names = list(models)
    for name in names:
        for _ in range(warmup):
            models[name].run(inputs[name])
    out = {name: LatencySamples(name) for name in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            run, x = models[name].run, inputs[name]
            for _ in range(reps):
                t0 = time.perf_counter()
                run(x)
                out[name].ms.append((time.perf_counter() - t0) * 1e3)
    return out

"""Statistics from raw latency samples: the summary every result carries, plus the comparisons the table shows.

Measuring lives in the runner (so the board computes the same summary); this module only derives numbers.
"""

from __future__ import annotations

import math

import numpy as np

from ..runner import summarize

__all__ = ["summarize", "median_ci", "noise_pct", "add_speedups", "agree"]


def median_ci(samples_ms, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics (no bootstrap randomness)."""
    a = np.sort(np.asarray(samples_ms, dtype=np.float64))
    n = a.size
    if n == 0:
        raise ValueError("no samples")
    z = {0.9: 1.645, 0.95: 1.96, 0.99: 2.576}.get(confidence, 1.96)
    half = z * math.sqrt(n) / 2.0
    lo = max(0, math.floor(n / 2.0 - half))
    hi = min(n - 1, math.ceil(n / 2.0 + half))
    return float(a[lo]), float(a[hi])


def noise_pct(latency: dict) -> float | None:
    """Run-to-run noise the table reports: the sample standard deviation relative to the median, in percent."""
    p50, std = latency.get("p50"), latency.get("std")
    if not p50 or std is None:
        return None
    return 100.0 * std / p50


def add_speedups(results: list[dict]) -> str | None:
    """Set `speedup` (reference p50 / own p50) on every result, against the PyTorch baseline when present, else
    against the slowest result; returns the reference artifact (or None when nothing was measured)."""
    timed = [r for r in results if r.get("latency_ms", {}).get("p50")]
    if not timed:
        return None
    torch = [r for r in timed if r.get("format") == "pytorch"]
    ref = torch[0] if torch else max(timed, key=lambda r: r["latency_ms"]["p50"] / max(r.get("batch") or 1, 1))
    ref_per_image = ref["latency_ms"]["p50"] / max(ref.get("batch") or 1, 1)
    for r in timed:
        r["speedup"] = ref_per_image / (r["latency_ms"]["p50"] / max(r.get("batch") or 1, 1))
        r["speedup_vs"] = ref["artifact"]
    return ref["artifact"]


def agree(a: dict, b: dict, k: float = 1.0) -> bool:
    """Do two measurements of the same artifact agree within k times the noise either one reports?"""
    la, lb = a["latency_ms"], b["latency_ms"]
    return abs(la["p50"] - lb["p50"]) <= k * max(la["std"], lb["std"])

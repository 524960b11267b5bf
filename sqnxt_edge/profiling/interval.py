"""The range every estimate carries: how far the measured p50 may lie from it, and what that range stands on.

Errors are (estimate - measured) / measured. A band (lo, hi) of errors becomes the latency range
[estimate / (1 + hi), estimate / (1 + lo)]: the measurements the estimate is consistent with.

- Calibrated with enough models (5 or more): the 5th-95th percentiles of the calibration's leave-one-model-out
  residuals (each model predicted by a fit to the others: what a new model will see; benchmarks/estimate/offline.py
  checks how often such a band holds a held-out model's p50).
- Calibrated on fewer: those residuals say little, so the band is also at least as wide as the errors of a
  one-model calibration on the reference machine (benchmarks/estimate: calibrated on 1.0-SqNxt-23, the other 104
  estimates' 5th-95th percentiles).
- Uncalibrated: the reference factors' own errors on the machine they were fitted on (a floor: on another CPU the
  error is larger, by an amount nothing here measured), widened by the range of the board's thread-scaling figure.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ONE_MODEL_BAND",
    "REFERENCE_BAND",
    "MIN_MODELS",
    "residual_band",
    "widest",
    "calibrated_band",
    "uncalibrated_band",
    "latency_range",
]

# benchmarks/estimate/results.json (2026-12-06, this project's x86 machine, 1 thread): 5th / 95th percentiles of
# one_model_error_pct (calibrated on 1.0-SqNxt-23) and uncalibrated_error_pct over the 104 rows of the other models;
# a test checks them.
ONE_MODEL_BAND = (-15.8, 23.0)
REFERENCE_BAND = (-12.2, 26.6)
BAND_SOURCE = "benchmarks/estimate/results.json, 104 zoo artifacts on the x86 reference machine"
MIN_MODELS = 5  # residuals of fewer calibration models do not make a 90% band on their own


def residual_band(residuals_pct: list[float]) -> tuple[float, float]:
    """The 5th-95th percentile band of residuals (%), widened to contain 0."""
    lo, hi = (float(v) for v in np.percentile(np.asarray(residuals_pct, dtype=float), [5, 95]))
    return min(lo, 0.0), max(hi, 0.0)


def widest(*bands: tuple[float, float]) -> tuple[float, float]:
    """The band that contains all of `bands`."""
    return min(b[0] for b in bands), max(b[1] for b in bands)


def calibrated_band(
    residuals_pct: list[float] | None, models: int, kind: str = "in-sample"
) -> tuple[tuple[float, float], str]:
    """(band, what it stands on) for a calibrated estimate."""
    if residuals_pct and models >= MIN_MODELS and kind == "leave-one-model-out":
        return residual_band(residuals_pct), (
            f"5th-95th percentile of the calibration's {kind} residuals ({len(residuals_pct)} artifacts, "
            f"{models} models)"
        )
    floor = f"the one-model calibration's errors (5th-95th percentile, {BAND_SOURCE})"
    if residuals_pct:
        return widest(residual_band(residuals_pct), ONE_MODEL_BAND), (
            f"the calibration's {kind} residuals ({len(residuals_pct)} artifacts, {models} model(s)) widened to {floor}"
        )
    return ONE_MODEL_BAND, floor


def uncalibrated_band() -> tuple[tuple[float, float], str]:
    """(band, what it stands on) for an estimate from a profile's figures alone."""
    return REFERENCE_BAND, (
        f"the reference factors' errors where they were fitted (5th-95th percentile, {BAND_SOURCE}): a floor, "
        "the error on another CPU is larger until it is calibrated"
    )


def latency_range(low_estimate_ms: float, high_estimate_ms: float, band: tuple[float, float]) -> tuple[float, float]:
    """(low, high) latency: the optimistic estimate over the band's upper error, the pessimistic one over its lower."""
    lo, hi = band
    return low_estimate_ms / (1 + hi / 100), high_estimate_ms / (1 + lo / 100)

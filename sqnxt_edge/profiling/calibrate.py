"""Calibration: profile artifacts on the device itself, fit the cost model's factors, store them in the registry.

Each record also keeps what the estimates' range and thread scaling stand on: the residuals of every calibration
artifact against the fitted model, and the measured p50 per thread count. Calibrated at 1 and at N threads (two runs
of `estimate --calibrate --threads`), the board's parallel efficiency is fitted to those measurements
(profiling/scaling.py) instead of taken from its profile.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts import utc_now
from .costmodel import Factors, Hardware, fit, predict
from .estimate import Estimate, EstimateError, estimate, hardware_for
from .layers import LayerTable, artifact_layers, model_layers
from .scaling import ThreadScaling, fit_efficiency

__all__ = ["calibrate"]


def _key(table: LayerTable) -> str:
    return f"{table.model}|{table.input_size}|{table.num_classes}"


def calibrate(
    artifacts: Sequence[str | os.PathLike] | str | os.PathLike,
    device: str = "local",
    threads: int | None = None,
    runs: int = 50,
    devices_file=None,
    progress: bool = True,
) -> list[Estimate]:
    """Profile the artifact(s) on `device`, fit the cost model's factors to them (one fit per precision: the fp32
    artifacts give fp32 factors, the int8 ones int8), store each in the device registry
    (`[calibration.DEVICE.PRECISION]`), and return the calibrated estimates beside their measurements.

    One artifact is enough; the same model at two input sizes separates per-layer overhead from compute better."""
    from ..devices import get_calibration, set_calibration
    from .profile import profile

    paths = [artifacts] if isinstance(artifacts, (str, os.PathLike)) else list(artifacts)
    hw, calib_name = hardware_for(device, threads, devices_file)
    if calib_name is None:
        raise EstimateError(
            f"{device!r} is a built-in profile, not a board: register the board (sqnxt-edge devices "
            f"add NAME --host ... --profile {device}) and calibrate that"
        )
    results = profile(
        paths,
        device,
        hw.threads if device == "local" else threads,
        runs=runs,
        devices_file=devices_file,
        progress=progress,
    )
    if any((r.env or {}).get("emulated") for r in results):
        raise EstimateError(
            f"{device} is emulated: its timings are the emulator's, not the board's; calibrate on the real board"
        )
    if device != "local":
        hw, _ = hardware_for(device, results[0].threads, devices_file)
    groups: dict[str, list] = {}
    for path, result in zip(paths, results):
        groups.setdefault("int8" if result.precision == "int8" else "fp32", []).append((path, result))
    for precision, group in groups.items():
        if hw.missing(precision):
            raise EstimateError(f"{device}: its profile has no {', '.join(hw.missing(precision))} to fit against")
        record = _fit_record(group, hw, precision, device)
        _fit_threads(record, get_calibration(calib_name, precision, devices_file), group, hw, precision)
        set_calibration(calib_name, precision, record, devices_file)
    out = []
    for path, result in zip(paths, results):
        est = estimate(path, device, threads=result.threads, devices_file=devices_file)
        est.measured_ms = result.latency_ms
        est.notes.append(
            f"stored as [calibration.{calib_name}.{est.precision if est.precision == 'int8' else 'fp32'}]"
            " in the device registry"
        )
        out.append(est)
    return out


def _fit_record(group: list, hw: Hardware, precision: str, device: str) -> dict:
    """The factors fitted to the profiles of one precision, as the registry stores them."""
    samples, names, target_us = [], [], 0.0
    for path, result in group:
        table, _ = artifact_layers(path)
        # The profile gives the split, the ordinary measurement (the p50 `bench` reports, taken alone before the
        # profiled runs) the total: the profiler and the plain session running beside it slow nodes a little. Scale
        # down only: a p50 above the per-layer sum is time spent waiting for a busy CPU, not the board's speed.
        scale = min(1.0, result.latency_ms / result.sum_ms) if result.sum_ms else 1.0
        samples.append(
            (
                table,
                {n: us * scale for n, us in result.measured_us().items()},
                sum(r.us for r in result.runtime_nodes) * scale,
            )
        )
        names.append(f"{table.model} @{table.input_size} px")
        target_us += result.sum_ms * 1e3 * scale
    first = group[0][1]
    dispatch = float(sorted(r.dispatch_us for _, r in group)[len(group) // 2])  # the board's measured per-node cost
    basis = (
        f"calibrated on {' + '.join(dict.fromkeys(names))} {precision}, measured on {device} "
        f"({(first.env or {}).get('model') or '?'}, {first.runtime}, {first.threads} thread(s)) {utc_now()}"
    )
    try:
        factors = fit(samples, hw, precision, basis, overhead_us=dispatch)
    except ValueError as exc:
        raise EstimateError(f"cannot calibrate on {Path(group[0][0]).name}: {exc}") from None
    predicted = [predict(table, hw, factors, precision)[1] for table, _, _ in samples]
    predicted_us = sum(predicted)
    record = {
        "basis": basis,
        "model": samples[0][0].model,
        "input_size": samples[0][0].input_size,
        "measured_ms": first.latency_ms,
        "profiled_ms": first.sum_ms,
        "fit_error_pct": 100.0 * (predicted_us - target_us) / target_us,
        # each artifact's p50 against the model: the estimates' range stands on these (profiling/interval.py)
        **_residuals(samples, group, predicted, hw, precision, dispatch),
        "ms_by_threads": {str(first.threads): _p50_by_model(samples, group)},
        "loadavg": list((first.env or {}).get("loadavg") or []),
        "hardware": {k: v for k, v in hw.to_dict().items() if k not in ("name", "sources")},
        "factors": factors.to_dict(),
    }
    record["factors"].pop("basis", None)
    return record


def _p50_by_model(samples: list, group: list) -> dict[str, float]:
    """{model|size|classes: median p50 over its repeats}."""
    by: dict[str, list] = {}
    for (table, _, _), (_, result) in zip(samples, group):
        by.setdefault(_key(table), []).append(result.latency_ms)
    return {k: float(np.median(v)) for k, v in by.items()}


def _residuals(samples: list, group: list, predicted: list, hw: Hardware, precision: str, dispatch: float) -> dict:
    """The calibration artifacts' errors against their p50: each model predicted by a fit to the OTHER models where
    there are 3 or more (what an estimate for a new model will see), else in-sample (optimistic: said so)."""
    models = sorted({t.model for t, _, _ in samples})
    p50 = [r.latency_ms for _, r in group]
    if len(models) < 3:
        residuals = [100.0 * (p / 1e3 - ms) / ms for p, ms in zip(predicted, p50)]
        return {"residuals_pct": residuals, "residuals_kind": "in-sample", "models": len(models)}
    residuals = []
    for model in models:
        rest = [s for s in samples if s[0].model != model]
        factors = fit(rest, hw, precision, "leave-one-model-out", overhead_us=dispatch)
        for (table, _, _), ms in zip(samples, p50):
            if table.model == model:
                residuals.append(100.0 * (predict(table, hw, factors, precision)[1] / 1e3 - ms) / ms)
    return {"residuals_pct": residuals, "residuals_kind": "leave-one-model-out", "models": len(models)}


def _fit_threads(record: dict, previous: dict | None, group: list, hw: Hardware, precision: str) -> None:
    """Merge the p50s per thread count with the previous calibration's and, where the same models were measured at
    another thread count, fit the parallel efficiency that makes the new factors predict those measurements."""
    threads = int(record["hardware"]["threads"])
    by_threads = {k: dict(v) for k, v in ((previous or {}).get("ms_by_threads") or {}).items()}
    by_threads.update(record["ms_by_threads"])
    record["ms_by_threads"] = by_threads
    others = [int(t) for t in by_threads if int(t) != threads]
    if not others:
        return
    factors = Factors(**{**record["factors"], "basis": record["basis"], "fitted": tuple(record["factors"]["fitted"])})
    fits, seen = [], []
    for other in others:
        common = [k for k in by_threads[str(other)] if k in by_threads[str(threads)]]
        if not common:
            continue
        tables = [model_layers(m, int(s), int(c)) for m, s, c in (k.split("|") for k in common)]
        measured = sum(by_threads[str(other)][k] for k in common)
        here = sum(by_threads[str(threads)][k] for k in common)
        scaling = ThreadScaling(0.5, 0.5, 0.5, "")

        def predicted(
            e: float, other: int = other, tables: list = tables, here: float = here, scaling=scaling
        ) -> float:
            ratio = scaling.ratio(other, threads, e)
            scaled = Hardware(
                hw.name,
                other,
                (hw.peak_gflops_fp32 or 0) * ratio or None,
                (hw.peak_gops_int8 or 0) * ratio or None,
                hw.mem_bandwidth_gbs,
                hw.layer_overhead_us,
                {},
                hw.vector_lanes,
            )
            # the model's prediction at the other count, anchored on the measurement at this one
            mine = sum(predict(t, hw, factors, precision)[1] for t in tables) / 1e3
            return sum(predict(t, scaled, factors, precision)[1] for t in tables) / 1e3 * here / mine

        fits.append(fit_efficiency(predicted, measured))
        seen.append(f"{other} thread(s) {measured:.3f} ms vs {threads} thread(s) {here:.3f} ms")
    if fits:
        e = float(np.median(fits))
        record["thread_scaling"] = {
            "efficiency": e,
            "low": e,
            "high": e,
            "source": f"fitted: the same models measured at {'; '.join(seen)} (e = {e:.2f})",
            "fitted": True,
        }

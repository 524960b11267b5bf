"""Calibration: profile artifacts on the device itself, fit the cost model's factors, store them in the registry.

Profiles of 3 or more models of a precision are fitted end to end (`costmodel.fit_totals` on their p50s, pulled
towards the per-layer fit of the same profiles). Calibrated that way on the 5-model set, the estimates of the other
24 zoo models were within +-10 % of bench's p50 for 83 % of their artifacts (97 % measured over 8 passes instead
of 4) and within +-20 % for all, against 57 % and 85 % calibrated per layer on one model (benchmarks/estimate/, 1
thread on the project's x86 machine).
`CALIBRATION_MODELS` is the set `estimate --calibrate` exports when given no artifacts.

Each record also keeps what the estimates' range and thread scaling stand on: the residuals of every calibration
artifact against the fitted model, and the measured p50 per thread count. Calibrated at 1 and at N threads (two runs
of `estimate --calibrate --threads`), the board's parallel efficiency is fitted to those measurements
(profiling/scaling.py) instead of taken from its profile.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..artifacts import utc_now
from .costmodel import Factors, Hardware, fit, fit_totals, predict
from .estimate import Estimate, EstimateError, estimate, hardware_for
from .layers import LayerTable, artifact_layers, model_layers
from .scaling import ThreadScaling, fit_efficiency

__all__ = ["calibrate", "CALIBRATION_MODELS", "END_TO_END_MODELS"]

# What a board is calibrated on by default: widths 1.0/1.5/2.0, depths 23/44, the 7x7 and the v5 stems, the one
# grouped model and the SqueezeNet family, so every layer kind the zoo has is measured (a grouped conv no fit saw
# was the largest miss left: benchmarks/estimate/offline.md).
CALIBRATION_MODELS = ("1.0-SqNxt-23", "1.5-SqNxt-44", "2.0-SqNxt-23v5", "1.0-G-SqNxt-23", "SqueezeNet-1.1")
END_TO_END_MODELS = 3  # distinct models of a precision before their end-to-end times make the fit


def _key(table: LayerTable) -> str:
    return f"{table.model}|{table.input_size}|{table.num_classes}"


def calibrate(
    artifacts: Sequence[str | os.PathLike] | str | os.PathLike,
    device: str = "local",
    threads: int | None = None,
    runs: int = 50,
    devices_file=None,
    progress: bool = True,
    profiles: Sequence | None = None,
    measured_ms: Sequence[float] | None = None,
) -> list[Estimate]:
    """Profile the artifact(s) on `device`, fit the cost model's factors to them (one fit per precision: the fp32
    artifacts give fp32 factors, the int8 ones int8), store each in the device registry
    (`[calibration.DEVICE.PRECISION]`), and return the calibrated estimates beside their measurements.

    One artifact is enough; the same model at two input sizes separates per-layer overhead from compute better. An
    artifact given several times is profiled each time and its lowest p50 kept (load only ever adds time).
    The profiles give the split; the totals the factors are fitted to are each artifact's p50 measured as `bench`
    measures it (a plain run in a fresh process, nothing else in it), so that estimates match what bench reports.
    `profiles`, `measured_ms`: those already taken on `device` (e.g. spread over a longer run), in the order of
    `artifacts`; what is given is not measured again."""
    from ..devices import get_calibration, set_calibration
    from .profile import profile

    paths = [artifacts] if isinstance(artifacts, (str, os.PathLike)) else list(artifacts)
    hw, calib_name = hardware_for(device, threads, devices_file)
    if calib_name is None:
        raise EstimateError(
            f"{device!r} is a built-in profile, not a board: register the board (sqnxt-edge devices "
            f"add NAME --host ... --profile {device}) and calibrate that"
        )
    for given, what in ((profiles, "profiles"), (measured_ms, "p50s")):
        if given is not None and len(given) != len(paths):
            raise EstimateError(f"{len(given)} {what} for {len(paths)} artifacts")
    results = (
        list(profiles)
        if profiles is not None
        else profile(
            paths,
            device,
            hw.threads if device == "local" else threads,
            runs=runs,
            devices_file=devices_file,
            progress=progress,
        )
    )
    if any((r.env or {}).get("emulated") for r in results):
        raise EstimateError(
            f"{device} is emulated: its timings are the emulator's, not the board's; calibrate on the real board"
        )
    if measured_ms is None:
        measured_ms = _plain_p50s(paths, device, results[0].threads, runs, devices_file, progress)
    results = [_with_p50(r, ms) for r, ms in zip(results, measured_ms)]
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


def _plain_p50s(paths: list, device: str, threads: int | None, runs: int, devices_file, progress: bool) -> list[float]:
    """Each artifact's p50 as `sqnxt-edge bench` measures it: the runner's ordinary run, each file in a fresh child
    process, no profiler in the run: the figure estimates are compared with. (The profile's own ordinary run is taken
    between profiled children; in benchmarks/estimate/ its first round was a median 5%, up to 18%, above bench's
    lowest pass of the same file.)"""
    from .. import runner
    from .profile import p50_of, run_on

    settings = runner.Settings(runtime="onnxruntime", threads=threads, warmup=10, runs=runs, min_seconds=0.5).check()
    results = run_on(list(paths), device, settings, devices_file, progress, what="measuring")["results"]
    for path, result in zip(paths, results):
        if "error" in result:
            raise EstimateError(f"{Path(path).name}: {result['error']}")
    return [p50_of(result) for result in results]


def _with_p50(result, ms: float):
    """A copy of a profile whose p50 is the plain measurement's (the caller's profile stays as it was)."""
    result = copy.copy(result)
    result.latency_ms = float(ms)
    return result


def _fit_record(group: list, hw: Hardware, precision: str, device: str) -> dict:
    """The factors fitted to the profiles of one precision, as the registry stores them."""
    samples, names = [], []
    for path, result in group:
        table, _ = artifact_layers(path)
        # The profile gives the split, the plain measurement (the p50 `bench` reports) the total: the profiler and the
        # plain session running beside it slow nodes a little. Scale down only: a p50 above the per-layer sum is time
        # spent waiting for a busy CPU, not the board's speed.
        scale = min(1.0, result.latency_ms / result.sum_ms) if result.sum_ms else 1.0
        samples.append(
            (
                table,
                {n: us * scale for n, us in result.measured_us().items()},
                sum(r.us for r in result.runtime_nodes) * scale,
            )
        )
        names.append(f"{table.model} @{table.input_size} px")
    first = group[0][1]
    dispatch = float(sorted(r.dispatch_us for _, r in group)[len(group) // 2])  # the board's measured per-node cost
    p50 = _p50_by_model(samples, group)
    models = sorted({t.model for t, _, _ in samples})
    method = "end to end" if len(models) >= END_TO_END_MODELS else "per layer"
    basis = (
        f"calibrated on {' + '.join(dict.fromkeys(names))} {precision} ({method}), measured on {device} "
        f"({(first.env or {}).get('model') or '?'}, {first.runtime}, {first.threads} thread(s)) {utc_now()}"
    )
    try:
        factors = _fit(samples, p50, hw, precision, basis, dispatch)
    except ValueError as exc:
        raise EstimateError(f"cannot calibrate on {Path(group[0][0]).name}: {exc}") from None
    tables = {_key(t): t for t, _, _ in samples}
    predicted_ms = {k: predict(tables[k], hw, factors, precision)[1] / 1e3 for k in p50}
    record = {
        "basis": basis,
        "method": method,
        "model": samples[0][0].model,
        "input_size": samples[0][0].input_size,
        "calibration_models": models,
        "measured_ms": first.latency_ms,
        "profiled_ms": first.sum_ms,
        "fit_error_pct": 100.0 * (sum(predicted_ms.values()) - sum(p50.values())) / sum(p50.values()),
        # each artifact's p50 against the model: the estimates' range stands on these (profiling/interval.py)
        **_residuals(samples, p50, predicted_ms, hw, precision, dispatch),
        "ms_by_threads": {str(first.threads): p50},
        "loadavg": list((first.env or {}).get("loadavg") or []),
        "hardware": {k: v for k, v in hw.to_dict().items() if k not in ("name", "sources")},
        "factors": factors.to_dict(),
    }
    record["factors"].pop("basis", None)
    return record


def _fit(samples: list, p50: dict[str, float], hw: Hardware, precision: str, basis: str, dispatch: float) -> Factors:
    """The per-layer fit of the profiles; with END_TO_END_MODELS or more models, the end-to-end fit to their p50s
    around it (whole-model times of several models place the factors better than one model's split: the split is
    taken beside the profiler, and one model's layer mix cannot tell every kind apart)."""
    per_layer = fit(samples, hw, precision, basis, overhead_us=dispatch)
    if len({t.model for t, _, _ in samples}) < END_TO_END_MODELS:
        return per_layer
    tables = {_key(t): t for t, _, _ in samples}
    totals = [(tables[k], ms * 1e3) for k, ms in p50.items()]
    return fit_totals(totals, hw, precision, basis, dispatch, prior=per_layer)


def _p50_by_model(samples: list, group: list) -> dict[str, float]:
    """{model|size|classes: the lowest p50 over its repeats}: other processes only ever add time, so the lowest is
    the board's own speed (repeats spread over time meet different load)."""
    by: dict[str, list] = {}
    for (table, _, _), (_, result) in zip(samples, group):
        by.setdefault(_key(table), []).append(result.latency_ms)
    return {k: float(min(v)) for k, v in by.items()}


def _residuals(
    samples: list, p50: dict[str, float], predicted_ms: dict[str, float], hw: Hardware, precision: str, dispatch: float
) -> dict:
    """The calibration artifacts' errors against their p50: each model predicted by the same rule fitted to the OTHER
    models where there are 3 or more (what an estimate for a new model will see), else in-sample (optimistic: said
    so)."""
    models = sorted({t.model for t, _, _ in samples})
    if len(models) < 3:
        residuals = [100.0 * (predicted_ms[k] - ms) / ms for k, ms in p50.items()]
        return {"residuals_pct": residuals, "residuals_kind": "in-sample", "models": len(models)}
    tables = {_key(t): t for t, _, _ in samples}
    residuals = []
    for model in models:
        rest = [s for s in samples if s[0].model != model]
        factors = _fit(
            rest, {k: v for k, v in p50.items() if tables[k].model != model}, hw, precision, "lomo", dispatch
        )
        for k, ms in p50.items():
            if tables[k].model == model:
                residuals.append(100.0 * (predict(tables[k], hw, factors, precision)[1] / 1e3 - ms) / ms)
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

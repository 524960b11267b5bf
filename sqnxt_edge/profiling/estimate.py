"""`sqnxt-edge estimate`: what a model would take on a machine you may not have, and `--calibrate` to make it right.

The hardware comes from a registered device (its profile, and its calibration when one was stored), a built-in
profile (rpi4, rpi5, jetson-nano ...; figures only, every one with its source) or `local` (measured now). A
calibration profiles one artifact on the device itself, fits the cost model's factors to it and stores them in the
device registry, so every later estimate for that device stands on a measurement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import runner
from ..artifacts import utc_now
from ..errors import SqnxtError
from .costmodel import Factors, Hardware, fit, predict
from .layers import LayerTable, artifact_layers, model_layers

__all__ = ["Estimate", "EstimateError", "estimate", "calibrate", "hardware_for", "PRECISIONS"]

PRECISIONS = ("fp32", "fp16", "int8")
_ARTIFACT_SUFFIXES = (".onnx", ".ort", ".tflite")


class EstimateError(SqnxtError):
    """An estimate that cannot be made (unknown device, a profile without figures, a bad model)."""


@dataclass
class Estimate:
    """A latency estimate for a model on a device, with its per-layer terms and what it stands on."""

    model: str
    input_size: int
    num_classes: int
    precision: str
    device: str
    threads: int
    ms: float
    basis: str
    calibrated: bool
    layers: list[dict]
    by_stage: dict[str, float]
    by_kind: dict[str, float]
    macs: int
    hardware: dict
    factors: dict
    measured_ms: float | None = None  # when the estimate comes with a measurement (--calibrate)
    artifact: str | None = None  # when estimated for an exported file
    params: int = 0
    label: str = "estimate"
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The estimate as JSON-ready data."""
        return asdict(self)


def _profile_hardware(name: str, prof, threads: int | None) -> Hardware:
    cores = prof.cores or threads or 1
    threads = threads or cores
    scale = min(threads, cores) / cores  # the profile's peaks are for every core
    src = dict(prof.figure_sources)
    if scale != 1:
        for key in ("peak_gflops_fp32", "peak_gops_int8"):
            src[key] = f"{src.get(key, 'profile')}; x {threads}/{cores} cores for {threads} thread(s)"

    def peak(v: float | None) -> float | None:
        return v * scale if v else None

    return Hardware(
        name,
        threads,
        peak(prof.peak_gflops_fp32),
        peak(prof.peak_gops_int8),
        prof.mem_bandwidth_gbs,
        prof.layer_overhead_us,
        src,
    )


def hardware_for(device: str, threads: int | None = None, devices_file=None) -> tuple[Hardware, str | None]:
    """(the hardware figures for `device`, the registry name its calibrations live under, or None)."""
    from ..devices import get_profile, list_profiles, load_devices

    if device == "local":
        from .probe import local_figures

        threads = threads or runner.default_threads()
        figs = local_figures(threads)
        return Hardware(
            "local",
            threads,
            peak_gflops_fp32=figs["peak_gflops_fp32"][0],
            peak_gops_int8=figs["peak_gops_int8"][0],
            mem_bandwidth_gbs=figs["mem_bandwidth_gbs"][0],
            layer_overhead_us=figs["layer_overhead_us"][0],
            sources={k: v[1] for k, v in figs.items()},
        ), "local"
    devices = load_devices(devices_file)
    if device in devices:
        board = devices[device]
        prof = board.profile_info or get_profile(getattr(board, "emulate", None) or "")  # an emulated board's
        if prof is None and board.emulate:
            raise EstimateError(
                f"device {device!r} emulates a CPU class ({board.emulate}), which has no hardware profile: nothing "
                "to estimate its speed from (and an emulator's timings are not that CPU's speed)"
            )
        if prof is None:
            raise EstimateError(
                f'device {device!r} has no hardware profile: set profile = "rpi4" (or another) in '
                f"devices.toml, or calibrate it: sqnxt-edge estimate ARTIFACT --device {device} "
                "--calibrate"
            )
        return _profile_hardware(f"{device} ({prof.name})", prof, threads or board.default_threads), device
    if device in list_profiles():
        return _profile_hardware(device, get_profile(device), threads), None
    known = ", ".join(sorted(devices)) or "none registered"
    raise EstimateError(
        f"unknown device or profile {device!r} (devices: {known}; profiles: {', '.join(list_profiles())})"
    )


def _stored(calibration: dict | None, hw: Hardware, precision: str) -> tuple[Hardware, Factors] | None:
    """A stored calibration as the hardware figures it was fitted against and its factors."""
    if not calibration:
        return None
    fig = calibration.get("hardware") or {}
    ratio = hw.threads / fig.get("threads", hw.threads) if fig.get("threads") else 1.0
    peaks = {k: (fig[k] * ratio if fig.get(k) else None) for k in ("peak_gflops_fp32", "peak_gops_int8")}
    stored = Hardware(
        hw.name,
        hw.threads,
        peaks["peak_gflops_fp32"],
        peaks["peak_gops_int8"],
        fig.get("mem_bandwidth_gbs"),
        fig.get("layer_overhead_us"),
        {"calibration": calibration.get("basis", "")},
    )
    f = calibration.get("factors") or {}
    factors = Factors(
        dict(f.get("efficiency") or {}),
        float(f.get("memory_efficiency", 1.0)),
        f.get("overhead_us"),
        float(f.get("other", 0.0)),
        str(calibration.get("basis")),
        tuple(f.get("fitted") or ()),
        float(f.get("epilogue", 0.0)),
    )
    if ratio != 1:
        factors.basis += f" (measured at {fig['threads']} thread(s); peaks scaled to {hw.threads})"
    return stored, factors


def _table(
    model: str | os.PathLike, input_size: int | None, num_classes: int | None, precision: str | None
) -> tuple[LayerTable, str]:
    text = str(model)
    if text.lower().endswith(_ARTIFACT_SUFFIXES) or Path(text).is_file():
        if not Path(text).is_file():
            raise EstimateError(f"artifact not found: {text}")
        table, meta = artifact_layers(text)
        return table, precision or str(meta.get("precision") or "fp32")
    size = int(input_size or 227)
    return model_layers(text, size, num_classes or (1000 if size >= 128 else 10)), precision or "fp32"


def _shares(costs, total_layers: float, key: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for c in costs:
        k = getattr(c.layer, key)
        out[k] = out.get(k, 0.0) + (c.us / total_layers if total_layers else 0.0)
    return out


def estimate(
    model: str | os.PathLike,
    device: str = "local",
    input_size: int | None = None,
    precision: str | None = None,
    threads: int | None = None,
    num_classes: int | None = None,
    devices_file=None,
) -> Estimate:
    """Estimate `model` (a zoo name or an exported artifact) on `device` (a registered board, a profile, 'local')."""
    from ..devices import get_calibration

    if precision is not None and precision not in PRECISIONS:
        raise EstimateError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    table, precision = _table(model, input_size, num_classes, precision)
    hw, calib_name = hardware_for(device, threads, devices_file)
    kind = "int8" if precision == "int8" else "fp32"
    stored = _stored(get_calibration(calib_name, kind, devices_file) if calib_name else None, hw, precision)
    notes = []
    if stored:
        hw, factors = stored
    else:
        missing = hw.missing(precision)
        if missing:
            how = (
                f"sqnxt-edge estimate ARTIFACT --device {calib_name} --calibrate"
                if calib_name
                else "register a board with it (sqnxt-edge devices add) and run sqnxt-edge estimate ARTIFACT "
                "--device BOARD --calibrate"
            )
            raise EstimateError(f"{device}: the profile has no {', '.join(missing)} to estimate from; {how}")
        factors = Factors.reference(precision)
        factors.basis = f"profile {hw.name} only (uncalibrated): {factors.basis.split(': ', 1)[1]}"
        if calib_name and calib_name != "local":
            notes.append(f"calibrate it: sqnxt-edge estimate ARTIFACT --device {calib_name} --calibrate")
    if str(model).lower().endswith(".tflite"):
        notes.append("the cost model's factors come from onnxruntime's kernels; TFLite's (XNNPACK) differ")
    costs, total_us = predict(table, hw, factors, precision)
    layers_us = sum(c.us for c in costs)
    rows = [
        {
            **c.layer.to_dict(),
            "bytes": c.layer.bytes(precision),
            "us": c.us,
            "compute_us": c.compute_us,
            "memory_us": c.memory_us,
            "overhead_us": c.overhead_us,
        }
        for c in costs
    ]
    is_file = str(model).lower().endswith(_ARTIFACT_SUFFIXES)
    return Estimate(
        table.model,
        table.input_size,
        table.num_classes,
        precision,
        device,
        hw.threads,
        total_us / 1e3,
        factors.basis,
        stored is not None,
        rows,
        _shares(costs, layers_us, "stage"),
        _shares(costs, layers_us, "kind"),
        table.macs,
        hw.to_dict(),
        factors.to_dict(),
        notes=notes,
        artifact=str(model) if is_file else None,
        params=table.params,
    )


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
    from ..devices import set_calibration
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
        set_calibration(calib_name, precision, _fit_record(group, hw, precision, device), devices_file)
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
    predicted_us = sum(predict(table, hw, factors, precision)[1] for table, _, _ in samples)
    record = {
        "basis": basis,
        "model": samples[0][0].model,
        "input_size": samples[0][0].input_size,
        "measured_ms": first.latency_ms,
        "profiled_ms": first.sum_ms,
        "fit_error_pct": 100.0 * (predicted_us - target_us) / target_us,
        "loadavg": list((first.env or {}).get("loadavg") or []),
        "hardware": {k: v for k, v in hw.to_dict().items() if k not in ("name", "sources")},
        "factors": factors.to_dict(),
    }
    record["factors"].pop("basis", None)
    return record


def estimates_for(
    artifacts: Sequence[str | os.PathLike], device: str, threads: int | None = None, devices_file=None
) -> tuple[list[Estimate], list[str]]:
    """Estimates for what a bench could not measure on `device` (unreachable, or emulated): every exported artifact
    (.onnx, .ort, .tflite with its metadata); returns (estimates, one line per artifact that cannot be estimated)."""
    estimates, problems = [], []
    for path in artifacts:
        if not str(path).lower().endswith(_ARTIFACT_SUFFIXES):
            continue  # a PyTorch checkpoint is the local baseline, never a board's
        try:
            estimates.append(estimate(path, device, threads=threads, devices_file=devices_file))
        except SqnxtError as exc:
            problems.append(str(exc) if Path(path).name in str(exc) else f"{Path(path).name}: {exc}")
    return estimates, problems

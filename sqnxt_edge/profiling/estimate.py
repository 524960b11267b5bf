"""`sqnxt-edge estimate`: what a model would take on a machine you may not have, and `--calibrate` to make it right.

The hardware comes from a registered device (its profile, and its calibration when one was stored), a built-in
profile (rpi4, rpi5, jetson-nano ...; figures only, every one with its source) or `local` (measured now).
Every estimate carries a range (profiling/interval.py) and scales threads by the board's measured or stated speed-up
(profiling/scaling.py). Calibration (profiling/calibrate.py) profiles artifacts on the device itself, fits the cost
model's factors and stores them in the device registry, so every later estimate for that device stands on a
measurement.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import runner
from ..errors import SqnxtError
from .costmodel import Factors, Hardware, predict
from .interval import calibrated_band, latency_range, uncalibrated_band
from .layers import LayerTable, artifact_layers, model_layers
from .scaling import LINEAR, ThreadScaling, for_profile

__all__ = [
    "Estimate",
    "EstimateError",
    "Board",
    "estimate",
    "estimates_for",
    "board_for",
    "hardware_for",
    "PRECISIONS",
    "default_classes",
]

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
    low_ms: float = 0.0  # the range the measured p50 is expected in (about 90% of cases, where evidenced)
    high_ms: float = 0.0
    interval_basis: str = ""  # what the range stands on
    thread_scaling: dict = field(default_factory=dict)  # the thread scaling used, with its source

    def to_dict(self) -> dict:
        """The estimate as JSON-ready data."""
        return asdict(self)


def _profile_hardware(name: str, prof, threads: int | None, scaling: ThreadScaling, e: float | None = None) -> Hardware:
    """The profile's figures for `threads` threads: per-core peak x the thread speed-up (the memory term keeps the
    board's shared bandwidth)."""
    cores = prof.cores or threads or 1
    threads = threads or cores
    speedup = scaling.speedup(threads, e)
    src = dict(prof.figure_sources)
    if threads != 1:
        for key in ("peak_gflops_fp32", "peak_gops_int8"):
            src[key] = f"{src.get(key, 'profile')}; per core x{speedup:.2f} for {threads} thread(s) ({scaling.source})"

    def peak(v: float | None) -> float | None:
        return v / cores * speedup if v else None

    return Hardware(
        name,
        threads,
        peak(prof.peak_gflops_fp32),
        peak(prof.peak_gops_int8),
        prof.mem_bandwidth_gbs,
        prof.layer_overhead_us,
        src,
        prof.vector_lanes,
        prof.cache_mb,
    )


@dataclass
class Board:
    """Where an estimate is for: a name, its profile (None for `local`), where its calibrations live, thread count
    and thread scaling."""

    name: str
    profile: object | None
    calib_name: str | None
    threads: int
    scaling: ThreadScaling

    def hardware(self, e: float | None = None) -> Hardware:
        """The figures at this board's thread count (at efficiency `e`, or the scaling's own)."""
        if self.profile is None:
            from .probe import local_figures

            figs = local_figures(self.threads)
            return Hardware(
                "local",
                self.threads,
                peak_gflops_fp32=figs["peak_gflops_fp32"][0],
                peak_gops_int8=figs["peak_gops_int8"][0],
                mem_bandwidth_gbs=figs["mem_bandwidth_gbs"][0],
                layer_overhead_us=figs["layer_overhead_us"][0],
                sources={k: v[1] for k, v in figs.items()},
                vector_lanes=local_vector_lanes(),
                cache_mb=local_cache_mb(),
            )
        return _profile_hardware(self.name, self.profile, self.threads, self.scaling, e)


def local_vector_lanes() -> int | None:
    """This CPU's fp32 SIMD lanes, read from its ISA features (AVX-512 16, AVX2 8, NEON 4)."""
    feats = runner.cpu_info().get("features", {})
    return 16 if feats.get("avx512") else 8 if feats.get("avx2") else 4 if feats.get("neon") else None


def local_cache_mb() -> float | None:
    """This machine's largest (last-level) cache in MB, from sysfs; None where it cannot be read."""
    sizes = []
    for index in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*"):
        try:
            text = (index / "size").read_text().strip().upper()
        except OSError:
            continue
        scale = {"K": 1 / 1024, "M": 1.0, "G": 1024.0}.get(text[-1:], 1 / 2**20)
        try:
            sizes.append(float(text.rstrip("KMG")) * scale)
        except ValueError:
            continue
    return max(sizes) if sizes else None


def board_for(device: str, threads: int | None = None, devices_file=None) -> Board:
    """The board `device` names (a registered board, a built-in profile or `local`) at `threads` threads."""
    from ..devices import get_profile, list_profiles, load_devices

    if device == "local":
        return Board("local", None, "local", threads or runner.default_threads(), LINEAR)
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
        t = threads or board.default_threads or prof.cores or 1
        return Board(f"{device} ({prof.name})", prof, device, t, for_profile(prof) or LINEAR)
    prof = get_profile(device) if device in list_profiles() else None
    if prof is not None:
        return Board(device, prof, None, threads or prof.cores or 1, for_profile(prof) or LINEAR)
    known = ", ".join(sorted(devices)) or "none registered"
    raise EstimateError(
        f"unknown device or profile {device!r} (devices: {known}; profiles: {', '.join(list_profiles())})"
    )


def hardware_for(device: str, threads: int | None = None, devices_file=None) -> tuple[Hardware, str | None]:
    """(the hardware figures for `device`, the registry name its calibrations live under, or None)."""
    board = board_for(device, threads, devices_file)
    return board.hardware(), board.calib_name


def scaling_of(calibration: dict | None, board: Board) -> ThreadScaling:
    """The thread scaling fitted by a calibration at 1 and N threads, else the board's figure."""
    fitted = (calibration or {}).get("thread_scaling")
    if fitted:
        return ThreadScaling(**{k: fitted[k] for k in ("efficiency", "low", "high", "source", "fitted")})
    return board.scaling


def _stored(calibration: dict | None, board: Board, e: float | None = None) -> tuple[Hardware, Factors] | None:
    """A stored calibration as the hardware figures it was fitted against (scaled to the board's thread count by the
    thread scaling, at efficiency `e` or its own) and its factors."""
    if not calibration:
        return None
    fig = calibration.get("hardware") or {}
    measured_at = int(fig.get("threads") or board.threads)
    scaling = scaling_of(calibration, board)
    ratio = scaling.ratio(board.threads, measured_at, e)
    peaks = {k: (fig[k] * ratio if fig.get(k) else None) for k in ("peak_gflops_fp32", "peak_gops_int8")}
    stored = Hardware(
        board.name,
        board.threads,
        peaks["peak_gflops_fp32"],
        peaks["peak_gops_int8"],
        fig.get("mem_bandwidth_gbs"),
        fig.get("layer_overhead_us"),
        {"calibration": calibration.get("basis", ""), "thread_scaling": scaling.source},
        fig.get("vector_lanes"),
        fig.get("cache_mb"),
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
    if measured_at != board.threads:
        factors.basis += (
            f" (measured at {measured_at} thread(s); compute scaled x{ratio:.2f} to {board.threads}: {scaling.source})"
        )
    return stored, factors


def default_classes(input_size: int) -> int:
    """The classes a zoo model is estimated with when none are given: ImageNet's 1000 from 128 px, else 10."""
    return 1000 if input_size >= 128 else 10


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
    return model_layers(text, size, num_classes or default_classes(size)), precision or "fp32"


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
    """Estimate `model` (a zoo name or an exported artifact) on `device` (a registered board, a profile, 'local'),
    with the range the measured p50 is expected in and what that range stands on."""
    from ..devices import get_calibration

    if precision is not None and precision not in PRECISIONS:
        raise EstimateError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    table, precision = _table(model, input_size, num_classes, precision)
    board = board_for(device, threads, devices_file)
    kind = "int8" if precision == "int8" else "fp32"
    record = get_calibration(board.calib_name, kind, devices_file) if board.calib_name else None
    stored = _stored(record, board)
    scaling = scaling_of(record, board)
    notes = []
    if stored and record:
        hw, factors = stored
        measured_at = int((record.get("hardware") or {}).get("threads") or board.threads)
        band, band_basis = calibrated_band(
            record.get("residuals_pct"),
            int(record.get("models") or 1),
            str(record.get("residuals_kind") or "in-sample"),
        )
        # the thread count moved away from the calibration's, on a figure rather than a fit: its range counts too
        spread = measured_at != board.threads and not scaling.fitted
        ends = [(_stored(record, board, e) or (hw,))[0] for e in (scaling.high, scaling.low)] if spread else [hw, hw]
    else:
        hw = board.hardware()
        missing = hw.missing(precision)
        if missing:
            how = (
                f"sqnxt-edge estimate ARTIFACT --device {board.calib_name} --calibrate"
                if board.calib_name
                else "register a board with it (sqnxt-edge devices add) and run sqnxt-edge estimate ARTIFACT "
                "--device BOARD --calibrate"
            )
            raise EstimateError(f"{device}: the profile has no {', '.join(missing)} to estimate from; {how}")
        factors = Factors.reference(precision)
        factors.basis = f"profile {hw.name} only (uncalibrated): {factors.basis.split(': ', 1)[1]}"
        band, band_basis = uncalibrated_band()
        spread = board.profile is not None and board.threads > 1
        ends = [board.hardware(e) for e in (scaling.high, scaling.low)] if spread else [hw, hw]
        if board.calib_name and board.calib_name != "local":
            notes.append(f"calibrate it: sqnxt-edge estimate ARTIFACT --device {board.calib_name} --calibrate")
    if spread:
        band_basis += f"; thread scaling over its range (e = {scaling.low:.2f}-{scaling.high:.2f}: see thread_scaling)"
    if str(model).lower().endswith(".tflite"):
        notes.append("the cost model's factors come from onnxruntime's kernels; TFLite's (XNNPACK) differ")
    costs, total_us = predict(table, hw, factors, precision)
    fast, slow = (predict(table, h, factors, precision)[1] / 1e3 for h in ends)
    low_ms, high_ms = latency_range(min(fast, total_us / 1e3), max(slow, total_us / 1e3), band)
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
        low_ms=low_ms,
        high_ms=high_ms,
        interval_basis=band_basis,
        thread_scaling=scaling.to_dict(),
    )


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

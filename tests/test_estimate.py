"""Estimates with a range and real thread scaling (issue 24): every estimate carries a range, threads scale by the
board's figure (or a fit to calibrations at 1 and N threads), `select` checks the budget against the range's upper end,
and the cost model's per-kernel features (vector blocks, grouped convs, weights in cache) behave as they say.

No timing anywhere: calibrations are written as registry records, measurements are made by the cost model itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sqnxt_edge.devices import PROFILES, Device, add_device, get_calibration, set_calibration
from sqnxt_edge.profiling import estimate, select
from sqnxt_edge.profiling.calibrate import _fit_threads
from sqnxt_edge.profiling.costmodel import Factors, Hardware, fit_totals, predict
from sqnxt_edge.profiling.estimate import board_for
from sqnxt_edge.profiling.interval import ONE_MODEL_BAND, REFERENCE_BAND, calibrated_band
from sqnxt_edge.profiling.layers import model_layers
from sqnxt_edge.profiling.scaling import for_profile

RESULTS = Path(__file__).parent.parent / "benchmarks/estimate/results.json"


def _hw(**kw) -> Hardware:
    figs = dict(peak_gflops_fp32=50.0, peak_gops_int8=100.0, mem_bandwidth_gbs=5.0, layer_overhead_us=2.0)
    figs.update(kw)
    return Hardware("test", kw.pop("threads", 1), **figs)


def _ordered(e) -> bool:
    return 0 < e.low_ms <= e.ms <= e.high_ms


# -- the range ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device, size, precision", [("rpi4", 64, "fp32"), ("rpi5", 32, "int8")])
def test_uncalibrated_estimate_has_an_ordered_range_and_says_what_it_stands_on(reg, device, size, precision):
    e = estimate("1.0-SqNxt-23", device, size, precision, devices_file=reg)
    assert _ordered(e) and e.high_ms > e.low_ms
    assert "reference factors' errors" in e.interval_basis and "thread scaling over its range" in e.interval_basis
    # at 1 thread there is no thread-scaling uncertainty: the range narrows to the model's own band
    one = estimate("1.0-SqNxt-23", device, size, precision, threads=1, devices_file=reg)
    assert _ordered(one) and "thread scaling" not in one.interval_basis
    assert one.high_ms / one.low_ms < e.high_ms / e.low_ms
    assert one.high_ms / one.ms == pytest.approx(1 / (1 + REFERENCE_BAND[0] / 100))


def test_estimate_json_and_table_carry_the_range(cli, reg):
    r = cli("estimate", "1.0-SqNxt-23", "--device", "rpi4", "--input-size", "32", "--devices", reg, "--json")
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["label"] == "estimate" and data["low_ms"] <= data["ms"] <= data["high_ms"]
    assert data["interval_basis"] and data["thread_scaling"]["source"]
    r = cli("estimate", "1.0-SqNxt-23", "--device", "rpi4", "--input-size", "32", "--devices", reg)
    text = " ".join(r.stdout.split())
    assert r.exit_code == 0 and "ESTIMATE, not a measurement" in text and "expected range" in text
    assert f"{data['low_ms']:.3f}-{data['high_ms']:.3f} ms" in text and "range: " in text


def _record(factors: Factors, hw: Hardware, **extra) -> dict:
    f = factors.to_dict()
    f.pop("basis")
    return {
        "basis": "calibrated on a test record",
        "model": "1.0-SqNxt-23",
        "input_size": 32,
        "measured_ms": 1.0,
        "hardware": {k: v for k, v in hw.to_dict().items() if k not in ("name", "sources")},
        "factors": f,
        **extra,
    }


def test_calibrated_range_comes_from_the_residuals(reg):
    add_device(Device(name="pi", host="pi.local", profile="rpi4"), reg)
    hw = board_for("pi", 4, reg).hardware()
    factors = Factors.reference("fp32")
    few = _record(factors, hw, residuals_pct=[-3.0, 2.0], residuals_kind="in-sample", models=1)
    set_calibration("pi", "fp32", few, reg)
    e = estimate("1.0-SqNxt-23", "pi", 32, "fp32", devices_file=reg)
    assert e.calibrated and _ordered(e) and "widened to the one-model calibration's errors" in e.interval_basis
    assert e.high_ms / e.ms == pytest.approx(1 / (1 + ONE_MODEL_BAND[0] / 100))  # few residuals: the floor
    # leave-one-model-out residuals of enough models: the band is theirs alone (narrower here)
    many = [-4.0, -2.0, -1.0, 0.5, 1.0, 2.0, 3.0, 4.0, -3.0, 2.5]
    set_calibration(
        "pi", "fp32", {**few, "residuals_pct": many, "residuals_kind": "leave-one-model-out", "models": 5}, reg
    )
    tight = estimate("1.0-SqNxt-23", "pi", 32, "fp32", devices_file=reg)
    assert _ordered(tight) and "leave-one-model-out residuals" in tight.interval_basis
    lo, hi = np.percentile(many, [5, 95])
    assert tight.low_ms == pytest.approx(tight.ms / (1 + hi / 100)) and tight.high_ms == pytest.approx(
        tight.ms / (1 + lo / 100)
    )
    # in-sample residuals never make the band on their own, however many models
    band, why = calibrated_band(many, 5, "in-sample")
    assert band == (min(ONE_MODEL_BAND[0], lo), max(ONE_MODEL_BAND[1], hi)) and "widened" in why


def test_the_bands_are_the_recorded_benchmark():
    rows = [r for r in json.loads(RESULTS.read_text())["rows"] if not r["calibration_model"]]
    for band, key in ((ONE_MODEL_BAND, "one_model_error_pct"), (REFERENCE_BAND, "uncalibrated_error_pct")):
        assert band == pytest.approx(tuple(np.percentile([r[key] for r in rows], [5, 95])), abs=0.05)


# -- thread scaling -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", ["rpi4", "rpi5", "jetson-nano"])
def test_threads_scale_sublinearly_by_the_boards_figure(reg, profile):
    prof = PROFILES[profile]
    scaling = for_profile(prof)
    assert scaling and 0 < scaling.low <= scaling.efficiency <= scaling.high < 1
    assert prof.figure_sources["thread_speedup"]  # the figure says where it comes from
    one = estimate("1.0-SqNxt-23", profile, 227, "fp32", threads=1, devices_file=reg)
    every = estimate("1.0-SqNxt-23", profile, 227, "fp32", threads=prof.cores, devices_file=reg)
    # the compute peak speeds up by exactly the board's figure at all cores; overhead and shared bandwidth not at all
    peaks = [e.hardware["peak_gflops_fp32"] for e in (one, every)]
    assert peaks[1] / peaks[0] == pytest.approx(prof.thread_speedup[0])
    assert every.hardware["mem_bandwidth_gbs"] == one.hardware["mem_bandwidth_gbs"]
    assert 1 < one.ms / every.ms < prof.thread_speedup[0] < prof.cores
    assert every.thread_scaling["source"].startswith(prof.figure_sources["thread_speedup"])


def test_a_calibration_at_1_and_n_threads_fits_the_scaling(reg):
    """Measurements made by the cost model at a known efficiency: the fit finds it, and estimates then use it."""
    add_device(Device(name="pi", host="pi.local", profile="rpi4"), reg)
    truth_e, factors = 0.55, Factors.reference("fp32")
    tables = [model_layers(m, 32, 10) for m in ("1.0-SqNxt-23", "2.0-SqNxt-23")]
    board = board_for("pi", 4, reg)
    at = {t: board_for("pi", t, reg).hardware(truth_e) for t in (1, 4)}
    ms = {t: {f"{x.model}|32|10": predict(x, at[t], factors, "fp32")[1] / 1e3 for x in tables} for t in (1, 4)}
    first = _record(factors, at[1], ms_by_threads={"1": ms[1]})
    _fit_threads(first, None, [], at[1], "fp32")
    assert "thread_scaling" not in first  # one thread count: nothing to fit
    second = _record(factors, at[4], ms_by_threads={"4": ms[4]})
    _fit_threads(second, first, [], at[4], "fp32")
    fitted = second["thread_scaling"]
    assert fitted["fitted"] and fitted["efficiency"] == pytest.approx(truth_e, abs=1e-4)
    assert set(second["ms_by_threads"]) == {"1", "4"}  # the earlier thread count is kept
    set_calibration("pi", "fp32", second, reg)
    assert get_calibration("pi", "fp32", reg)["thread_scaling"]["fitted"]
    e1 = estimate("2.0-SqNxt-23", "pi", 32, "fp32", threads=1, devices_file=reg)
    assert e1.thread_scaling["fitted"] and e1.ms == pytest.approx(ms[1]["2.0-SqNxt-23|32|10"], rel=1e-3)
    assert "thread scaling" not in e1.interval_basis  # a fitted scaling adds no figure's range
    assert board.scaling.efficiency != pytest.approx(truth_e)  # not the profile's figure


# -- select ---------------------------------------------------------------------------------------------------------


def test_select_checks_the_budget_against_the_upper_end(reg):
    models = ["1.0-SqNxt-23", "2.0-SqNxt-23"]
    wide = select("rpi4", 1e6, "fp32", 32, models=models, devices_file=reg, progress=False)
    fast = min(wide.candidates, key=lambda c: c.latency_ms)
    assert fast.latency_low_ms < fast.latency_ms < fast.latency_high_ms
    between = (fast.latency_ms + fast.latency_high_ms) / 2  # the estimate fits, its range does not
    s = select("rpi4", between, "fp32", 32, models=models, devices_file=reg, progress=False)
    assert not any(c.fits for c in s.candidates)
    s = select("rpi4", fast.latency_high_ms * 1.0001, "fp32", 32, models=models, devices_file=reg, progress=False)
    assert [c.model for c in s.fitting] == [fast.model]
    assert s.to_dict()["candidates"][0]["latency_high_ms"] == fast.latency_high_ms


# -- the cost model's per-kernel features ---------------------------------------------------------------------------


def test_odd_channel_counts_cost_whole_vector_blocks():
    table = model_layers("1.5-SqNxt-23", 32, 10)
    layer = next(x for x in table.layers if x.channels[1] == 12)  # a 1.5x squeeze: 24 -> 12
    assert layer.padded_macs(1, 16) == pytest.approx(layer.macs * 16 / 12)
    assert layer.padded_macs(1, 4) == layer.macs  # 12 fills NEON's 4 lanes exactly
    f = Factors.reference("fp32")
    assert predict(table, _hw(vector_lanes=16), f, "fp32")[1] > predict(table, _hw(), f, "fp32")[1]


def test_a_grouped_conv_no_calibration_saw_runs_as_its_kernel_per_group():
    table = model_layers("1.0-G-SqNxt-23", 32, 10)
    grouped = next(x for x in table.layers if x.kind == "grouped" and x.channels[0] == 64)
    assert grouped.base_kind == "1x1" and grouped.channels == (64, 16, 2)
    assert grouped.padded_macs(1, 16) == pytest.approx(grouped.macs * 16 / 8)  # 8 outputs per group on 16 lanes
    fitted = Factors(
        {"stem": 0.5, "1x1": 0.8, "3x1/1x3": 0.6, "fc": 0.1}, 1.0, 1.0, 0.0, "t", ("stem", "1x1", "3x1/1x3", "fc")
    )
    assert fitted.kind_of(grouped) == "1x1" and Factors.reference("fp32").kind_of(grouped) == "grouped"


def test_weights_that_fit_the_cache_cost_no_memory_time():
    table = model_layers("SqueezeNet-1.1", 32, 10)
    f = Factors.reference("fp32")
    weight_bytes = sum(x.weights for x in table.layers) * 4
    small, big = _hw(cache_mb=weight_bytes / 2**20 / 2), _hw(cache_mb=weight_bytes / 2**20 * 2)
    assert not small.weights_cached(table, "fp32") and big.weights_cached(table, "fp32")
    mem = [sum(c.memory_us for c in predict(table, h, f, "fp32")[0]) for h in (small, big)]
    saved = weight_bytes / (5.0 * 1e3) / f.memory_efficiency
    assert mem[0] - mem[1] == pytest.approx(saved)


@pytest.mark.slow
def test_fit_totals_recovers_factors_from_end_to_end_times():
    hw = _hw(vector_lanes=8)
    truth = Factors(
        {"stem": 0.4, "1x1": 0.9, "3x1/1x3": 0.6, "3x3": 0.7, "fc": 0.05}, 0.8, 1.0, 0.0, "truth", epilogue=0.5
    )
    names = ["1.0-SqNxt-23", "2.0-SqNxt-23", "1.5-SqNxt-34", "1.0-SqNxt-44", "SqueezeNet-1.0", "SqueezeNet-1.1"]
    names += ["1.0-SqNxt-23v5", "2.0-SqNxt-44", "1.5-SqNxt-23"]
    samples = [(t, predict(t, hw, truth, "fp32")[1]) for t in (model_layers(n, 32, 10) for n in names)]
    got = fit_totals(samples, hw, "fp32", "test", overhead_us=1.0, strength=1e-9)
    for table, us in samples:
        assert predict(table, hw, got, "fp32")[1] == pytest.approx(us, rel=1e-3)
    # a strong prior holds the factors near it instead
    held = fit_totals(samples, hw, "fp32", "test", overhead_us=1.0, strength=1e6)
    assert held.efficiency["1x1"] == pytest.approx(Factors.reference("fp32").efficiency["1x1"], rel=1e-3)


# -- calibrate, end to end, with the board's profiles made by the cost model (no timing) ----------------------------


class _FakeProfile:
    """What `calibrate` reads from a profile: per-layer times, the p50, the per-node cost, the run's facts."""

    def __init__(self, table, hw, factors, precision):
        costs, total = predict(table, hw, factors, precision)
        self._us = {c.layer.name: c.us for c in costs}
        self.latency_ms = self.sum_ms = total / 1e3
        self.runtime_nodes, self.dispatch_us, self.threads = [], factors.overhead_us, hw.threads
        self.env, self.runtime, self.precision = {"model": "Cortex-A72"}, "onnxruntime (fake)", precision

    def measured_us(self):
        return dict(self._us)


def _artifact(folder: Path, model: str) -> Path:
    path = folder / f"{model}.fp32.onnx"
    path.write_bytes(b"not loaded")
    meta = {"model_name": model, "input_size": 32, "num_classes": 10, "precision": "fp32"}
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    return path


def _bench_measures_what_the_profile_says(monkeypatch, fake_profile) -> None:
    """calibrate's plain p50s (bench's measurement, on the board) made by the same fake as its profiles."""
    import importlib

    module = importlib.import_module("sqnxt_edge.profiling.calibrate")

    def plain(paths, device, threads, *args):
        return [r.latency_ms for r in fake_profile(paths, device, threads)]

    monkeypatch.setattr(module, "_plain_p50s", plain)


def test_calibrate_at_1_and_4_threads_stores_residuals_and_fits_the_scaling(reg, tmp_path, monkeypatch):
    import importlib

    from sqnxt_edge.profiling import calibrate

    profile_module = importlib.import_module("sqnxt_edge.profiling.profile")  # the package's `profile` is the function

    add_device(Device(name="pi", host="pi.local", profile="rpi4"), reg)
    truth_e = 0.4
    truth = Factors({"stem": 0.5, "1x1": 0.7, "3x1/1x3": 0.6, "fc": 0.1}, 0.9, 3.0, 0.0, "truth", epilogue=0.3)
    models = ["1.0-SqNxt-23", "1.0-SqNxt-23v5", "2.0-SqNxt-23"]
    paths = [_artifact(tmp_path, m) for m in models]

    def fake_profile(artifacts, device, threads, **kw):
        hw = board_for(device, threads, reg).hardware(truth_e)
        return [
            _FakeProfile(model_layers(Path(a).name.split(".fp32")[0], 32, 10), hw, truth, "fp32") for a in artifacts
        ]

    monkeypatch.setattr(profile_module, "profile", fake_profile)
    _bench_measures_what_the_profile_says(monkeypatch, fake_profile)
    first = calibrate(paths, "pi", threads=1, devices_file=reg, progress=False)
    record = get_calibration("pi", "fp32", reg)
    assert record["residuals_kind"] == "leave-one-model-out" and record["models"] == 3
    assert max(abs(r) for r in record["residuals_pct"]) < 1e-6  # the truth is in the model's family
    assert "thread_scaling" not in record and all(_ordered(e) for e in first)
    calibrate(paths, "pi", threads=4, devices_file=reg, progress=False)
    record = get_calibration("pi", "fp32", reg)
    assert set(record["ms_by_threads"]) == {"1", "4"}
    assert record["thread_scaling"]["efficiency"] == pytest.approx(truth_e, abs=1e-4)
    two = estimate("1.0-SqNxt-23", "pi", 32, "fp32", threads=2, devices_file=reg)
    expected = predict(model_layers("1.0-SqNxt-23", 32, 10), board_for("pi", 2, reg).hardware(truth_e), truth, "fp32")
    assert two.calibrated and two.thread_scaling["fitted"] and _ordered(two)
    assert two.ms == pytest.approx(expected[1] / 1e3, rel=1e-4)


def test_calibrate_on_several_models_fits_their_end_to_end_times(reg, tmp_path, monkeypatch):
    """Profiles whose per-layer split is off (a profiler that slows the 1x1 layers) but whose p50s are right: the
    end-to-end fit over the calibration set predicts a model it never saw better than the per-layer fit does."""
    import importlib

    from sqnxt_edge.profiling import CALIBRATION_MODELS, calibrate
    from sqnxt_edge.profiling.calibrate import END_TO_END_MODELS
    from sqnxt_edge.profiling.costmodel import fit

    profile_module = importlib.import_module("sqnxt_edge.profiling.profile")
    add_device(Device(name="pi", host="pi.local", profile="rpi4"), reg)
    assert len(CALIBRATION_MODELS) >= END_TO_END_MODELS
    eff = {"stem": 0.5, "1x1": 0.8, "3x1/1x3": 0.6, "3x3": 0.7, "grouped": 0.3, "fc": 0.1}
    truth = Factors(eff, 0.9, 3.0, 0.0, "truth", epilogue=0.3)
    split = Factors({**eff, "1x1": 0.4}, 0.9, 3.0, 0.0, "what the profiler shows", epilogue=0.3)
    paths = [_artifact(tmp_path, m) for m in CALIBRATION_MODELS]

    class Skewed(_FakeProfile):
        def __init__(self, table, hw):
            super().__init__(table, hw, split, "fp32")
            self.latency_ms = predict(table, hw, truth, "fp32")[1] / 1e3  # the p50 bench would report

    def fake_profile(artifacts, device, threads, **kw):
        hw = board_for(device, threads, reg).hardware()
        return [Skewed(model_layers(Path(a).name.split(".fp32")[0], 32, 10), hw) for a in artifacts]

    monkeypatch.setattr(profile_module, "profile", fake_profile)
    _bench_measures_what_the_profile_says(monkeypatch, fake_profile)
    calibrate(paths, "pi", threads=1, devices_file=reg, progress=False)
    record = get_calibration("pi", "fp32", reg)
    assert record["method"] == "end to end" and record["calibration_models"] == sorted(CALIBRATION_MODELS)
    assert record["residuals_kind"] == "leave-one-model-out" and record["models"] == len(CALIBRATION_MODELS)
    assert "(end to end)" in record["basis"]

    hw = board_for("pi", 1, reg).hardware()
    unseen = model_layers("1.5-SqNxt-34", 32, 10)
    measured = predict(unseen, hw, truth, "fp32")[1] / 1e3
    fitted = estimate("1.5-SqNxt-34", "pi", 32, "fp32", threads=1, devices_file=reg)
    tables = [model_layers(m, 32, 10) for m in CALIBRATION_MODELS]
    per_layer = fit([(t, Skewed(t, hw).measured_us(), 0.0) for t in tables], hw, "fp32", "per layer", 3.0)
    per_layer_ms = predict(unseen, hw, per_layer, "fp32")[1] / 1e3
    assert abs(fitted.ms - measured) < 0.5 * abs(per_layer_ms - measured)
    assert abs(fitted.ms - measured) / measured < 0.05 and _ordered(fitted)


@pytest.mark.slow
def test_estimate_calibrate_exports_zoo_models_and_says_what_it_fitted(cli, reg, tmp_path, monkeypatch):
    """`estimate --calibrate MODEL...` exports the zoo models once (cached), profiles them on the device and prints one
    table of measured p50 beside the calibrated estimate; a second call reuses the exports."""
    monkeypatch.setenv("SQNXT_EDGE_CACHE", str(tmp_path / "cache"))
    args = ["estimate", "--calibrate", "SqueezeNet-1.1", "1.0-SqNxt-23", "1.0-G-SqNxt-23", "-s", "32", "-p", "fp32"]
    args += ["--runs", "5", "-t", "1", "--devices", str(reg)]
    first = cli(*args)
    assert first.exit_code == 0, first.output
    exported = sorted(p.name for p in (tmp_path / "cache/calibration").rglob("*.onnx"))
    assert exported == ["1.0-G-SqNxt-23.fp32.onnx", "1.0-SqNxt-23.fp32.onnx", "SqueezeNet-1.1.fp32.onnx"]
    assert "measured p50 ms" in first.output and "(end to end)" in first.output
    assert "[calibration.local.fp32]" in first.output  # printed as text, not eaten as markup
    stored = get_calibration("local", "fp32", reg)
    assert stored["method"] == "end to end" and len(stored["ms_by_threads"]["1"]) == 3
    again = cli(*args)
    assert again.exit_code == 0 and "exporting" not in again.output
    bad = cli("estimate", "--calibrate", "no-such-net", "--devices", str(reg))
    assert bad.exit_code != 0 and "Traceback" not in bad.output and len(bad.output.strip().splitlines()) == 1

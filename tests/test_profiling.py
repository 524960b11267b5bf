"""Per-layer profiles, the cost model, calibration in the registry, select, and bench's estimate for boards it cannot
measure. Real exports and real onnxruntime profiles; boards are a loopback sshd and a devices.toml entry pointing at
a closed port."""

from __future__ import annotations

import importlib
import json
import shutil
import statistics
import sys
from pathlib import Path

import pytest

from sqnxt_edge import runner
from sqnxt_edge.devices import (
    PROFILES,
    Device,
    add_device,
    get_calibration,
    load_calibrations,
    remove_device,
    render_toml,
    set_calibration,
)
from sqnxt_edge.errors import DeviceError, SqnxtError
from sqnxt_edge.layer_names import short_scope
from sqnxt_edge.profiling import (
    EstimateError,
    Factors,
    ProfileError,
    calibrate,
    estimate,
    model_layers,
    profile,
    select,
)
from sqnxt_edge.profiling.costmodel import Hardware, fit, predict
from sqnxt_edge.profiling.layers import module_path
from sqnxt_edge.profiling.report import plot_pareto, plot_profile

sys.path.insert(0, str(Path(__file__).parent))
from builders import write_tiny_onnx
from needs import mark
from sshd import LoopbackSshd, find_sshd, free_port

RUNTIME_OPS = {"ReorderInput", "ReorderOutput", "Transpose", "QuantizeLinear", "DequantizeLinear", "Flatten"}


# -- the model's layers and the names the export keeps --------------------------------------------------------


@pytest.mark.parametrize(
    "node, path",
    [
        ("/stages/stages.0/stages.0.0/reduce1/reduce1.0/Conv", "stages.0.0.reduce1.0"),
        ("/stem/stem.0/stem.0.2/Relu_output_0_nchwc", "stem.0.2"),  # onnxruntime's fused Conv+Relu (NCHWc)
        ("/stages/stages.3/stages.3.0/sep2/sep2.0/Conv_token_368", "stages.3.0.sep2.0"),  # a fused int8 QLinearConv
        ("/stages/stages.1/stages.1.2/Add", "stages.1.2"),
        ("/features/features.3/expand3x3/expand3x3.0/Conv", "features.3.expand3x3.0"),
        ("ReorderOutput_token_270", ""),
        ("/Flatten", ""),
    ],
)
def test_module_path_reads_the_exporter_scopes(node, path):
    assert module_path(node) == path
    # the int8 quantizer shortens node names with the same helper: the profiler maps them to the same layer
    assert module_path(short_scope(node)) == path and len(short_scope(node)) <= len(node)


def test_layer_table_matches_the_models_figures():
    t = model_layers("1.0-SqNxt-23", 227, 1000)
    assert t.macs == 277_999_808 and t.params == 717_280  # the spec's and `sqnxt-edge models`' figures
    stem = t.get("stem.0")
    assert stem.kind == "stem" and stem.macs == 115_915_968  # 42% of the MACs, as the spec says
    assert [l.name for l in t.layers[:3]] == ["stem.0", "stem.1", "stages.0.0.proj"]
    kinds = {l.kind for l in t.layers}
    assert kinds == {"stem", "pooling", "1x1", "3x1/1x3", "residual add", "fc"}
    assert sum(l.kind == "residual add" for l in t.layers) == 21 and t.get("fc").macs == 128_000
    assert t.layer_of("/stages/stages.0/stages.0.0/act/Relu") == "stages.0.0.add"
    assert t.layer_of("/stages/stages.0/stages.0.0/Add") == "stages.0.0.add"
    assert t.layer_of("/head/head.2/Relu_output_0_nchwc") == "head"
    assert t.layer_of("ReorderOutput") is None
    s = model_layers("SqueezeNet-1.1", 32, 10)
    assert {"3x3", "concat"} <= {l.kind for l in s.layers}
    assert s.layer_of("/features/features.1/Relu_output_0_nchwc") == "features.0"  # the stem conv's own ReLU
    assert s.layer_of("/features/features.3/Concat") == "features.3.concat"


# -- the cost model --------------------------------------------------------------------------------------------


def _hw(**kw) -> Hardware:
    figs = dict(peak_gflops_fp32=50.0, peak_gops_int8=100.0, mem_bandwidth_gbs=5.0, layer_overhead_us=2.0)
    figs.update(kw)
    return Hardware("test", 1, **figs)


def test_fit_recovers_the_factors_that_made_the_times():
    table = model_layers("1.0-SqNxt-23", 32, 10)
    truth = Factors({"stem": 0.3, "1x1": 0.6, "3x1/1x3": 0.4, "fc": 0.05}, 0.5, 4.0, 0.1, "truth", epilogue=0.7)
    costs, total = predict(table, _hw(), truth, "fp32")
    measured = {c.layer.name: c.us for c in costs}
    got = fit([(table, measured, 0.1 * sum(measured.values()))], _hw(), "fp32", "test")
    for kind, value in truth.efficiency.items():
        assert got.efficiency[kind] == pytest.approx(value, rel=1e-6)
    assert got.memory_efficiency == pytest.approx(0.5, rel=1e-6) and got.overhead_us == pytest.approx(4.0, rel=1e-6)
    assert got.epilogue == pytest.approx(0.7, rel=1e-6)
    fixed = fit([(table, measured, 0.0)], _hw(), "fp32", "test", overhead_us=4.0)  # a measured overhead
    assert fixed.overhead_us == 4.0 and fixed.efficiency["1x1"] == pytest.approx(0.6, rel=1e-6)
    assert predict(table, _hw(), got, "fp32")[1] == pytest.approx(total, rel=1e-6)
    # a kind the calibration never saw (3x3) falls back to its reference value, scaled like the fitted kinds
    assert got.eff("3x3", "fp32") > 0


def test_compute_scales_with_peak_and_memory_with_bandwidth():
    table = model_layers("1.0-SqNxt-23", 227, 1000)
    f = Factors(dict.fromkeys(("stem", "1x1", "3x1/1x3", "fc"), 0.5), 1.0, 0.0, 0.0, "test")
    base = predict(table, _hw(), f, "fp32")[1]
    compute_only = predict(table, _hw(mem_bandwidth_gbs=None), f, "fp32")[1]
    assert predict(table, _hw(peak_gflops_fp32=100.0, mem_bandwidth_gbs=None), f, "fp32")[1] == pytest.approx(
        compute_only / 2
    )
    assert compute_only < base
    # int8 moves a quarter of the bytes and runs at the int8 peak
    assert predict(table, _hw(), f, "int8")[1] < base


def test_reference_factors_are_the_recorded_fit():
    from sqnxt_edge.profiling.costmodel import REFERENCE

    recorded = json.loads((Path(__file__).parent.parent / "benchmarks/estimate/reference.json").read_text())
    for precision, fitted in recorded["factors"].items():
        ref = REFERENCE[precision]
        for kind, value in fitted["efficiency"].items():
            assert ref["efficiency"][kind] == pytest.approx(value, abs=1e-3), (precision, kind)
        assert ref["memory_efficiency"] == pytest.approx(fitted["memory_efficiency"], abs=1e-3)
        assert ref["overhead_us"] == pytest.approx(fitted["overhead_us"], abs=1e-2)
        assert ref["other"] == pytest.approx(fitted["other"], abs=1e-4)
        assert ref["epilogue"] == pytest.approx(fitted["epilogue"], abs=1e-3)


def test_every_profile_figure_has_a_source():
    for prof in PROFILES.values():
        for key in ("peak_gflops_fp32", "peak_gops_int8", "mem_bandwidth_gbs", "layer_overhead_us"):
            if getattr(prof, key) is not None:
                assert prof.figure_sources.get(key), f"{prof.name}.{key} has no source"


# -- estimates on profiles and registered boards ----------------------------------------------------------------


def test_profile_only_estimate_is_labelled_with_its_sources(reg):
    e = estimate("1.0-SqNxt-23", "rpi4", 227, "fp32", devices_file=reg)
    assert not e.calibrated and e.basis.startswith("profile rpi4 only (uncalibrated)")
    # 4 threads: the per-core peak times the board's thread speed-up, not 4 full cores (profiling/scaling.py)
    per_core, speedup = PROFILES["rpi4"].peak_gflops_fp32 / 4, PROFILES["rpi4"].thread_speedup[0]
    assert e.threads == 4 and e.hardware["peak_gflops_fp32"] == pytest.approx(per_core * speedup)
    assert "sci-pi.org.uk" in e.hardware["sources"]["mem_bandwidth_gbs"]
    assert sum(l["us"] for l in e.layers) * (1 + e.factors["other"]) / 1e3 == pytest.approx(e.ms)
    one = estimate("1.0-SqNxt-23", "rpi4", 227, "fp32", threads=1, devices_file=reg)
    assert one.hardware["peak_gflops_fp32"] == per_core and one.ms > e.ms
    assert estimate("1.0-SqNxt-23", "rpi5", 227, "int8", devices_file=reg).ms < e.ms


@pytest.mark.parametrize(
    "device, match",
    [
        ("generic-arm64", "no peak_gflops_fp32, mem_bandwidth_gbs to estimate from; register a board"),
        ("nope", "unknown device or profile 'nope'"),
    ],
)
def test_estimate_refuses_without_figures(reg, device, match):
    with pytest.raises(EstimateError, match=match) as info:
        estimate("1.0-SqNxt-23", device, 32, devices_file=reg)
    assert "\n" not in str(info.value)


def test_estimate_cli_json_and_table(cli, reg):
    r = cli(
        "estimate",
        "2.0-SqNxt-23v5",
        "--device",
        "rpi4",
        "--input-size",
        "32",
        "--precision",
        "int8",
        "--devices",
        reg,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["label"] == "estimate" and data["precision"] == "int8" and data["input_size"] == 32
    assert data["ms"] > 0 and set(data["by_stage"]) >= {"stem", "stage1", "head"}
    r = cli("estimate", "1.0-SqNxt-23", "--device", "rpi4", "--devices", reg)
    assert r.exit_code == 0 and "ESTIMATE, not a measurement" in r.stdout and "derived" in r.stdout
    r = cli("estimate", "1.0-SqNxt-99", "--device", "rpi4", "--devices", reg)
    assert r.exit_code == 1 and "unknown model" in r.stderr and "Traceback" not in r.stderr


# -- calibrations in the registry -------------------------------------------------------------------------------


def test_calibrations_live_in_the_registry_and_survive_rewrites(reg):
    reg.write_text("# my boards\n")
    add_device(Device(name="pi", host="pi.local", profile="rpi4"), reg)
    record = {
        "basis": "calibrated on x",
        "model": "1.0-SqNxt-23",
        "input_size": 227,
        "measured_ms": 40.5,
        "hardware": {"threads": 4, "peak_gflops_fp32": 48.0, "mem_bandwidth_gbs": 5.5},
        "factors": {
            "efficiency": {"1x1": 0.4, "3x1/1x3": 0.3},
            "memory_efficiency": 0.8,
            "overhead_us": 6.0,
            "other": 0.05,
            "fitted": ["1x1", "3x1/1x3"],
        },
    }
    set_calibration("pi", "fp32", record, reg)
    set_calibration("local", "int8", {**record, "measured_ms": 3.0}, reg)
    assert reg.read_text().startswith("# my boards")  # appended: the user's comments stay
    assert get_calibration("pi", "fp32", reg) == record and get_calibration("pi", "int8", reg) is None
    set_calibration("pi", "fp32", {**record, "measured_ms": 41.0}, reg)  # replaced in place
    assert get_calibration("pi", "fp32", reg)["measured_ms"] == 41.0
    add_device(Device(name="pi", host="other.local", profile="rpi4"), reg, force=True)
    assert get_calibration("pi", "fp32", reg)["measured_ms"] == 41.0
    e = estimate("1.0-SqNxt-23", "pi", 227, "fp32", devices_file=reg)
    assert e.calibrated and e.basis == "calibrated on x" and e.hardware["peak_gflops_fp32"] == 48.0
    remove_device("pi", reg)
    assert set(load_calibrations(reg)) == {"local"}
    with pytest.raises(DeviceError, match="unknown device 'ghost'"):
        set_calibration("ghost", "fp32", record, reg)


# -- select ------------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_select_ranks_what_fits_by_published_accuracy(reg, tmp_path):
    models = ["1.0-SqNxt-23", "2.0-SqNxt-23", "1.0-SqNxt-23v5", "1.5-SqNxt-23", "SqueezeNet-1.1"]
    wide = select("rpi4", 1e6, "fp32", 227, models=models, devices_file=reg, progress=False)
    assert all(c.fits for c in wide.candidates)
    assert [c.model for c in wide.candidates][:3] == ["2.0-SqNxt-23", "1.0-SqNxt-23v5", "1.0-SqNxt-23"]
    assert wide.candidates[0].top1 == 67.18 and "arXiv 1803.10615" in wide.candidates[0].accuracy_source
    unknown = next(c for c in wide.candidates if c.model == "1.5-SqNxt-23")
    assert unknown.top1 is None and unknown.accuracy_source == "unknown"  # never invented
    fastest = min(c.latency_high_ms for c in wide.candidates)  # an estimate fits when its range's upper end does
    tight = select("rpi4", fastest * 1.0001, "any", 227, models=models, devices_file=reg, progress=False)
    assert [c.fits for c in tight.candidates].count(True) >= 1 and tight.candidates[0].fits
    assert all(c.latency_high_ms <= fastest * 1.0001 for c in tight.fitting)
    assert {c.precision for c in tight.candidates} == {"fp32", "int8"}
    small = select("rpi4", 1e6, "int8", 32, models=models, devices_file=reg, progress=False)
    assert small.dataset == "cifar10" and small.candidates[0].top1 == 93.1
    assert plot_pareto(wide, tmp_path / "pareto.png").stat().st_size > 10_000
    with pytest.raises(SqnxtError, match="--precision must be one of"):
        select("rpi4", 10, "bf16", models=models, devices_file=reg)


@pytest.mark.slow
@pytest.mark.parametrize("size", [32, 64, 227])
def test_select_covers_the_whole_zoo_at_every_size(size, reg, cli):
    from sqnxt_edge.models import list_models

    s = select("rpi4", 50, "any", size, devices_file=reg, progress=False)
    listed = {c.model for c in s.candidates}
    skipped = {k.model: k.reason for k in s.skipped}
    assert listed | set(skipped) == set(list_models()) and not listed & set(skipped)
    assert all(reason and "\n" not in reason for reason in skipped.values())
    assert all({c.precision for c in s.candidates if c.model == m} == {"fp32", "int8"} for m in listed)
    seeds = {m for m in list_models() if m.startswith("seed-")}
    assert seeds and (seeds <= set(skipped) if size == 227 else seeds <= listed)  # the seeds' stems: 32 or 64 px
    if size == 227:
        assert "takes 32 px (cifar stem) or 64 px (tiny stem) only" in skipped["seed-SqNxt-23-1x"]
    assert len(skipped) < len(list_models()) / 2  # the paper's variants build at every one of these sizes
    # the CLI (the layer tables are cached in this process now): JSON and table say the same
    r = cli("select", "--device", "rpi4", "--budget-ms", "50", "--input-size", size, "--devices", reg, "--json")
    assert r.exit_code == 0, r.stderr
    got = json.loads(r.stdout)
    assert {k["model"]: k["reason"] for k in got["skipped"]} == skipped
    assert {c["model"] for c in got["candidates"]} == listed
    r = cli("select", "--device", "rpi4", "--budget-ms", "50", "--input-size", size, "--devices", reg)
    assert r.exit_code == 0, r.stderr
    assert all(f"skipped {m}: {why}" in " ".join(r.stdout.split()) for m, why in skipped.items())


def test_select_says_what_it_skipped_and_why(reg):
    models = ["seed-SqNxt-23-1x", "SqueezeNet-1.0", "SqueezeNet-cifar"]
    s = select("rpi4", 1e6, "fp32", 16, models=models, devices_file=reg, progress=False)
    assert [c.model for c in s.candidates] == ["SqueezeNet-cifar"]
    skipped = {k.model: k.reason for k in s.skipped}
    assert "not 16 px" in skipped["seed-SqNxt-23-1x"]  # the builder's own reason
    assert skipped["SqueezeNet-1.0"].startswith("does not build at 16 px: ")  # torch's: a map shrinks to nothing
    with pytest.raises(SqnxtError, match="unknown model 'ghost'"):  # a typo is an error, not a skip
        select("rpi4", 10, "fp32", 32, models=["ghost"], devices_file=reg, progress=False)


# -- the runner's profiling mode and profiles of real exports ---------------------------------------------------


def test_runner_profile_mode_returns_raw_per_node_times(tmp_path, capsys):
    path = write_tiny_onnx(tmp_path / "tiny.onnx", batch=1, metadata=False, node_names=True)
    code = runner.main(
        [
            "--one",
            "--profile",
            "--runtime",
            "onnxruntime",
            "--threads",
            "1",
            "--warmup",
            "2",
            "--runs",
            "7",
            "--min-seconds",
            "0",
            str(path),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["latency_ms"]["p50"] > 0
    prof = out["profile"]
    assert len(prof["e2e_us"]) == 7 and prof["profiler"].startswith("onnxruntime")
    assert {n["name"] for n in prof["nodes"]} == {"/pool/ReduceMean", "/fc/MatMul"}
    assert all(len(n["us"]) == 7 for n in prof["nodes"])
    assert "--profile" in runner.Settings(profile=True).to_argv() and "--profile" not in runner.Settings().to_argv()


def test_profile_refuses_tflite_in_one_line(tmp_path):
    art = tmp_path / "m.tflite"
    art.write_bytes(b"TFL3")
    with pytest.raises(ProfileError, match="exposes no op profiler") as info:
        profile([art], progress=False)
    assert "\n" not in str(info.value)


@pytest.fixture(scope="session")
def sqnxt_exports(tmp_path_factory):
    """1.0-SqNxt-23 at 32 px (random weights) through the real export, as `estimate --calibrate` makes its files: ONNX
    fp32 + int8 (onnxsim, QDQ)."""
    from sqnxt_edge.pipeline import zoo_artifacts

    files = zoo_artifacts(["1.0-SqNxt-23"], [32], folder=tmp_path_factory.mktemp("profiled"))
    return {precision: path for (_, _, precision), path in files.items()}


@pytest.mark.slow
def test_profile_maps_every_node_to_its_layer_fp32_and_int8(sqnxt_exports, tmp_path):
    results = profile([sqnxt_exports["fp32"], sqnxt_exports["int8"]], threads=1, runs=20, progress=False)
    table = model_layers("1.0-SqNxt-23", 32, 10)
    for r in results:
        assert r.model == "1.0-SqNxt-23" and r.floor_us > 0 and r.runs == 20
        convs = [l for l in r.layers if l.macs]
        assert all(l.nodes >= 1 and l.us > 0 for l in convs), [l.name for l in convs if not l.nodes]
        assert {n.name for n in r.runtime_nodes} <= RUNTIME_OPS  # only the runtime's own nodes stay unmapped
        assert [l.name for l in r.layers] == [l.name for l in table.layers]
        assert sum(l.share for l in r.layers + r.runtime_nodes) == pytest.approx(1.0)
        assert sum(r.by_stage.values()) == pytest.approx(1.0) and sum(r.by_kind.values()) == pytest.approx(1.0)
        assert r.stem_macs_share == pytest.approx(1_769_472 / table.macs)
        assert all(l.gflops and l.gflops > 0 for l in convs)
    assert results[1].precision == "int8" and "QuantizeLinear" in {n.name for n in results[1].runtime_nodes}
    assert plot_profile(results, tmp_path / "p.png").stat().st_size > 10_000


@pytest.mark.slow
def test_profile_sum_agrees_with_end_to_end(sqnxt_exports, cli, monkeypatch):
    """The per-layer sum accounts for the whole run: no layer lost, none counted twice, beside any load. Load only
    adds time, so the fastest plain run is the model's own time under any load: the sum must reach 70% of it (a lost
    large layer fails), and stay within 130% of the median plain run interleaved with the profiled ones (a doubled
    one fails). How close the two come on an idle CPU is a benchmark figure (benchmarks/estimate: 90% of 108 artifacts
    within 15%), not a unit test's; beside a load of 13 on 2 cores the sum was 0.83-1.07x the fastest run while the
    median run was 1.1-6x the sum."""
    folding = importlib.import_module("sqnxt_edge.profiling.profile")
    raw, fold = [], folding._fold
    monkeypatch.setattr(folding, "_fold", lambda result, *a, **k: raw.append(result) or fold(result, *a, **k))
    r = cli("profile", sqnxt_exports["fp32"], "--threads", "1", "--runs", "40", "--json")
    assert r.exit_code == 0, r.stderr
    (res,) = json.loads(r.stdout)
    (e2e_us,) = [result["profile"]["e2e_us"] for result in raw]
    fastest, median = min(e2e_us) / 1e3, statistics.median(e2e_us) / 1e3
    assert len(e2e_us) == 40 and res["e2e_ms"] == pytest.approx(median)
    assert res["agreement_pct"] == pytest.approx(100 * (res["sum_ms"] - median) / median)
    assert 0.7 * fastest <= res["sum_ms"] <= 1.3 * median, (res["sum_ms"], fastest, median)


@pytest.mark.slow
def test_profile_pinned_to_a_core_runs_there(sqnxt_exports, cli):
    """`profile --cores 0`: the runner pins itself before onnxruntime starts, one thread per pinned core, and the
    result says where it ran (the kernel's affinity, not the request)."""
    r = cli("profile", sqnxt_exports["fp32"], "--cores", "0", "--runs", "5", "--json")
    assert r.exit_code == 0, r.stderr
    (res,) = json.loads(r.stdout)
    assert res["cores"] == [0] and res["threads"] == 1
    table = cli("profile", sqnxt_exports["fp32"], "--cores", "0", "--runs", "5")
    assert table.exit_code == 0 and "1 thread(s) on cores 0" in table.stdout


@pytest.mark.slow
def test_calibrate_stores_factors_and_the_estimate_then_stands_on_them(sqnxt_exports, reg, monkeypatch):
    (e,) = calibrate(sqnxt_exports["int8"], "local", threads=1, runs=20, devices_file=reg, progress=False)
    stored = get_calibration("local", "int8", reg)
    assert stored["model"] == "1.0-SqNxt-23" and stored["input_size"] == 32 and stored["measured_ms"] > 0
    assert e.calibrated and e.measured_ms == stored["measured_ms"] and e.basis.startswith("calibrated on 1.0-SqNxt-23")
    assert abs(stored["fit_error_pct"]) < 25  # the fitted model reproduces its own measurement
    later = estimate("1.0-SqNxt-23v5", "local", 32, "int8", threads=1, devices_file=reg)
    assert later.calibrated and later.basis == e.basis
    assert not estimate("1.0-SqNxt-23", "local", 32, "fp32", threads=1, devices_file=reg).calibrated
    monkeypatch.setenv(runner.EMULATION_VAR, json.dumps({"profile": "rpi4"}))  # an emulator's timings teach nothing
    with pytest.raises(EstimateError, match="emulated: its timings are the emulator's"):
        calibrate(sqnxt_exports["fp32"], "local", threads=1, runs=5, devices_file=reg, progress=False)
    assert get_calibration("local", "fp32", reg) is None


# -- boards: over SSH, unreachable, emulated ----------------------------------------------------------------------

needs_sshd = mark(
    "ssh",
    find_sshd() is not None and shutil.which("ssh") is not None,
    "needs OpenSSH (apt-get install openssh-server openssh-client)",
)


@needs_sshd
@pytest.mark.slow
@pytest.mark.ssh
def test_profile_runs_on_a_board_through_the_runner(sqnxt_exports, tmp_path):
    server = LoopbackSshd(tmp_path / "sshd").start()
    try:
        devices = tmp_path / "devices.toml"
        (tmp_path / "remote").mkdir()
        devices.write_text(server.device_toml("board", workdir=str(tmp_path / "remote"), threads=1))
        (r,) = profile([sqnxt_exports["int8"]], "board", runs=10, devices_file=devices, progress=False)
    finally:
        server.stop()
    assert r.device == "board" and r.artifact == str(sqnxt_exports["int8"]) and r.threads == 1
    assert all(l.nodes for l in r.layers if l.macs) and r.env["device"]["name"] == "board"
    assert list((tmp_path / "remote").iterdir()) == []


def _fake_artifact(folder: Path, precision: str = "int8") -> Path:
    """An exported file as far as an estimate cares: its metadata (the model is never loaded for an estimate)."""
    path = folder / f"1.0-SqNxt-23.{precision}.onnx"
    path.write_bytes(b"not loaded")
    meta = {"model_name": "1.0-SqNxt-23", "input_size": 32, "num_classes": 10, "precision": precision}
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    return path


def test_bench_on_an_unreachable_board_offers_a_labelled_estimate(cli, tmp_path):
    devices = tmp_path / "devices.toml"
    devices.write_text(
        render_toml(
            Device(name="gone", host="127.0.0.1", port=free_port(), profile="rpi4", connect_timeout=3, timeout=20)
        )
    )
    art = _fake_artifact(tmp_path)
    r = cli("bench", art, "--device", "gone", "--devices", devices)
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    assert "ESTIMATE, not a measurement on gone" in r.stdout and "profile gone (rpi4) only" in r.stdout
    assert r.stderr.strip().splitlines()[-1].startswith("error: device 'gone'")
    r = cli("bench", art, "--device", "gone", "--devices", devices, "--json")
    data = json.loads(r.stdout)
    assert r.exit_code == 1 and data["measured"] is False and data["error"].startswith("device 'gone'")
    (est,) = data["estimates"]
    assert est["precision"] == "int8" and est["ms"] > 0 and est["basis"].startswith("profile gone (rpi4) only")
    assert est["artifact"] == str(art)


def test_run_bench_gives_the_estimate_with_the_error(tmp_path):
    """The library decides what to offer for a board it cannot measure; the CLI only prints it."""
    from sqnxt_edge.bench import BenchConfig, BoardUnreachable, run_bench

    devices = tmp_path / "devices.toml"
    devices.write_text(render_toml(Device(name="gone", host="127.0.0.1", port=free_port(), profile="rpi4")))
    art = _fake_artifact(tmp_path)
    with pytest.raises(BoardUnreachable, match="device 'gone'") as err:
        run_bench([art], BenchConfig(device="gone", devices_file=devices), progress=False)
    offer = err.value.estimates
    assert offer["label"] == "ESTIMATE, not a measurement" and offer["device"] == "gone"
    assert [e["artifact"] for e in offer["estimates"]] == [str(art)] and offer["estimates"][0]["ms"] > 0


@pytest.mark.slow
def test_bench_on_an_emulated_board_adds_the_estimate(tmp_path, monkeypatch):
    """Until the emulated board exists, the runner's own marker stands in: an environment marked emulated."""
    from sqnxt_edge.bench import BenchConfig, run_bench
    from sqnxt_edge.bench.report import to_json

    art = write_tiny_onnx(tmp_path / "tiny.onnx", batch=1, metadata=False, node_names=True)
    fake = _fake_artifact(tmp_path)
    monkeypatch.setenv(runner.EMULATION_VAR, json.dumps({"profile": "rpi4", "qemu": "cortex-a72"}))
    run = run_bench([art], BenchConfig(threads=1, warmup=1, runs=3, min_seconds=0), progress=False)
    assert run.emulated and run.estimates["device"] == "rpi4" and run.estimates["estimates"] == []
    (why,) = run.estimates["problems"]  # tiny.onnx names no zoo model: said, not guessed
    assert why.startswith("tiny.onnx: its metadata lacks")
    assert "estimates" in json.loads(to_json(run))
    from sqnxt_edge.bench import board_estimates

    offer = board_estimates([fake], BenchConfig(threads=2), run.env)
    (est,) = offer["estimates"]
    assert est["device"] == "rpi4" and est["threads"] == 2 and offer["label"].startswith("ESTIMATE")
    monkeypatch.delenv(runner.EMULATION_VAR)
    plain = run_bench([art], BenchConfig(threads=1, warmup=1, runs=3, min_seconds=0), progress=False)
    assert not plain.emulated and "estimates" not in json.loads(to_json(plain))

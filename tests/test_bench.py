"""`sqnxt-edge bench` and `run_bench`: the package side (PyTorch baseline, discovery, data, reports)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sqnxt_edge.bench import BenchConfig, BenchRun, report, run_bench, stats
from sqnxt_edge.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sqnxt_edge.data import load_dataset, preprocess, resize_uint8
from sqnxt_edge.errors import BenchError
from sqnxt_edge.models import create_model
from sqnxt_edge.runner import installed, open_model, topk_accuracy

from needs import mark
from test_runner import export_onnx

FAST = dict(warmup=0, runs=3, min_seconds=0.0, threads=1)
ONNX_ENGINES = ["onnxruntime"] + (["openvino"] if installed("openvino") else [])  # what runtime=auto measures
FAST_CLI = ["--warmup", "0", "--runs", "3", "--min-seconds", "0", "--threads", "1"]
RESULT_KEYS = {
    "artifact",
    "format",
    "precision",
    "runtime",
    "threads",
    "batch",
    "size_bytes",
    "init_ms",
    "first_ms",
    "latency_ms",
    "throughput_ips",
    "peak_rss_mb",
    "model_peak_rss_mb",
    "env",
    "speedup",
}


@pytest.fixture(scope="session")
def small(tmp_path_factory) -> dict[str, Path]:
    """A throwaway digits-shaped 1.0-SqNxt-23 checkpoint and its ONNX."""
    folder = tmp_path_factory.mktemp("bench-models")
    torch.manual_seed(0)
    model = create_model("1.0-SqNxt-23", 10, 32).eval()
    ckpt = Checkpoint(
        "1.0-SqNxt-23",
        10,
        32,
        classes=[str(i) for i in range(10)],
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        dataset="digits",
        state_dict=model.state_dict(),
    )
    pt = save_checkpoint(ckpt, folder / "best.pt")
    return {"pt": pt, "onnx": export_onnx(model, folder / "model.onnx")}


@pytest.fixture(scope="session")
def measured(small, tmp_path_factory) -> BenchRun:
    missing = tmp_path_factory.mktemp("nothing") / "missing.onnx"
    return run_bench([small["onnx"], small["pt"], missing], BenchConfig(samples=True, **FAST), progress=False)


def test_run_bench_measures_onnx_and_pytorch_baseline(measured, small):
    rows = [(Path(r["artifact"]).name, r["runtime"]) for r in measured.results]
    assert rows == [("model.onnx", e) for e in ONNX_ENGINES] + [("best.pt", "torch")]
    assert len(measured.errors) == 1 and "not found" in measured.errors[0]["error"] and not measured.ok
    onnx, pt = measured.results[0], measured.results[-1]
    for r in measured.results:
        assert set(r) >= RESULT_KEYS, RESULT_KEYS - set(r)
        assert r["threads"] == 1 and r["batch"] == 1 and len(r["samples_ms"]) >= 3
        assert r["env"]["cores"] >= 1
        # the model's share is the child's peak above the bare runtime's (measured in its own child first)
        bare = measured.baseline[r["runtime"]]["peak_rss_mb"]
        assert 0 < bare < r["peak_rss_mb"] and r["model_peak_rss_mb"] == pytest.approx(r["peak_rss_mb"] - bare)
    assert pt["format"] == "pytorch" and pt["runtime"] == "torch" and pt["speedup"] == 1.0
    assert onnx["runtime"] == "onnxruntime" and measured.reference == str(small["pt"])
    assert onnx["speedup"] == pytest.approx(pt["latency_ms"]["p50"] / onnx["latency_ms"]["p50"])
    assert onnx["pid"] != pt["pid"] != os.getpid()
    assert set(measured.baseline) == {*ONNX_ENGINES, "torch"}
    json.dumps(measured.to_dict())  # serializable as is


def test_writers(measured, tmp_path):
    js = json.loads(report.write_report(measured, tmp_path / "r.json").read_text())
    names = ["model.onnx"] * len(ONNX_ENGINES) + ["best.pt"]
    assert [Path(r["artifact"]).name for r in js["results"]] == names and js["errors"]
    rows = list(csv.DictReader(io.StringIO(report.write_report(measured, tmp_path / "r.csv").read_text())))
    assert [r["name"] for r in rows] == [*names, "missing.onnx"]
    assert float(rows[0]["p50"]) == pytest.approx(measured.results[0]["latency_ms"]["p50"])
    assert "not found" in rows[-1]["error"]
    md = report.write_report(measured, tmp_path / "r.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith(("| model.onnx", "| best.pt"))]
    assert len(table) == len(names) and "1.00x" in table[-1] and "missing.onnx" in md
    with pytest.raises(BenchError):
        report.write_report(measured, tmp_path / "r.txt")
    assert not (tmp_path / "r.txt").exists()


def test_plot_is_a_png(measured, tmp_path):
    path = report.plot_latency(measured, tmp_path / "lat.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_stats_speedups_and_median_ci():
    results = [
        {"artifact": "a", "format": "onnx", "batch": 1, "latency_ms": {"p50": 2.0, "std": 0.1}},
        {"artifact": "b", "format": "onnx", "batch": 1, "latency_ms": {"p50": 4.0, "std": 0.1}},
    ]
    assert stats.add_speedups(results) == "b"  # no PyTorch baseline: relative to the slowest
    assert [r["speedup"] for r in results] == [2.0, 1.0]
    lo, hi = stats.median_ci(list(range(101)))
    assert lo < 50 < hi
    assert stats.agree({"latency_ms": {"p50": 1.0, "std": 0.2}}, {"latency_ms": {"p50": 1.1, "std": 0.05}})


def test_data_accuracy_equals_eval_style_computation(small):
    run = run_bench([small["onnx"], small["pt"]], BenchConfig(data="digits", **FAST), progress=False)
    assert run.ok, run.errors
    onnx, pt = run.results[0], run.results[-1]
    test = load_dataset("digits", split="test")
    ckpt = load_checkpoint(small["pt"])
    with torch.no_grad():
        logits = ckpt.build_model()(preprocess(test.images, 32, ckpt.mean, ckpt.std)).numpy()
    expect = float(np.mean(logits.argmax(1) == test.labels))
    assert pt["top1"] == pytest.approx(expect) and pt["n"] == len(test)
    ort = open_model(str(small["onnx"])).predict(resize_uint8(test.images, 32))
    assert onnx["top1"] == topk_accuracy(ort, test.labels)["top1"]
    assert abs(onnx["top1"] - pt["top1"]) <= 2 / len(test)  # same images, same preprocessing, fp32 both
    assert all(r["top1"] == pytest.approx(onnx["top1"], abs=2 / len(test)) for r in run.results)  # OpenVINO too


def _manifest(folder: Path, small: dict, checkpoint_path: str) -> Path:
    art = folder / "model.onnx"
    art.write_bytes(small["onnx"].read_bytes())
    Path(str(art) + ".meta.json").write_bytes(Path(str(small["onnx"]) + ".meta.json").read_bytes())
    manifest = {
        "format": "sqnxt-edge-export-manifest",
        "checkpoint": {"path": checkpoint_path},
        "artifacts": {"model.onnx": {"path": "model.onnx", "format": "onnx", "precision": "fp32"}},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder / "manifest.json"


def test_no_argument_takes_the_newest_manifest(cli, small, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = tmp_path / "export" / "old"
    old.mkdir(parents=True)
    _manifest(old, small, "gone.pt")
    new = tmp_path / "export" / "best"
    new.mkdir()
    _manifest(new, small, str(small["pt"]))
    os.utime(old / "manifest.json", (1, 1))
    res = cli("bench", "--json", *FAST_CLI)
    assert res.exit_code == 0, res.stderr
    data = json.loads(res.stdout)
    assert [r["artifact"] for r in data["results"]] == [str(Path("export/best/model.onnx"))] * len(ONNX_ENGINES) + [
        str(small["pt"])
    ]
    res = cli("bench", "--json", "--runtime", "onnxruntime", *FAST_CLI)  # a runtime narrows the manifest
    assert [r["format"] for r in json.loads(res.stdout)["results"]] == ["onnx"]


def test_no_manifest_is_one_line_error(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("bench")
    assert res.exit_code == 1 and "no export manifest" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_cli_table_json_and_failures(cli, small, tmp_path):
    res = cli(
        "bench",
        small["onnx"],
        tmp_path / "missing.onnx",
        *FAST_CLI,
        "-o",
        tmp_path / "r.md",
        "--plot",
        tmp_path / "p.png",
    )
    assert res.exit_code == 1
    assert "model.onnx" in res.stdout and "p50 ms" in res.stdout
    assert [ln for ln in res.stderr.splitlines() if "error" in ln] == [
        "error: missing.onnx: artifact not found: " + str(tmp_path / "missing.onnx")
    ]
    assert (tmp_path / "r.md").is_file() and (tmp_path / "p.png").is_file()
    res = cli("bench", small["onnx"], *FAST_CLI, "--json", "--batch", "2", "--runtime", "onnxruntime")
    assert res.exit_code == 0
    (r,) = json.loads(res.stdout)["results"]
    assert set(r) >= RESULT_KEYS and r["batch"] == 2
    assert set(r["latency_ms"]) == {"mean", "std", "min", "p50", "p90", "p99", "max"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--runs", "0"], "--runs must be >= 1"),
        (["--runtime", "tensorrt"], "unknown runtime"),
        (["-o", "r.txt"], "use a .json, .csv or .md"),
    ],
)
def test_cli_bad_options(cli, small, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("bench", small["onnx"], *FAST_CLI, *args)
    assert res.exit_code == 1 and message in res.stderr


def test_remote_refuses_checkpoints(small):
    run = run_bench([small["pt"]], BenchConfig(device="rpi4", **FAST), progress=False)
    assert not run.results and "local baseline" in run.errors[0]["error"]


def test_torch_runtime_only_runs_checkpoints(small):
    run = run_bench([small["onnx"]], BenchConfig(runtime="torch", **FAST), progress=False)
    assert not run.results and "torch cannot run onnx files" in run.errors[0]["error"]


@pytest.mark.slow
def test_trained_top1_equals_sqnxt_edge_eval(digits_checkpoint, tmp_path):
    """Bench's --data top-1 is the same number `sqnxt-edge eval` reports, for the checkpoint and its ONNX."""
    from sqnxt_edge.training.evaluate import evaluate

    onnx = export_onnx(load_checkpoint(digits_checkpoint).build_model(), tmp_path / "trained.onnx")
    run = run_bench([onnx, digits_checkpoint], BenchConfig(data="digits", runtime="auto", **FAST), progress=False)
    assert run.ok, run.errors
    for result, artifact in zip(run.results[:: len(run.results) - 1], (onnx, digits_checkpoint)):
        expect = evaluate(artifact, data="digits")
        assert result["top1"] * 100 == pytest.approx(expect.top1) and result["n"] == expect.n
    assert run.results[1]["top1"] >= 0.9


@mark("openvino", installed("openvino"), "needs OpenVINO beside onnxruntime (pip install '.[openvino]')")
def test_auto_skips_an_engine_that_cannot_read_the_file(small, tmp_path, cli):
    """QOperator int8 (what --int8-tune may pick) is onnxruntime's alone: `auto` measures it there and says why
    OpenVINO has no row, instead of failing the bench."""
    from sqnxt_edge.quantize import Int8Config, quantize_onnx

    images = resize_uint8(load_dataset("digits", "train").sample(16, 0).images, 32)
    q = quantize_onnx(small["onnx"], tmp_path / "q.onnx", images, Int8Config("uint8", "int8", "qoperator"))
    run = run_bench([q], BenchConfig(**FAST), progress=False)
    assert run.ok and [r["runtime"] for r in run.results] == ["onnxruntime"]
    assert [k["runtime"] for k in run.skipped] == ["openvino"] and "cannot load" in run.skipped[0]["why"]
    asked = run_bench([q], BenchConfig(runtime="openvino", **FAST), progress=False)  # asked for: an error
    assert not asked.ok and not asked.skipped
    res = cli("bench", q, *FAST_CLI)
    assert res.exit_code == 0 and "not measured with openvino" in res.stderr

"""ExecuTorch: `export --format pte` (fp32, and int8 through PT2E with the XNNPACK quantizer) on the trained digits
checkpoint, verified like every artifact; the runner's ExecuTorch backend (threads, no per-layer profile) and bench and
eval taking the files.

One module-scoped export (two XNNPACK lowerings, tens of seconds each) serves every slow check.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from sqnxt_edge import load_checkpoint
from sqnxt_edge.data import load_dataset, preprocess
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.formats import FORMATS, artifact_name, format_of
from sqnxt_edge.runner import RUNTIMES, installed, open_model, runtimes_for

from needs import mark, module
from test_runner import run

MISSING = "executorch is not installed (pip install '.[executorch]')"
needs_executorch = mark("executorch", module("executorch") and installed("executorch"), MISSING)
FAST = ["--warmup", "0", "--runs", "3", "--min-seconds", "0", "--threads", "1"]


def test_pte_is_a_row_of_the_formats_table():
    fmt = FORMATS["pte"]
    assert (fmt.suffix, fmt.layout, fmt.runtimes, fmt.precisions) == (".pte", "NCHW", ("executorch",), ("fp32", "int8"))
    assert fmt.extra == "executorch" and fmt.family == "pte"
    assert format_of("x/m.int8.PTE") is fmt and artifact_name("1.0-SqNxt-23", "int8", "pte") == "1.0-SqNxt-23.int8.pte"
    assert runtimes_for("m.pte") == ["executorch"] and RUNTIMES["executorch"].package == "executorch"


def test_opening_a_pte_without_the_runtime_names_the_package(tmp_path, monkeypatch):
    from sqnxt_edge.runner import RunnerError
    from sqnxt_edge.runner.backends import base

    path, name = tmp_path / "m.pte", "sqnxt_edge.runner.backends.executorch"
    path.write_bytes(b"not a program")
    monkeypatch.setitem(base.RUNTIMES, "executorch", base.RUNTIMES["executorch"]._replace(module="no_such_module_x"))
    monkeypatch.delitem(sys.modules, name, raising=False)  # the backend module is imported afresh, without it
    try:
        with pytest.raises(RunnerError, match="executorch is not installed: pip install executorch"):
            open_model(str(path))
    finally:
        sys.modules.pop(name, None)  # never leave the runtime-less copy behind (monkeypatch restores a real one)


@pytest.fixture(scope="module")
def pte_export(digits_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("pte")
    return export(digits_checkpoint, ExportConfig(formats=["pte"], int8=True, calib_size=64, output_dir=out))


def _entry(result, precision):
    return next(a for a in result.artifacts if a["format"] == "pte" and a["precision"] == precision)


@needs_executorch
@pytest.mark.slow
def test_fp32_pte_matches_pytorch_and_is_all_xnnpack(pte_export, digits_checkpoint):
    entry = _entry(pte_export, "fp32")
    path = pte_export.output_dir / entry["path"]
    assert path.name == "1.0-SqNxt-23.fp32.pte" and path.is_file()
    assert entry["parity"]["passed"] and entry["parity"]["runtime"].startswith("executorch")
    assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["top1_agreement"] == 1.0
    assert entry["delegation"]["xnnpack_partitions"] >= 1 and entry["delegation"]["other_ops"] == {}
    assert entry["input"] == {"name": "forward.input0", "shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32"}
    meta = json.loads((pte_export.output_dir / (entry["path"] + ".meta.json")).read_text())
    assert meta["layout"] == "NCHW" and meta["precision"] == "fp32" and meta["verified_on"][0]["runtime"]
    manifest = json.loads(pte_export.manifest_path.read_text())
    assert entry["path"] in json.dumps(manifest["artifacts"])

    # independent of the exporter: the runner's backend on fresh images against the PyTorch module
    ckpt = load_checkpoint(digits_checkpoint)
    x = preprocess(np.random.default_rng(5).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8), 32, ckpt.mean, ckpt.std)
    with torch.no_grad():
        want = ckpt.build_model()(x).numpy()
    m = open_model(str(path))
    assert m.runtime == "executorch" and m.input_shape == [1, 3, 32, 32] and m.input_dtype is np.float32
    got = np.concatenate([m.run(x[i : i + 1].numpy()) for i in range(3)])
    np.testing.assert_allclose(got, want, atol=1e-4)


@needs_executorch
@pytest.mark.slow
def test_int8_pte_passes_the_int8_gates(pte_export):
    fp32, int8 = _entry(pte_export, "fp32"), _entry(pte_export, "int8")
    assert int8["parity"]["passed"] and int8["parity"]["top1_agreement"] >= 0.95
    acc = int8["accuracy"]
    assert (
        acc["n"] > 0 and acc["drop"] <= 1.0 and abs(acc["top1_fp32"] - acc["top1_int8"] - acc["drop"]) <= 2e-3
    )  # each rounded to 3 decimals
    q = int8["quantization"]
    assert q["label"].startswith("XNNPACKQuantizer") and q["calibration_images"] == 64 and q["target"] == "portable"
    assert int8["delegation"]["other_ops"] == {}  # quantize/dequantize went into XNNPACK too
    assert int8["bytes"] < 0.5 * fp32["bytes"]  # int8 weights
    meta = json.loads((pte_export.output_dir / (int8["path"] + ".meta.json")).read_text())
    assert meta["precision"] == "int8" and "arm-neon" in meta["safe_on"]
    got = open_model(str(pte_export.output_dir / int8["path"])).predict(
        np.random.default_rng(1).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    )
    assert got.shape == (2, 10) and got.dtype == np.float32


@needs_executorch
@pytest.mark.slow
def test_bench_and_eval_take_the_pte_files(pte_export):
    from sqnxt_edge.bench import BenchConfig, run_bench
    from sqnxt_edge.training.evaluate import evaluate

    paths = [pte_export.output_dir / _entry(pte_export, p)["path"] for p in ("fp32", "int8")]
    bench = run_bench(paths, BenchConfig(data="digits", warmup=0, runs=3, min_seconds=0.0, threads=1), progress=False)
    assert bench.ok, bench.errors
    n = len(load_dataset("digits", split="test"))
    for result, path in zip(bench.results, paths):
        assert result["runtime"] == "executorch" and result["format"] == "pte" and result["threads"] == 1
        expect = evaluate(path, data="digits")
        assert expect.kind == "pte" and expect.runtime.startswith("executorch")
        assert result["top1"] * 100 == pytest.approx(expect.top1) and result["n"] == expect.n == n
    # the export's own fp32 top-1 on the same split (the manifest rounds to 3 decimals)
    assert bench.results[0]["top1"] * 100 == pytest.approx(
        _entry(pte_export, "int8")["accuracy"]["top1_fp32"], abs=1e-3
    )


@needs_executorch
@pytest.mark.slow
def test_runner_reports_executorch_keeps_stdout_json_and_says_why_no_profile(pte_export):
    path = pte_export.output_dir / _entry(pte_export, "fp32")["path"]
    code, data, err = run("--env-only")
    assert code == 0 and data["runtimes"]["executorch"], err
    code, data, err = run(*FAST, path)  # stdout must parse although ExecuTorch logs cpuinfo lines on load
    assert code == 0 and data is not None, err
    (res,) = data["results"]
    assert res["runtime"] == "executorch" and res["threads"] == 1 and res["latency_ms"]["p50"] > 0
    code, data, err = run(*FAST, "--profile", path)
    assert code == 1 and data is not None, err
    assert "executorch cannot profile" in data["results"][0]["error"]
    assert "event tracer" in data["results"][0]["error"]


@needs_executorch
@pytest.mark.slow
def test_threads_set_the_process_wide_pool_and_a_live_program_keeps_it(pte_export, tmp_path):
    """ExecuTorch has one thread pool per process: the backend sizes it before loading, and refuses to resize it
    under a program that still uses it. The pip wheel records no ETDump events (why `profile` refuses)."""
    fp32, int8 = (pte_export.output_dir / _entry(pte_export, p)["path"] for p in ("fp32", "int8"))
    probe = textwrap.dedent(
        f"""
        import json, os
        from sqnxt_edge.runner import RunnerError, open_model
        from sqnxt_edge.runner.backends.executorch import _lib
        out = {{}}
        a = open_model({str(fp32)!r}, threads=1)
        out["one"] = [a.backend.threads, _lib._threadpool_get_thread_count()]
        try:
            open_model({str(int8)!r}, threads=2)
        except RunnerError as exc:
            out["refused"] = str(exc)
        b = open_model({str(int8)!r}, threads=1)  # the same count: no reset, both run
        a.run(a.synthetic(1)); b.run(b.synthetic(1))
        del a, b
        out["two"] = open_model({str(int8)!r}, threads=2).backend.threads
        p = _lib._load_program({str(fp32)!r}, enable_etdump=True, debug_buffer_size=1 << 20)
        import torch
        p.load_method("forward").call((torch.zeros(1, 3, 32, 32),))
        p.write_etdump_result_to_file({str(tmp_path / "e.etdp")!r}, {str(tmp_path / "d.bin")!r})
        out["etdump"] = os.path.exists({str(tmp_path / "e.etdp")!r})
        print(json.dumps(out))
        """
    )
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["one"] == [1, 1] and out["two"] == 2
    assert "process-wide thread pool (1 threads)" in out["refused"]
    assert out["etdump"] is False  # if a wheel ever records events, wire executorch.devtools' Inspector into profile

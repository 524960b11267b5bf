"""TFLite export through litert-torch: fp32 and fp16 with NHWC input, verified with the runner (ai-edge-litert).

Conversions take tens of seconds each, so one module-scoped export serves every check.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from sqnxt_edge import load_checkpoint
from sqnxt_edge.data import preprocess
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.runner import open_model

from needs import mark, module
from test_export import MODEL, make_checkpoint

pytestmark = [
    pytest.mark.slow,
    pytest.mark.tflite,
    mark(
        "tflite",
        module("litert_torch") and module("ai_edge_litert"),
        "litert-torch / ai-edge-litert are not installed (pip install '.[tflite]')",
    ),
]


@pytest.fixture(scope="module")
def tflite_export(tmp_path_factory):
    ckpt = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    out = tmp_path_factory.mktemp("tfl")
    return ckpt, export(ckpt, ExportConfig(formats=["tflite"], fp16=True, output_dir=out, verify_size=100))


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tflite_nhwc_parity(tflite_export, precision):
    ckpt_path, result = tflite_export
    entry = next(a for a in result.artifacts if a["precision"] == precision)
    path = result.output_dir / entry["path"]
    assert path.name == f"{MODEL}.{precision}.tflite"
    assert entry["input"]["layout"] == "NHWC" and entry["input"]["shape"] == [1, 32, 32, 3]
    assert entry["parity"]["passed"] and entry["parity"]["runtime"].startswith("litert")
    if precision == "fp32":
        assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["top1_agreement"] == 1.0
    meta = json.loads((result.output_dir / (entry["path"] + ".meta.json")).read_text())
    assert meta["layout"] == "NHWC" and meta["precision"] == precision and meta["classes"][0] == "c0"

    # independent of the exporter: feed NHWC directly, compare with the NCHW PyTorch model
    ckpt = load_checkpoint(ckpt_path)
    images = np.random.default_rng(3).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    x = preprocess(images, 32, ckpt.mean, ckpt.std)
    with torch.no_grad():
        want = ckpt.build_model()(x).numpy()
    m = open_model(str(path))
    got = np.concatenate([m.run(np.ascontiguousarray(x[i : i + 1].permute(0, 2, 3, 1).numpy())) for i in range(4)])
    tol = 1e-4 if precision == "fp32" else 2e-2 * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, atol=tol)


def test_tflite_uses_only_builtin_ops(tflite_export):
    """Nothing exotic: tflite-runtime (no Flex/custom ops) must be able to run it."""
    from ai_edge_litert.interpreter import Interpreter

    _, result = tflite_export
    for a in result.artifacts:
        interp = Interpreter(
            model_path=str(result.output_dir / a["path"]),
            experimental_op_resolver_type=__import__(
                "ai_edge_litert.interpreter", fromlist=["x"]
            ).OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interp.allocate_tensors()
        ops = {op["op_name"] for op in interp._get_ops_details()}
        assert ops <= {
            "CONV_2D",
            "ADD",
            "MEAN",
            "FULLY_CONNECTED",
            "TRANSPOSE",
            "DEQUANTIZE",
            "QUANTIZE",
            "RESHAPE",
            "AVERAGE_POOL_2D",
            "MAX_POOL_2D",
            "RELU",
            "CONCATENATION",
        }, ops


def test_fp16_tflite_is_smaller(tflite_export):
    _, result = tflite_export
    sizes = {a["precision"]: a["bytes"] for a in result.artifacts}
    assert sizes["fp16"] < 0.7 * sizes["fp32"]  # float16 weights; biases and the graph stay


def test_background_and_in_process_conversions_write_the_same_file(tflite_export, tmp_path, monkeypatch):
    """The conversions run in child processes when there is a second core (tflite_jobs); the file must be the one
    the exporting process itself would write."""
    from sqnxt_edge.export.tflite_jobs import parallel_conversions

    ckpt, background = tflite_export
    monkeypatch.setenv("SQNXT_EDGE_TFLITE_JOBS", "0")
    assert not parallel_conversions()
    here = export(ckpt, ExportConfig(formats=["tflite"], output_dir=tmp_path, verify_size=100))
    sha = {a["precision"]: a["sha256"] for a in here.artifacts}
    assert sha["fp32"] == next(a["sha256"] for a in background.artifacts if a["precision"] == "fp32")
    assert not any("background process" in t["step"] for t in here.timings), here.timings
    if (os.cpu_count() or 1) > 1:  # the module's export ran with the default: in the background
        assert any("background process" in t["step"] for t in background.timings)


def test_int8_is_quantized_from_the_fp32_file_with_its_calibration(tflite_export, tmp_path):
    """int8 .tflite = the fp32 file + ai-edge-quantizer: the calibration images set the ranges (4x the images, 4x
    the input scale)."""
    from sqnxt_edge.quantize import quantize_tflite

    _, result = tflite_export
    fp32 = result.output_dir / next(a["path"] for a in result.artifacts if a["precision"] == "fp32")
    size = open_model(str(fp32)).input_size
    x = np.random.default_rng(0).standard_normal((6, size, size, 3)).astype(np.float32)
    scales = []
    for k in (1, 4):
        path = quantize_tflite(fp32, tmp_path / f"x{k}.tflite", x * k, threads=1)
        assert open_model(str(path)).input_dtype == np.int8
        scales.append(_input_scale(path))
    assert scales[1] == pytest.approx(4 * scales[0], rel=1e-3)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temp file


def _input_scale(path) -> float:
    from ai_edge_litert.interpreter import Interpreter

    return float(Interpreter(model_path=str(path)).get_input_details()[0]["quantization"][0])


def test_int8_from_a_file_that_is_not_tflite_is_one_line(tmp_path):
    from sqnxt_edge.errors import ExportError
    from sqnxt_edge.quantize import quantize_tflite

    bad = tmp_path / "m.tflite"
    bad.write_bytes(b"not a flatbuffer" * 10)
    with pytest.raises(ExportError) as err:
        quantize_tflite(bad, tmp_path / "int8.tflite", np.zeros((2, 8, 8, 3), np.float32))
    assert "\n" not in str(err.value) and "m.tflite" in str(err.value)
    assert not (tmp_path / "int8.tflite").exists()

"""TFLite export through litert-torch: fp32 and fp16 with NHWC input, verified with the runner (ai-edge-litert).

Conversions take tens of seconds each, so one module-scoped export serves every check.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

from sqnxt_edge import load_checkpoint  # noqa: E402
from sqnxt_edge.runner import open_model  # noqa: E402
from sqnxt_edge.data import preprocess  # noqa: E402
from sqnxt_edge.export import ExportConfig, export  # noqa: E402

from test_export import MODEL, make_checkpoint  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.tflite]


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
    got = np.concatenate([m.run(np.ascontiguousarray(x[i:i + 1].permute(0, 2, 3, 1).numpy())) for i in range(4)])
    tol = 1e-4 if precision == "fp32" else 2e-2 * max(1.0, float(np.abs(want).max()))
    np.testing.assert_allclose(got, want, atol=tol)


def test_tflite_uses_only_builtin_ops(tflite_export):
    """Nothing exotic: tflite-runtime (no Flex/custom ops) must be able to run it."""
    from ai_edge_litert.interpreter import Interpreter

    _, result = tflite_export
    for a in result.artifacts:
        interp = Interpreter(model_path=str(result.output_dir / a["path"]),
                             experimental_op_resolver_type=__import__("ai_edge_litert.interpreter", fromlist=["x"])
                             .OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp.allocate_tensors()
        ops = {op["op_name"] for op in interp._get_ops_details()}
        assert ops <= {"CONV_2D", "ADD", "MEAN", "FULLY_CONNECTED", "TRANSPOSE", "DEQUANTIZE", "QUANTIZE", "RESHAPE",
                       "AVERAGE_POOL_2D", "MAX_POOL_2D", "RELU", "CONCATENATION"}, ops


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

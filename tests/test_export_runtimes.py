"""Other standard runtimes load our ONNX and agree with onnxruntime: OpenVINO (f32 precision hint) and OpenCV DNN."""

from __future__ import annotations

import numpy as np
import pytest

from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.runner import open_model

from needs import module, need
from test_export import MODEL, make_checkpoint


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    ckpt = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    out = tmp_path_factory.mktemp("rt")
    export(ckpt, ExportConfig(formats=["onnx"], output_dir=out, verify_size=30))
    images = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    return out / f"{MODEL}.fp32.onnx", images


def _reference(path, images):
    m = open_model(str(path))
    x = m.prepare(images)
    return x, m.run(x)


def test_openvino_matches_onnxruntime(artifacts):
    need("openvino", module("openvino"), "OpenVINO is not installed (pip install '.[openvino]')")
    import openvino as ov

    path, images = artifacts
    x, want = _reference(path, images)
    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    got = compiled(x)[compiled.output(0)]
    np.testing.assert_allclose(got, want, atol=1e-4)


def test_opencv_dnn_matches_onnxruntime(artifacts):
    need("opencv", module("cv2"), "OpenCV is not installed (pip install '.[dev]')")
    import cv2

    if int(cv2.__version__.split(".")[0]) >= 5:  # a version the product does not target, not a missing tool
        pytest.skip("OpenCV 5 fails on QDQ; the product targets 4.x")
    path, images = artifacts
    x, want = _reference(path, images)
    net = cv2.dnn.readNetFromONNX(str(path))
    net.setInput(x)
    got = net.forward()
    np.testing.assert_allclose(got, want, atol=1e-4)

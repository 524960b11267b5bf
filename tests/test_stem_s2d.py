"""The space-to-depth stem rewrite is exactly the same function, applies only to the stems it can, and goes through
int8 quantization (where `benchmarks/runtimes/stem_s2d.json` says it can pay)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from sqnxt_edge.export.onnx_export import export_onnx
from sqnxt_edge.models import create_model
from sqnxt_edge.quantize import Int8Session, default_int8_config
from sqnxt_edge.quantize.stem_s2d import space_to_depth_stem
from sqnxt_edge.runner import open_model


def _onnx(name: str, size: int, stem: str | None = None):
    torch.manual_seed(0)
    model = create_model(name, 10, size, **({"stem": stem} if stem else {})).train()
    with torch.no_grad():
        model(torch.randn(4, 3, size, size))  # BN statistics with a spread, so the outputs mean something
    return export_onnx(model.eval(), size, 3, 17, None)


def _run(model, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize(
    ("name", "size", "stem", "expect"),
    [
        ("1.0-SqNxt-23", 35, "imagenet", "7x7/2 over 3 channels -> 4x4/1 over 12"),  # odd side: padded to even
        ("1.0-SqNxt-23", 64, "tiny", "3x3/2 over 3 channels -> 2x2/1 over 12"),  # padding 1 kept
        ("squeezenet1_1", 227, None, "3x3/2 over 3 channels -> 2x2/1 over 12"),
    ],
)
def test_the_rewritten_stem_computes_the_same_outputs(name, size, stem, expect):
    model = _onnx(name, size, stem)
    x = np.random.default_rng(1).normal(size=(2, 3, size, size)).astype(np.float32)
    before = _run(model, x)
    what = space_to_depth_stem(model)
    assert what is not None and expect in what
    onnx.checker.check_model(model)
    source = model.graph.input[0].name
    chain = [n for n in model.graph.node if source in n.input]
    while chain[-1].op_type != "Conv":
        chain += [n for n in model.graph.node if chain[-1].output[0] in n.input]
    assert [n.op_type for n in chain] == ["Pad", "SpaceToDepth", "Conv"]
    after = _run(model, x)
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4 * float(np.abs(before).max()))


def test_a_stride_1_stem_is_left_alone():
    model = _onnx("1.0-SqNxt-23", 32, "cifar")
    text = model.SerializeToString()
    assert space_to_depth_stem(model) is None
    assert model.SerializeToString() == text


def test_int8_with_the_s2d_stem_agrees_with_the_plain_int8(tmp_path):
    fp32 = tmp_path / "m.onnx"
    onnx.save(_onnx("1.0-SqNxt-23", 64, "tiny"), str(fp32))
    meta = {"input_size": 64, "in_channels": 3, "layout": "NCHW", "mean": [0.5] * 3, "std": [0.5] * 3}
    (tmp_path / "m.onnx.meta.json").write_text(json.dumps(meta))
    images = np.random.default_rng(0).integers(0, 256, (32, 64, 64, 3), dtype=np.uint8)
    config = default_int8_config()
    with Int8Session(fp32, images) as session:
        assert session.can_s2d()
        plain = session.quantize(config, tmp_path / "plain.onnx")
        s2d = session.quantize(config.with_(s2d_stem=True), tmp_path / "s2d.onnx")
    ops = [n.op_type for n in onnx.load(str(s2d)).graph.node]
    assert "SpaceToDepth" in ops and "SpaceToDepth" not in [n.op_type for n in onnx.load(str(plain)).graph.node]
    assert json.loads((tmp_path / "s2d.onnx.meta.json").read_text())["quantization"]["s2d_stem"] is True
    a, b = open_model(str(plain)), open_model(str(s2d))
    pa = np.concatenate([a.run(a.prepare(images[i : i + 8])) for i in range(0, 32, 8)]).argmax(1)
    pb = np.concatenate([b.run(b.prepare(images[i : i + 8])) for i in range(0, 32, 8)]).argmax(1)
    assert np.mean(pa == pb) >= 0.9  # the same function, quantized with its own (equal) ranges

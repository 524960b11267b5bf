"""--int8 wiring: ONNX int8 (onnxruntime) and TFLite int8 (ai-edge-quantizer on the fp32 file) on a trained digits
checkpoint, with the fp32-vs-int8 accuracy report, the --max-drop gate and the other runtimes loading the QDQ model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sqnxt_edge.errors import ExportError
from sqnxt_edge.export import ExportConfig, export, read_onnx_metadata

from needs import module, need

pytestmark = pytest.mark.slow
MODEL = "1.0-SqNxt-23"
LITERT_MISSING = "litert-torch is not installed (pip install '.[tflite]')"


@pytest.fixture(scope="module")
def int8_export(digits_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("int8")
    formats = ["onnx", "tflite"] if _has_litert() else ["onnx"]
    return export(digits_checkpoint, ExportConfig(formats=formats, int8=True, calib_size=200, output_dir=out))


def _has_litert() -> bool:
    try:
        import litert_torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_int8_accuracy_report_and_size(int8_export, fmt):
    if fmt == "tflite":
        need("tflite", _has_litert(), LITERT_MISSING)
    by = {(a["format"], a["precision"]): a for a in int8_export.artifacts}
    fp32, int8 = by[(fmt, "fp32")], by[(fmt, "int8")]
    acc = int8["accuracy"]
    assert acc["n"] > 0 and abs(acc["top1_fp32"] - acc["top1_int8"] - acc["drop"]) < 1e-6
    assert acc["drop"] <= 1.0 and acc["agreement"] >= 95.0
    assert int8["parity"]["passed"] and int8["parity"]["top1_agreement"] >= 0.95
    # measured 29% / 42% (the .tflite keeps litert's long tensor names: about 1/3 of the int8 file)
    assert int8["bytes"] <= (0.30 if fmt == "onnx" else 0.45) * fp32["bytes"]
    meta = json.loads((int8_export.output_dir / (int8["path"] + ".meta.json")).read_text())
    assert meta["precision"] == "int8"
    if fmt == "onnx":
        assert read_onnx_metadata(int8_export.output_dir / int8["path"])["precision"] == "int8"
        assert "QuantizeLinear" in int8["ops"]


@pytest.mark.tflite
def test_int8_tflite_is_integer_throughout_with_builtin_ops(int8_export):
    """What tflite-runtime and the phones' int8 delegates need: builtin ops only, every convolution int8 in and out
    with int8 weights scaled per output channel, and the manifest saying how it was made."""
    need("tflite", _has_litert(), LITERT_MISSING)
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    entry = next(a for a in int8_export.artifacts if a["format"] == "tflite" and a["precision"] == "int8")
    assert entry["quantization"]["label"].startswith("ai-edge-quantizer") and entry["quantization"]["io"] == "float32"
    interp = Interpreter(
        model_path=str(int8_export.output_dir / entry["path"]),
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    ops = interp._get_ops_details()
    tensors = {t["index"]: t for t in interp.get_tensor_details()}
    assert {op["op_name"] for op in ops} <= {
        "CONV_2D",
        "ADD",
        "MEAN",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "RESHAPE",
        "TRANSPOSE",
        "QUANTIZE",  # float32 I/O (the default): one QUANTIZE first, one DEQUANTIZE last
        "DEQUANTIZE",
    }
    assert [op["op_name"] for op in ops].count("QUANTIZE") == 1 and [op["op_name"] for op in ops][-1] == "DEQUANTIZE"
    convs = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert convs
    for op in convs:
        x, w = tensors[op["inputs"][0]], tensors[op["inputs"][1]]
        assert x["dtype"] == np.int8 and tensors[op["outputs"][0]]["dtype"] == np.int8 and w["dtype"] == np.int8
        assert len(w["quantization_parameters"]["scales"]) == w["shape"][0]  # one scale per output channel


@pytest.mark.tflite
def test_int8_io_tflite_carries_its_scales_and_says_where_it_loads(digits_checkpoint, int8_export, tmp_path):
    """--int8-io: the same integer graph behind int8 input and output. Its sidecar and manifest carry the scale and
    zero point an app quantizes with, name the I/O as LiteRT's signature runner and LiteRT.js do, and say that
    LiteRT.js cannot load it; the default (float I/O) file loads there."""
    need("tflite", _has_litert(), LITERT_MISSING)
    from sqnxt_edge.data import load_dataset, resize_uint8
    from sqnxt_edge.runner import open_model

    result = export(
        digits_checkpoint,
        ExportConfig(formats=["tflite"], int8=True, tflite_float_io=False, calib_size=200, output_dir=tmp_path),
    )
    entry = next(a for a in result.artifacts if a["precision"] == "int8")
    assert entry["input"]["dtype"] == "int8" and entry["quantization"]["io"] == "int8" and entry["parity"]["passed"]
    ints_path, floats_path = tmp_path / entry["path"], int8_export.output_dir / entry["path"]
    meta = json.loads((tmp_path / (entry["path"] + ".meta.json")).read_text())
    ints, floats = open_model(str(ints_path)), open_model(str(floats_path))
    assert ints.input_dtype == np.int8 and floats.input_dtype == np.float32
    assert (meta["input_name"], meta["output_name"], meta["signature"]) == ("args_0", "output_0", "serving_default")
    assert meta["input_tensor_name"] == ints.input_name and meta["output_tensor_name"] == ints.output_name
    assert (meta["input_dtype"], meta["output_dtype"]) == ("int8", "int8")
    assert (
        meta["input_quantization"]["scale"] == pytest.approx(ints.quant[0])
        and meta["input_quantization"]["zero_point"] == ints.quant[1]
    )
    assert (
        entry["input"]["quantization"] == meta["input_quantization"]
        and entry["output"]["quantization"] == meta["output_quantization"]
    )
    assert "litert.js" not in meta["loads_in"] and "int8" in meta["does_not_load_in"]["litert.js"]
    float_meta = json.loads((int8_export.output_dir / (entry["path"] + ".meta.json")).read_text())
    assert float_meta["input_quantization"] is None and float_meta["input_dtype"] == "float32"
    assert "litert.js" in float_meta["loads_in"] and float_meta["does_not_load_in"] == {}

    # an app following the sidecar alone: quantize with its scale / zero point, run, dequantize the output
    from ai_edge_litert.interpreter import Interpreter

    images = resize_uint8(load_dataset("digits", "test").sample(32, 1).images, 32)
    x = floats.prepare(images)
    q_in, q_out = meta["input_quantization"], meta["output_quantization"]
    xq = np.clip(np.rint(x / q_in["scale"]) + q_in["zero_point"], -128, 127).astype(np.int8)
    run = Interpreter(model_path=str(ints_path)).get_signature_runner(meta["signature"])
    got = np.concatenate([run(**{meta["input_name"]: xq[i : i + 1]})[meta["output_name"]] for i in range(len(x))])
    got = (got.astype(np.float32) - q_out["zero_point"]) * q_out["scale"]
    want = np.concatenate([floats.run(x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_allclose(got, want, atol=1e-6)  # same calibration, same integer graph


def test_max_drop_keeps_fp32_only(digits_checkpoint, tmp_path, monkeypatch):
    from sqnxt_edge.quantize.accuracy import AccuracyReport

    monkeypatch.setattr(  # every candidate loses 15 points: the export tries each, then stops
        "sqnxt_edge.quantize.accuracy.report_from_predictions",
        lambda *a, **k: AccuracyReport(95.0, 80.0, 15.0, 82.0, 100),
    )
    with pytest.raises(ExportError, match="max-drop"):
        export(digits_checkpoint, ExportConfig(formats=["onnx"], int8=True, calib_size=50, output_dir=tmp_path))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert f"{MODEL}.fp32.onnx" in names and not any(".int8." in n for n in names)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert list(manifest["artifacts"]) == [f"{MODEL}.fp32.onnx"]


@pytest.mark.parametrize("runtime", ["openvino", "cv2"])
def test_int8_qdq_loads_in_other_runtimes(int8_export, runtime):
    name = "opencv" if runtime == "cv2" else runtime
    need(name, module(runtime), f"{runtime} is not installed (pip install '.[dev]')")
    mod = __import__(runtime)
    from sqnxt_edge.runner import open_model

    path = int8_export.output_dir / f"{MODEL}.int8.onnx"
    m = open_model(str(path))
    from sqnxt_edge.data import load_dataset

    images = load_dataset("digits", "test").sample(16, 0).images
    from sqnxt_edge.data import resize_uint8

    x = np.concatenate([m.prepare(resize_uint8(images[i : i + 1], 32)) for i in range(16)])
    want = np.concatenate([m.run(x[i : i + 1]) for i in range(16)])
    if runtime == "openvino":
        compiled = mod.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        got = np.concatenate([compiled(x[i : i + 1])[compiled.output(0)] for i in range(16)])
    else:
        net = mod.dnn.readNetFromONNX(str(path))
        got = []
        for i in range(16):
            net.setInput(x[i : i + 1])
            got.append(net.forward())
        got = np.concatenate(got)
    assert np.mean(got.argmax(1) == want.argmax(1)) >= 0.9
    assert np.abs(got - want).max() <= 0.1 * np.abs(want).max() + 1e-3

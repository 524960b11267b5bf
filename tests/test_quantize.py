"""ONNX int8 (issue 5): configs, calibration data and its errors, entropy vs minmax, reproducibility, tuning, and
the Done-when accuracy/size figures on a trained digits checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper

from sqnxt_edge.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from sqnxt_edge.data import load_dataset
from sqnxt_edge.errors import DataError, ExportError
from sqnxt_edge.quantize import (
    AccuracyReport,
    Int8Config,
    TuneError,
    accuracy_report,
    calibration_images,
    default_int8_config,
    quantize_onnx,
    tune_onnx,
    warn_if_no_int8_dot,
)
from sqnxt_edge.runner import open_model

MODEL = "1.0-SqNxt-23"


def make_fp32_onnx(ckpt: Checkpoint, out: Path) -> Path:
    """fp32 ONNX the way export writes it (the export stage's own functions when present)."""
    model = ckpt.build_model()
    try:
        from sqnxt_edge.artifacts import build_metadata, embed_onnx_metadata
        from sqnxt_edge.export.onnx_export import export_onnx, simplify_onnx
    except ImportError:
        import warnings

        x = torch.zeros(1, ckpt.in_channels, ckpt.input_size, ckpt.input_size)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (x,), str(out), input_names=["input"], output_names=["logits"], dynamo=False, opset_version=17
            )
        proto = onnx.load(str(out))
        meta = {
            "model_name": ckpt.model_name,
            "classes": ckpt.class_names(),
            "mean": list(ckpt.mean),
            "std": list(ckpt.std),
            "input_size": ckpt.input_size,
            "in_channels": ckpt.in_channels,
            "layout": "NCHW",
            "precision": "fp32",
            "dataset": ckpt.dataset,
        }
        for key, value in meta.items():
            proto.metadata_props.add(key=key, value=json.dumps(value))
    else:
        proto = simplify_onnx(export_onnx(model, ckpt.input_size, ckpt.in_channels, 17, None), dynamic=True)
        embed_onnx_metadata(proto, build_metadata(ckpt, "fp32", "NCHW"))
    onnx.save(proto, str(out))
    return out


def _random_ckpt(in_channels: int = 3) -> Checkpoint:
    torch.manual_seed(0)
    model = __import__("sqnxt_edge.models", fromlist=["create_model"]).create_model(MODEL, 10, 32, in_channels)
    return Checkpoint(
        MODEL,
        10,
        32,
        in_channels,
        model.stem_kind,
        [str(i) for i in range(10)],
        (0.5,) * in_channels,
        (0.5,) * in_channels,
        "digits",
        None,
        0,
        {},
        {},
        model.state_dict(),
    )


def _train_digits(path: Path, epochs: int = 12) -> Path:
    """Throwaway trained checkpoint, used only until the shared `digits_checkpoint` fixture exists."""
    from sqnxt_edge.data import preprocess
    from sqnxt_edge.models import create_model

    torch.manual_seed(0)
    data = load_dataset("digits", "train")
    model = create_model(MODEL, 10, 32, 3)
    opt = torch.optim.AdamW(model.parameters(), 3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=epochs * ((len(data) + 63) // 64))
    x, y = preprocess(data.images, 32, data.mean, data.std), torch.from_numpy(data.labels)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    ckpt = Checkpoint(
        MODEL,
        10,
        32,
        3,
        model.stem_kind,
        data.classes,
        data.mean,
        data.std,
        "digits",
        None,
        epochs,
        {},
        {},
        model.eval().state_dict(),
    )
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="module")
def trained(request, tmp_path_factory):
    """(checkpoint, fp32 onnx) of a trained 1.0-SqNxt-23 on digits."""
    try:
        path = Path(request.getfixturevalue("digits_checkpoint"))
    except pytest.FixtureLookupError:
        path = _train_digits(tmp_path_factory.mktemp("ckpt") / "best.pt")
    ckpt = load_checkpoint(path)
    return ckpt, make_fp32_onnx(ckpt, tmp_path_factory.mktemp("trained") / f"{MODEL}.fp32.onnx")


@pytest.fixture(scope="module")
def rand(tmp_path_factory):
    """(checkpoint, fp32 onnx, 32 calibration images) of a random-weight model: structure tests need no training."""
    ckpt = _random_ckpt()
    fp32 = make_fp32_onnx(ckpt, tmp_path_factory.mktemp("rand") / f"{MODEL}.fp32.onnx")
    return ckpt, fp32, calibration_images(ckpt, calib_size=32)


def _dtypes(model) -> dict[str, int]:
    return {t.name: t.data_type for t in model.graph.initializer}


def _scales(path: Path) -> np.ndarray:
    model = onnx.load(str(path))
    quant = [n for n in model.graph.node if n.op_type == "QuantizeLinear"]
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    return np.array([float(inits[n.input[1]]) for n in quant])


# -- the Done-when figures ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_trained_int8_small_and_accurate(trained, tmp_path):
    ckpt, fp32 = trained
    calib = calibration_images(ckpt, calib_size=300)
    int8 = quantize_onnx(fp32, tmp_path / f"{MODEL}.int8.onnx", calib, default_int8_config())
    assert int8.stat().st_size <= 0.30 * fp32.stat().st_size
    test = load_dataset("digits", "test")
    report = accuracy_report(fp32, int8, test.images, test.labels)
    assert isinstance(report, AccuracyReport) and report.n == len(test)
    assert report.top1_fp32 > 80, report  # a trained model, or the comparison means nothing
    assert report.drop <= 1.0, report
    assert report.agreement >= 98.0, report
    assert set(report.to_dict()) == {
        "top1_fp32",
        "top1_int8",
        "drop",
        "agreement",
        "n",
        "per_class",
        "max_drop",
        "flagged_classes",
    }


# -- configurations ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("act", ["uint8", "int8"])
@pytest.mark.parametrize("fmt", ["qdq", "qoperator"])
def test_config_variants_give_expected_graph(rand, tmp_path, act, fmt):
    ckpt, fp32, calib = rand
    cfg = Int8Config(activation_type=act, quant_format=fmt)
    out = quantize_onnx(fp32, tmp_path / "m.int8.onnx", calib, cfg)
    model = onnx.load(str(out))
    ops = {n.op_type for n in model.graph.node}
    inits = _dtypes(model)
    want = onnx.TensorProto.UINT8 if act == "uint8" else onnx.TensorProto.INT8
    if fmt == "qdq":
        assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops and "QLinearConv" not in ops
        zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    else:
        assert "QLinearConv" in ops and "Conv" not in ops
        zps = [inits[n.input[2]] for n in model.graph.node if n.op_type == "QLinearConv"]  # x_zero_point
    assert zps and set(zps) == {want}
    meta = open_model(str(out)).meta
    assert meta["precision"] == "int8" and meta["quantization"]["label"] == cfg.label
    assert meta["model_name"] == MODEL and meta["classes"] == ckpt.class_names()
    props = {p.key: json.loads(p.value) for p in model.metadata_props}
    assert props["precision"] == "int8" and props["input_size"] == 32
    logits = open_model(str(out)).predict(calib[:4])
    assert logits.shape == (4, 10) and np.isfinite(logits).all()


def test_per_channel_and_fp32_stem(rand, tmp_path):
    _, fp32, calib = rand
    per_tensor = onnx.load(str(quantize_onnx(fp32, tmp_path / "pt.onnx", calib, Int8Config(per_channel=False))))
    per_channel = onnx.load(str(quantize_onnx(fp32, tmp_path / "pc.onnx", calib, Int8Config(per_channel=True))))

    def weight_scale_sizes(model):
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        return [
            inits[n.input[1]].size
            for n in model.graph.node
            if n.op_type == "DequantizeLinear" and n.input[0] in inits and inits[n.input[0]].ndim == 4
        ]

    assert max(weight_scale_sizes(per_tensor)) == 1
    assert max(weight_scale_sizes(per_channel)) > 1
    stem = onnx.load(str(quantize_onnx(fp32, tmp_path / "stem.onnx", calib, Int8Config(exclude=("stem",)))))
    first_conv = next(n for n in stem.graph.node if n.op_type == "Conv")
    inits = _dtypes(stem)
    assert inits[first_conv.input[1]] == onnx.TensorProto.FLOAT  # weight stays fp32, not a DequantizeLinear output
    assert "stem fp32" in Int8Config(exclude=("stem",)).label


def test_entropy_and_percentile_differ_from_minmax(rand, tmp_path):
    _, fp32, calib = rand
    files = {
        m: quantize_onnx(fp32, tmp_path / f"{m}.onnx", calib, Int8Config(calib_method=m, num_bins=192))
        for m in ("minmax", "entropy", "percentile")
    }
    assert files["minmax"].read_bytes() != files["entropy"].read_bytes()
    minmax, entropy, pct = (_scales(files[m]) for m in ("minmax", "entropy", "percentile"))
    assert not np.allclose(minmax, entropy)
    assert not np.allclose(minmax, pct)
    assert (entropy <= minmax * (1 + 1e-6)).mean() > 0.9  # entropy clips outliers: ranges shrink, never grow much


def test_calibration_is_reproducible(rand, tmp_path):
    ckpt, fp32, _ = rand
    a, b = calibration_images(ckpt, calib_size=40, seed=3), calibration_images(ckpt, calib_size=40, seed=3)
    assert a.shape == (40, 32, 32, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, calibration_images(ckpt, calib_size=40, seed=4))
    one = quantize_onnx(fp32, tmp_path / "1.onnx", a, Int8Config())
    two = quantize_onnx(fp32, tmp_path / "2.onnx", b, Int8Config())
    assert one.read_bytes() == two.read_bytes()


def test_calibration_from_image_folder(tmp_path):
    from PIL import Image

    ckpt = _random_ckpt()
    rng = np.random.default_rng(0)
    for i in range(6):
        sub = tmp_path / "imgs" / f"class{i % 2}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (20 + i, 24, 3), dtype=np.uint8)).save(sub / f"{i}.png")
    images = calibration_images(ckpt, str(tmp_path / "imgs"), calib_size=4, seed=1)
    assert images.shape == (4, 32, 32, 3) and images.dtype == np.uint8
    assert np.array_equal(images, calibration_images(ckpt, str(tmp_path / "imgs"), calib_size=4, seed=1))


# -- calibration errors: one line, raised before anything is written --------------------------------------------------
def _empty(tmp: Path) -> str:
    (tmp / "empty").mkdir()
    return str(tmp / "empty")


def _unreadable(tmp: Path) -> str:
    (tmp / "bad").mkdir()
    (tmp / "bad" / "x.png").write_bytes(b"not an image at all")
    return str(tmp / "bad")


def _grey(tmp: Path) -> str:
    from PIL import Image

    (tmp / "grey").mkdir()
    Image.fromarray(np.zeros((16, 16), np.uint8), mode="L").save(tmp / "grey" / "g.png")
    return str(tmp / "grey")


@pytest.mark.parametrize(
    "make,match",
    [
        (_empty, "no images"),
        (_unreadable, "cannot read image"),
        (_grey, "grayscale"),
        (lambda tmp: str(tmp / "missing" / "dir"), "not found"),
        (lambda tmp: "no-such-dataset", "unknown dataset"),
    ],
)
def test_bad_calibration_data_is_one_line(tmp_path, make, match):
    with pytest.raises(DataError, match=match) as err:
        calibration_images(_random_ckpt(), make(tmp_path), calib_size=8)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "images,match",
    [
        (np.zeros((4, 16, 16, 3), np.uint8), "16x16"),
        (np.zeros((4, 32, 32, 1), np.uint8), "channel"),
        (np.zeros((4, 32, 32), np.uint8), "uint8 array"),
        (np.zeros((4, 32, 32, 3), np.float32), "uint8 array"),
        (np.zeros((0, 32, 32, 3), np.uint8), "no images"),
    ],
)
def test_wrong_calibration_array_writes_nothing(rand, tmp_path, images, match):
    _, fp32, _ = rand
    out = tmp_path / "m.int8.onnx"
    with pytest.raises(DataError, match=match) as err:
        quantize_onnx(fp32, out, images, Int8Config())
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_good_file_is_not_replaced_on_failure(rand, tmp_path):
    _, fp32, calib = rand
    out = quantize_onnx(fp32, tmp_path / "m.int8.onnx", calib, Int8Config())
    before = out.read_bytes()
    with pytest.raises(DataError):
        quantize_onnx(fp32, out, calib[:, :16, :16], Int8Config())
    assert out.read_bytes() == before


# -- tuning -----------------------------------------------------------------------------------------------------------
def test_tune_picks_a_candidate_within_budget(rand, tmp_path):
    _ckpt, fp32, calib = rand
    test = load_dataset("digits", "test").sample(40, seed=0)
    with pytest.raises(ExportError, match="QDQ U8S8 per-channel not numerically safe on every CPU class of portable"):
        tune_onnx(fp32, tmp_path / "u.int8.onnx", calib, test.images, test.labels, candidates=[Int8Config()])
    cands = [Int8Config(reduce_range=True), Int8Config(reduce_range=True, exclude=("stem",))]
    result = tune_onnx(
        fp32,
        tmp_path / "t.int8.onnx",
        calib,
        test.images,
        test.labels,
        max_drop=100.0,
        candidates=cands,
        rounds=2,
        reps=2,
    )
    assert [r.label for r in result.rows] == [c.label for c in cands]
    assert sum(r.chosen for r in result.rows) == 1 and result.chosen in cands
    chosen = next(r for r in result.rows if r.chosen)
    assert chosen.p50_ms == min(r.p50_ms for r in result.rows if r.within_budget)
    assert result.path.is_file() and open_model(str(result.path)).meta["quantization"]["label"] == chosen.label
    assert json.dumps(result.to_dict())
    with pytest.raises(TuneError, match="budget") as err:
        tune_onnx(
            fp32,
            tmp_path / "none.int8.onnx",
            calib,
            test.images,
            test.labels,
            max_drop=-1.0,
            candidates=cands[:1],
            rounds=1,
            reps=1,
        )
    assert len(err.value.result.rows) == 1 and not (tmp_path / "none.int8.onnx").exists()


# -- defaults and warnings ---------------------------------------------------------------------------------------------
X86_VNNI = {"arch": "x86_64", "model": "Xeon", "int8_dot": True}
X86_OLD = {"arch": "x86_64", "model": "Core i5-4590", "int8_dot": False}
PI5 = {"arch": "aarch64", "model": "Cortex-A76", "int8_dot": True}
PI4 = {"arch": "aarch64", "model": "Cortex-A72", "int8_dot": False}


@pytest.mark.parametrize(
    "cpu,act,reduce", [(X86_VNNI, "uint8", False), (X86_OLD, "uint8", True), (PI5, "int8", False), (PI4, "int8", False)]
)
def test_first_config_per_cpu_class(cpu, act, reduce):
    """A file made for one class starts from that class's fast configuration (7-bit weights where U8S8 saturates)."""
    from sqnxt_edge.quantize import class_of

    cfg = default_int8_config(class_of(cpu).name)
    assert (cfg.activation_type, cfg.weight_type, cfg.quant_format, cfg.per_channel, cfg.reduce_range) == (
        act,
        "int8",
        "qdq",
        True,
        reduce,
    )


@pytest.mark.parametrize("cpu,word", [(X86_VNNI, None), (PI5, None), (X86_OLD, "VNNI"), (PI4, "dot-product")])
def test_warning_only_without_int8_dot(cpu, word):
    line = warn_if_no_int8_dot(cpu)
    if word is None:
        assert line is None
    else:
        assert word in line and cpu["model"] in line and "\n" not in line and "slower" in line


def test_config_is_typed_and_labelled():
    assert Int8Config().label == "QDQ U8S8 per-channel"
    assert Int8Config("int8", quant_format="qoperator", per_channel=False).label == "QOperator S8S8 per-tensor"
    assert "entropy" in Int8Config(calib_method="entropy").label
    with pytest.raises(ExportError, match="calib_method"):
        Int8Config(calib_method="kl")
    with pytest.raises(dataclasses.FrozenInstanceError):
        Int8Config().activation_type = "int8"  # frozen

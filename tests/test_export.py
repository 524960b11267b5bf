"""Export: ONNX (fixed/dynamic batch, simplified, checked, metadata), .ort, atomic writes, CLI errors.

TFLite and int8 live in test_export_tflite.py / test_export_int8.py (slow conversions, shared module fixtures).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sqnxt_edge import Checkpoint, create_model, save_checkpoint
from sqnxt_edge.errors import ExportError
from sqnxt_edge.export import ExportConfig, export, read_onnx_metadata
from sqnxt_edge.runner import open_model

MODEL = "1.0-SqNxt-23"


def make_checkpoint(path: Path, model: str = MODEL, input_size: int = 32) -> Path:
    """Untrained weights with BN statistics from a few batches, so activations (and logits) have a sane scale."""
    torch.manual_seed(0)
    net = create_model(model, 10, input_size)
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.randn(8, 3, input_size, input_size))
    ckpt = Checkpoint(
        model,
        10,
        input_size,
        classes=[f"c{i}" for i in range(10)],
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        dataset="digits",
        state_dict=net.eval().state_dict(),
    )
    return save_checkpoint(ckpt, path)


@pytest.fixture(scope="module")
def ckpt_path(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def exported(ckpt_path, tmp_path_factory):
    """One export of onnx + ort at fixed batch 1 and one at dynamic batch, reused by the checks below."""
    base = tmp_path_factory.mktemp("exp")
    fixed = export(ckpt_path, ExportConfig(formats=["onnx", "ort"], output_dir=base / "fixed", verify_size=100))
    dynamic = export(
        ckpt_path, ExportConfig(formats=["onnx"], dynamic_batch=True, output_dir=base / "dyn", verify_size=100)
    )
    return {"fixed": fixed, "dynamic": dynamic}


def _by(result, fmt, precision="fp32") -> dict:
    return next(a for a in result.artifacts if a["format"] == fmt and a["precision"] == precision)


@pytest.mark.parametrize("kind", ["fixed", "dynamic"])
def test_onnx_is_simplified_checked_and_matches_torch(exported, kind):
    import onnx

    result = exported[kind]
    entry = _by(result, "onnx")
    path = result.output_dir / entry["path"]
    assert path.name == f"{MODEL}.fp32.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {n.op_type for n in model.graph.node}
    assert "BatchNormalization" not in ops and "Identity" not in ops
    assert ops <= {"Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm", "MatMul", "Reshape"}
    assert model.opset_import[0].version == 17
    assert [i.name for i in model.graph.input] == ["input"] and [o.name for o in model.graph.output] == ["logits"]
    assert not list(path.parent.glob("*.data"))  # one self-contained file
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert (dim.dim_param == "batch") if kind == "dynamic" else (dim.dim_value == 1)
    p = entry["parity"]
    assert p["passed"] and p["max_abs_diff"] <= 1e-4 and p["top1_agreement"] == 1.0
    assert p["images"] == "digits/test" and p["n"] == 100


def test_dynamic_batch_runs_batch_1_and_5(exported, ckpt_path):
    from sqnxt_edge import load_checkpoint
    from sqnxt_edge.data import preprocess

    ckpt = load_checkpoint(ckpt_path)
    net = ckpt.build_model()
    m = open_model(str(exported["dynamic"].output_dir / f"{MODEL}.fp32.onnx"))
    assert m.fixed_batch is None
    rng = np.random.default_rng(1)
    for n in (1, 5):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        got = m.run(m.prepare(images))
        with torch.no_grad():
            want = net(preprocess(images, 32, ckpt.mean, ckpt.std)).numpy()
        assert got.shape == (n, 10)
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_metadata_round_trip_and_plain_onnxruntime(exported, ckpt_path):
    import onnxruntime as ort

    from sqnxt_edge import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    path = exported["fixed"].output_dir / f"{MODEL}.fp32.onnx"
    meta = read_onnx_metadata(path)
    assert meta["model_name"] == MODEL and meta["classes"] == [f"c{i}" for i in range(10)]
    assert meta["mean"] == [0.5] * 3 and meta["std"] == [0.5] * 3 and meta["input_size"] == 32
    assert meta["layout"] == "NCHW" and meta["precision"] == "fp32" and meta["num_classes"] == 10
    assert meta["source_checkpoint_sha256"] == ckpt.sha256 and meta["dataset"] == "digits"
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    plain = {k: json.loads(v) for k, v in sess.get_modelmeta().custom_metadata_map.items()}
    assert plain == meta
    side = json.loads(Path(str(path) + ".meta.json").read_text())
    verified = side.pop("verified_on")  # the sidecar also says where the file passed (after it was verified)
    assert side == meta and [v["where"] for v in verified] == ["this machine"]


def test_ort_loads_with_metadata_and_usability_report(exported):
    result = exported["fixed"]
    entry = _by(result, "ort")
    path = result.output_dir / entry["path"]
    assert path.name == f"{MODEL}.fp32.ort"
    Path(str(path) + ".meta.json").rename(path.parent / "hidden.json")  # embedded metadata alone
    try:
        meta = read_onnx_metadata(path)
        m = open_model(str(path))
        assert m.meta["classes"] == meta["classes"] and meta["precision"] == "fp32"
    finally:
        (path.parent / "hidden.json").rename(str(path) + ".meta.json")
    assert entry["parity"]["passed"] and entry["parity"]["max_abs_diff"] <= 1e-4
    usability = entry["mobile_usability"]
    assert {"NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram", "recommendation"} <= set(usability)
    assert usability["NNAPI"]["nodes"] > 0 and usability["NNAPI"]["suitability"] in ("YES", "MAYBE", "NO")


def test_ort_has_its_reduced_build_operator_config_beside_it(exported):
    """onnxruntime's `required_operators_and_types.config` for a minimal ORT Mobile build, named by the sidecar and
    the manifest, listing the operators the .ort runs (ORT's own parser reads it)."""
    from onnxruntime.tools.reduced_build_config_parser import parse_config

    result = exported["fixed"]
    entry = _by(result, "ort")
    path = result.output_dir / entry["path"]
    config = path.parent / entry["ops_config"]
    assert config.name == path.name + ".required_operators_and_types.config" and config.is_file()
    assert json.loads(Path(str(path) + ".meta.json").read_text())["ops_config"] == config.name
    text = config.read_text()
    assert f"# - {path.name}\n" in text and "/tmp" not in text  # names the .ort, not the converter's temp folder
    required, _ = parse_config(str(config))
    ops = {op for domain in required.values() for ops in domain.values() for op in ops}
    assert any("Conv" in op for op in ops), ops  # Conv, or FusedConv once ORT fused its activation


def test_manifest_describes_each_artifact(exported):
    result = exported["fixed"]
    manifest = json.loads(result.manifest_path.read_text())
    assert manifest == result.manifest
    assert set(manifest["artifacts"]) == {f"{MODEL}.fp32.onnx", f"{MODEL}.fp32.ort"}
    for name, a in manifest["artifacts"].items():
        path = result.output_dir / name
        assert a["bytes"] == path.stat().st_size
        from sqnxt_edge.artifacts import sha256_file

        assert a["sha256"] == sha256_file(path)
        assert a["params"] > 0 and a["macs"] > 0 and a["opset"] == 17
        assert {"torch", "onnx", "onnxruntime", "onnxsim"} <= set(a["tools"])
    assert manifest["checkpoint"]["model"] == MODEL and manifest["checkpoint"]["sha256"]


def test_fp16_onnx_keeps_float_io(ckpt_path, tmp_path):
    import onnx

    result = export(ckpt_path, ExportConfig(formats=["onnx"], fp16=True, output_dir=tmp_path, verify_size=60))
    entry = _by(result, "onnx", "fp16")
    model = onnx.load(str(tmp_path / entry["path"]))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert entry["parity"]["passed"] and entry["bytes"] < _by(result, "onnx")["bytes"] * 0.6
    assert read_onnx_metadata(tmp_path / entry["path"])["precision"] == "fp16"


def test_failed_verification_leaves_nothing_and_keeps_good_file(ckpt_path, tmp_path, monkeypatch):
    from sqnxt_edge.export import verify

    good = export(ckpt_path, ExportConfig(formats=["onnx"], output_dir=tmp_path, verify_size=30))
    onnx_path = tmp_path / f"{MODEL}.fp32.onnx"
    before = onnx_path.read_bytes()
    manifest_before = good.manifest_path.read_text()
    real = verify.compare

    def broken(got, ref, precision, name="artifact"):
        return real(got, ref + 1.0, precision, name)  # PyTorch "disagrees" by 1.0 everywhere

    monkeypatch.setattr("sqnxt_edge.export.context.compare", broken)
    with pytest.raises(ExportError, match="does not match PyTorch"):
        export(ckpt_path, ExportConfig(formats=["onnx"], opset=13, output_dir=tmp_path, verify_size=30))
    assert onnx_path.read_bytes() == before  # the good file was not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [onnx_path.name, onnx_path.name + ".meta.json", "manifest.json"]
    )  # no temp files, no staging folder
    assert json.loads(good.manifest_path.read_text())["artifacts"] == json.loads(manifest_before)["artifacts"]

    fresh = tmp_path / "fresh"
    with pytest.raises(ExportError):
        export(ckpt_path, ExportConfig(formats=["onnx"], output_dir=fresh, verify_size=30))
    assert list(fresh.iterdir()) == []


def test_no_verify_keeps_unverified_artifact(ckpt_path, tmp_path):
    result = export(ckpt_path, ExportConfig(formats=["onnx"], verify=False, simplify=False, output_dir=tmp_path))
    assert result.artifacts[0]["parity"] is None and (tmp_path / f"{MODEL}.fp32.onnx").is_file()


@pytest.mark.parametrize(
    "config, match",
    [
        (dict(batch=2, dynamic_batch=True), "exclude each other"),
        (dict(formats=["coreml"]), "unknown format"),
        (dict(int8_tune=True), "only apply with --int8"),
        (dict(calib_method="kl", int8=True), "calib-method"),
        (dict(opset=3), "opset"),
    ],
)
def test_bad_config(config, match):
    with pytest.raises(ExportError, match=match):
        ExportConfig(**config)


def test_formats_parse_lists_and_all():
    from sqnxt_edge.export import FORMATS, parse_formats

    assert parse_formats(["onnx,tflite", "ort"]) == ["onnx", "ort", "tflite"]
    assert parse_formats("all") == list(FORMATS)
    assert all(f.precisions[0] == "fp32" for f in FORMATS.values())  # fp32 first: the others are checked against it
    assert all({"fp32", "fp16", "int8"} <= set(FORMATS[name].precisions) for name in ("onnx", "ort", "tflite"))
    assert set(FORMATS["pte"].precisions) == {"fp32", "int8"}  # --fp16 warns for .pte


def test_cli_exports_and_prints_json(cli, ckpt_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = cli("export", ckpt_path, "--format", "onnx", "--json")
    assert res.exit_code == 0, res.stderr
    manifest = json.loads(res.stdout)
    assert (tmp_path / "export" / "tiny" / f"{MODEL}.fp32.onnx").is_file()  # default folder export/<stem>/
    assert manifest["artifacts"][f"{MODEL}.fp32.onnx"]["parity"]["passed"]
    res = cli("export", ckpt_path, "-o", tmp_path / "t")
    assert res.exit_code == 0 and "fp32.onnx" in res.stdout


@pytest.mark.parametrize(
    "args, match",
    [
        (["--format", "coreml"], "unknown format"),
        (["--batch", "2", "--dynamic-batch"], "exclude each other"),
        (["--calib-size", "10"], "--calib-size only apply with --int8"),
        (["--calib-size", "0", "--int8"], "--calib-size must be at least 1"),
        (["-o", "/proc/forbidden"], "cannot write"),
        (["MISSING"], "checkpoint not found"),
    ],
)
def test_cli_bad_input_one_line(cli, ckpt_path, tmp_path, args, match):
    res = cli("export", tmp_path / "missing.pt") if args == ["MISSING"] else cli("export", ckpt_path, *args)
    assert res.exit_code == 1
    lines = [l for l in res.stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and match in lines[0], res.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_checkpoint(cli, tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    res = cli("export", bad)
    assert res.exit_code == 1 and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "export").exists()


def test_missing_tflite_extra_is_one_line(cli, ckpt_path, monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "litert_torch", None)  # what an install without the extra looks like
    res = cli("export", ckpt_path, "--format", "onnx,tflite", "-o", tmp_path)
    assert res.exit_code == 1
    assert "pip install 'sqnxt-edge[tflite]'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # checked before any work


def test_default_folder_of_a_run_best_checkpoint_is_the_run_name(tmp_path, monkeypatch):
    from sqnxt_edge.export import ExportConfig, export

    ckpt = make_checkpoint(tmp_path / "runs" / "digits-run7" / "best.pt")
    monkeypatch.chdir(tmp_path)
    result = export(ckpt, ExportConfig(formats=["onnx"]))
    assert result.output_dir == Path("export") / "digits-run7"
    assert (tmp_path / "export" / "digits-run7" / f"{MODEL}.fp32.onnx").is_file()

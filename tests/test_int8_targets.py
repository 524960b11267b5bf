"""The default int8 export is portable (safe on every CPU class), says where it was verified, falls back to the next
safe configuration when one misses the gates, and a file made for one CPU class is named for it and verified there."""

from __future__ import annotations

import json

import pytest

from sqnxt_edge.errors import ExportError
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.export.context import ExportRun
from sqnxt_edge.quantize.targets import CPU_CLASSES, class_of
from sqnxt_edge.runner import cpu_info

pytestmark = pytest.mark.slow
HERE = class_of(cpu_info()).name


def _int8(result, fmt="onnx"):
    return next(a for a in result.artifacts if a["format"] == fmt and a["precision"] == "int8")


@pytest.fixture(scope="module")
def portable(digits_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("portable")
    return export(digits_checkpoint, ExportConfig(formats=["onnx", "ort"], int8=True, calib_size=200, output_dir=out))


def test_default_int8_is_portable_and_says_where_it_was_verified(portable):
    entry = _int8(portable)
    q = entry["quantization"]
    assert entry["path"] == "1.0-SqNxt-23.int8.onnx" and q["target"] == "portable"
    assert set(q["safe_on"]) == set(CPU_CLASSES) and not (q["activation_type"] == "uint8" and not q["reduce_range"])
    tried = q["choice"]["tried"]
    assert tried[-1]["passed"] and tried[-1]["label"] == q["label"] and q["label"] in q["choice"]["why"]
    assert tried[-1]["agreement_pytorch"] >= 99.0 and tried[-1]["drop"] <= 1.0
    assert [v["cpu_class"] for v in entry["verified_on"]] == [HERE]
    for path in (entry["path"], _int8(portable, "ort")["path"]):
        meta = json.loads((portable.output_dir / (path + ".meta.json")).read_text())
        assert meta["int8_target"] == "portable" and set(meta["safe_on"]) == set(CPU_CLASSES)
        assert meta["verified_on"][0]["cpu_class"] == HERE and meta["quantization"]["label"] == q["label"]


def test_a_candidate_that_misses_the_gates_gives_way_to_the_next(digits_checkpoint, tmp_path, monkeypatch):
    real, calls = ExportRun.int8_verdict, []

    def first_fails(self, fp32, int8):
        verdict = real(self, fp32, int8)
        calls.append(verdict)
        return {**verdict, "passed": False, "why": "forced by the test"} if len(calls) == 1 else verdict

    monkeypatch.setattr(ExportRun, "int8_verdict", first_fails)
    result = export(digits_checkpoint, ExportConfig(int8=True, calib_size=100, output_dir=tmp_path))
    q = _int8(result)["quantization"]
    tried = q["choice"]["tried"]
    assert len(tried) == 2 and not tried[0]["passed"] and tried[1]["passed"] and q["label"] == tried[1]["label"]
    assert tried[0]["label"] != tried[1]["label"] and tried[0]["why"] == "forced by the test"
    assert any("misses the int8 gates" in w for w in result.warnings)


def test_when_no_safe_configuration_passes_the_export_stops_in_one_line(digits_checkpoint, tmp_path, monkeypatch):
    def never(self, fp32, int8):
        return {"passed": False, "why": "agreement 80.0% < 95%"}

    monkeypatch.setattr(ExportRun, "int8_verdict", never)
    with pytest.raises(ExportError) as err:
        export(digits_checkpoint, ExportConfig(int8=True, calib_size=50, output_dir=tmp_path))
    message = str(err.value)
    assert "\n" not in message and message.startswith("no int8 configuration safe on portable passes")
    assert "QDQ U8S8 per-channel 7-bit: agreement 80.0% < 95%" in message and "QDQ S8S8 per-channel" in message
    assert not list(tmp_path.glob("*int8*")) and (tmp_path / "1.0-SqNxt-23.fp32.onnx").is_file()


def test_a_file_for_this_machines_class_is_named_for_it(digits_checkpoint, tmp_path):
    result = export(digits_checkpoint, ExportConfig(int8=True, int8_target="here", calib_size=100, output_dir=tmp_path))
    entry = _int8(result)
    assert entry["path"] == f"1.0-SqNxt-23.int8-{HERE}.onnx" and entry["quantization"]["target"] == HERE
    assert HERE in entry["quantization"]["safe_on"]
    meta = json.loads((tmp_path / (entry["path"] + ".meta.json")).read_text())
    assert meta["int8_target"] == HERE and meta["precision"] == "int8"


def test_a_file_for_another_class_needs_a_board_of_that_class(digits_checkpoint, tmp_path, cli):
    other = "arm-neon" if HERE.startswith("x86") else "x86-avx2"
    with pytest.raises(ExportError, match=f"--int8-target {other}: a file made for {other} must be verified"):
        export(digits_checkpoint, ExportConfig(int8=True, int8_target=other, output_dir=tmp_path))
    assert not list(tmp_path.glob("*.onnx"))
    res = cli("export", digits_checkpoint, "--int8", "--int8-target", other, "-o", tmp_path)
    assert res.exit_code == 1 and "--verify-on BOARD" in res.stderr and "Traceback" not in res.stderr
    res = cli("export", digits_checkpoint, "--int8-target", "x86-vnni", "-o", tmp_path)
    assert res.exit_code == 1 and "--int8-target only apply with --int8" in res.stderr

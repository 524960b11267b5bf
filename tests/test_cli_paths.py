"""Command paths that only the library tests reached before, now run from the command line: int8 tuning, a
calibration folder, entropy calibration, held-out int8 data, select, demo, estimate --calibrate, pipeline --device,
eval --split/--runtime, `python -m sqnxt_edge` and -V. (`devices emulate --rebuild` needs qemu + debootstrap and a
minute: tests/test_emulate.py owns the emulated boards.)"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from sqnxt_edge._version import __version__


@pytest.fixture(scope="module")
def fp32_onnx(digits_checkpoint, tmp_path_factory):
    """The digits checkpoint as a verified fp32 .onnx (the library's export: the CLI's is tested below)."""
    from sqnxt_edge.export import ExportConfig, export

    result = export(digits_checkpoint, ExportConfig(formats=["onnx"], output_dir=tmp_path_factory.mktemp("fp32")))
    return result.paths()[0]


def _digits_pngs(root, split: str, per_class: int, split_folder: bool = False):
    """Real images as PNG files: digits' `split` written as root/<class>/<i>.png (root/<split>/<class>/... with
    `split_folder`, the layout of the `folder` dataset's own splits)."""
    from PIL import Image

    from sqnxt_edge.data import load_dataset

    data = load_dataset("digits", split)
    base = root / split if split_folder else root
    for label, name in enumerate(data.classes):
        (base / name).mkdir(parents=True)
        for j, i in enumerate(np.flatnonzero(data.labels == label)[:per_class]):
            Image.fromarray(data.images[i].squeeze()).save(base / name / f"{j}.png")
    return root


def _int8(manifest: dict) -> dict:
    (art,) = [a for a in manifest["artifacts"].values() if a["precision"] == "int8"]
    return art


# -- the entry points ----------------------------------------------------------------------------------------------
def test_python_m_and_short_version_flag(cli):
    assert cli("-V").stdout.strip() == f"sqnxt-edge {__version__}"
    run = subprocess.run([sys.executable, "-m", "sqnxt_edge", "-V"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == f"sqnxt-edge {__version__}"
    run = subprocess.run([sys.executable, "-m", "sqnxt_edge"], capture_output=True, text=True, timeout=120)
    assert (
        run.returncode == 2
        and "Usage" in run.stdout + run.stderr
        and all(c in run.stdout + run.stderr for c in ("export", "bench"))
    )


# -- eval, estimate --------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_eval_split_and_runtime(cli, fp32_onnx, digits_checkpoint):
    train = json.loads(cli("eval", fp32_onnx, "--split", "train", "-r", "onnxruntime", "--json").stdout)
    test = json.loads(cli("eval", fp32_onnx, "--split", "test", "--runtime", "onnxruntime", "--json").stdout)
    assert (train["split"], train["n"], train["dataset"]) == ("train", 1437, "digits")  # the embedded split's sizes
    assert (test["split"], test["n"]) == ("test", 360)
    assert train["runtime"].startswith("onnxruntime") and test["runtime"].startswith("onnxruntime")
    torch = json.loads(cli("eval", digits_checkpoint, "--split", "test", "--json").stdout)
    assert test["top1"] == pytest.approx(torch["top1"], abs=0.3)  # fp32 parity: the same answers as PyTorch


@pytest.mark.slow
def test_estimate_calibrate_locally(cli, fp32_onnx, reg):
    res = cli("estimate", fp32_onnx, "-d", "local", "--calibrate", "-t", "1", "--devices", reg, "--json")
    assert res.exit_code == 0, res.stderr
    fitted = json.loads(res.stdout)
    assert fitted["measured_ms"] > 0 and fitted["ms"] > 0
    assert any("[calibration.local.fp32]" in n for n in fitted["notes"])
    assert "[calibration.local.fp32]" in reg.read_text()  # stored in the registry the flag named
    again = json.loads(cli("estimate", fp32_onnx, "-d", "local", "-t", "1", "--devices", reg, "--json").stdout)
    assert again["ms"] == pytest.approx(fitted["ms"], rel=1e-6)  # the next estimate uses the stored factors


@pytest.mark.slow
def test_select_at_32px(cli, reg, tmp_path):
    budget = 4.0
    res = cli(
        "select", "-d", "rpi4", "--budget-ms", budget, "-s", 32, "-p", "int8", "--devices", reg,
        "--plot", tmp_path / "pareto.png", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["input_size"] == 32 and got["budget_ms"] == budget and got["candidates"]
    assert all(c["precision"] == "int8" for c in got["candidates"])
    assert all(c["fits"] == (c["latency_high_ms"] <= budget) for c in got["candidates"])  # the range's upper end
    fitting = [c for c in got["candidates"] if c["fits"]]
    assert fitting and len(fitting) < len(got["candidates"])  # the budget splits the zoo at 32 px
    assert got["fitting"] == [f"{c['model']} {c['precision']}" for c in fitting]
    known = [c["top1"] for c in fitting if c["top1"] is not None]
    assert known == sorted(known, reverse=True) and fitting[: len(known)] == [c for c in fitting if c["top1"]]
    assert (tmp_path / "pareto.png").read_bytes().startswith(b"\x89PNG")


# -- export: the int8 paths ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_export_int8_calibrated_on_a_folder_and_judged_on_held_out_data(cli, digits_checkpoint, tmp_path):
    calib = _digits_pngs(tmp_path / "calib", "train", per_class=10)
    held_out = _digits_pngs(tmp_path / "held-out", "test", per_class=10, split_folder=True)
    _digits_pngs(held_out, "train", per_class=2, split_folder=True)  # the folder dataset wants both splits
    args = ("export", digits_checkpoint, "--int8", "--calib-data", calib, "--max-drop", 5)
    res = cli(*args, "--eval-data", "folder", "--data-dir", held_out, "-o", tmp_path / "x", "--json")
    assert res.exit_code == 0, res.stderr
    assert f"calibration images from {calib}" in res.stderr and "on 100 calibration images" in res.stderr
    int8 = _int8(json.loads(res.stdout))
    assert int8["accuracy"]["n"] == 100  # judged on the 100 held-out PNGs, not on digits' 360 test images
    assert int8["accuracy"]["drop"] <= 5 and int8["parity"]["passed"]


@pytest.mark.slow
def test_export_calib_method_entropy_reaches_the_quantizer(cli, digits_checkpoint, tmp_path):
    """The path, not its quality: entropy calibration of this digits model agreed with fp32 on 15.8% of the test
    images when measured (minmax 95.8%), so the default gates would refuse it; they are opened here."""
    args = ("export", digits_checkpoint, "--int8", "--calib-method", "entropy", "--calib-size", 50, "--no-verify")
    res = cli(*args, "--max-drop", 100, "-o", tmp_path, "--json")
    assert res.exit_code == 0, res.stderr
    int8 = _int8(json.loads(res.stdout))
    assert int8["quantization"]["calib_method"] == "entropy" and "entropy" in int8["quantization"]["label"]
    assert int8["accuracy"]["n"] == 360 and int8["parity"] is None


@pytest.mark.slow
def test_export_int8_tune_end_to_end(cli, digits_checkpoint, tmp_path):
    res = cli("export", digits_checkpoint, "--int8", "--int8-tune", "--max-drop", 5, "-o", tmp_path, "--json")
    assert res.exit_code == 0, res.stderr
    int8 = _int8(json.loads(res.stdout))
    tune = int8["int8_tune"]
    assert len(tune["rows"]) > 1
    (kept,) = [r for r in tune["rows"] if r["chosen"]]
    assert kept["label"] == int8["quantization"]["label"] and kept["within_budget"] and kept["drop"] <= 5
    assert kept["p50_ms"] == min(r["p50_ms"] for r in tune["rows"] if r["within_budget"])  # the fastest that fits
    assert int8["accuracy"]["drop"] <= 5
    ev = json.loads(cli("eval", tmp_path / "1.0-SqNxt-23.int8.onnx", "--json").stdout)
    # the kept file is the one that was judged; int8 kernels with another thread count and batch flip an image or
    # two (measured: 87.78% here vs 88.06% in the report, 1 image of 360)
    assert ev["top1"] == pytest.approx(int8["accuracy"]["top1_int8"], abs=1.0)


# -- the composite commands ------------------------------------------------------------------------------------------
QUICK = ("--threads", 1)


@pytest.mark.slow
def test_pipeline_on_the_local_device(cli, digits_checkpoint, tmp_path):
    res = cli(
        "pipeline", digits_checkpoint, "-d", "local", "-f", "onnx", *QUICK,
        "--export-dir", tmp_path / "exp", "-o", tmp_path / "report", "--json",
    )  # fmt: skip
    assert res.exit_code == 0, res.stderr
    assert "deprecated" not in res.stderr
    report = json.loads(res.stdout)
    assert (tmp_path / "report" / "results.json").exists() and (tmp_path / "exp" / "manifest.json").exists()
    assert report["config"]["device"] == "local" and report["config"]["formats"] == ["onnx"]
    names = {r["artifact"].rsplit("/", 1)[-1] for r in report["bench"]["results"]}
    assert names == {"1.0-SqNxt-23.fp32.onnx", digits_checkpoint.name}  # the artifact and the PyTorch baseline
    assert all(r["threads"] == 1 for r in report["bench"]["results"])


@pytest.mark.slow
def test_demo_runs_for_real_with_one_epoch(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the demo's export folder is export/<run> under the working directory
    res = cli("demo", "-e", 1, "--no-int8", "-f", "onnx", *QUICK, "-o", tmp_path / "demo", "--json")
    assert res.exit_code == 0, res.stderr
    report = json.loads(res.stdout)
    assert (tmp_path / "demo" / "train" / "best.pt").exists() and (tmp_path / "demo" / "report").is_dir()
    assert (tmp_path / "export" / "demo" / "1.0-SqNxt-23.fp32.onnx").exists()
    assert report["stages"][0]["stage"] == "train (1 epochs)"
    assert {r["artifact"].rsplit("/", 1)[-1] for r in report["bench"]["results"]} == {
        "1.0-SqNxt-23.fp32.onnx",
        "best.pt",
    }

"""ncnn: `export --format ncnn` (pnnx; an fp32 `.ncnn.param` with its `.ncnn.bin` beside it), the runner's ncnn
backend (fp16/bf16 off for fp32 files, threads through `opt.num_threads`, no per-layer profiler), the two files
travelling as one artifact (moved, copied, staged to a board, hashed in the manifest), `bench` naming the file to
ship, and the ncnn file's top-1 on an emulated Raspberry Pi 4 equal to this machine's.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sqnxt_edge import runner
from sqnxt_edge.artifacts import copy_artifact, move_artifact, sha256_file
from sqnxt_edge.bench.recommend import passed_verification, recommend, recommendation_lines
from sqnxt_edge.errors import MissingExtraError
from sqnxt_edge.formats import ALL_FORMATS, FORMATS, artifact_name, format_of, markdown_table

from needs import mark, module, need
from test_export import MODEL, make_checkpoint

has_ncnn = mark("ncnn", module("ncnn") and module("pnnx"), "ncnn / pnnx are not installed (pip install '.[ncnn]')")
NAME = f"{MODEL}.fp32.ncnn.param"


# -- the formats table and the contract (no runtime needed) --------------------------------------------------------


def test_the_table_names_ncnn_as_two_files_one_artifact():
    fmt = FORMATS["ncnn"]
    assert fmt.suffix == ".ncnn.param" and fmt.runtime == "ncnn" and fmt.family == "ncnn"
    assert fmt.precisions == ("fp32",) and fmt.extra == "ncnn" and fmt.module == "pnnx"
    assert artifact_name(MODEL, "fp32", "ncnn") == NAME
    assert format_of(NAME) is fmt and format_of("other.param") is fmt and format_of("x.onnx") is ALL_FORMATS["onnx"]
    assert runner.companions(NAME) == [f"{MODEL}.fp32.ncnn.bin"] and runner.companions("x.onnx") == []
    assert runner.describe(NAME)["format"] == "ncnn"
    assert runner.runtimes_for(NAME, "ncnn") == ["ncnn"]
    with pytest.raises(runner.RunnerError, match="openvino cannot run ncnn"):
        runner.runtimes_for(NAME, "openvino")
    row = next(line for line in markdown_table().splitlines() if line.startswith("| ncnn "))
    assert ".ncnn.param" in row and "| fp32 |" in row


def test_the_bin_moves_and_copies_with_its_param(tmp_path):
    src = tmp_path / "a" / NAME
    src.parent.mkdir()
    src.write_text("graph")
    Path(runner.companions(str(src))[0]).write_bytes(b"weights")
    Path(runner.sidecar_path(str(src))).write_text("{}")
    copied = copy_artifact(src, tmp_path / "b" / NAME)
    moved = move_artifact(src, tmp_path / "c.ncnn.param")
    for path in (copied, moved):
        assert Path(runner.companions(str(path))[0]).read_bytes() == b"weights"
        assert Path(runner.sidecar_path(str(path))).is_file()
        assert runner.artifact_bytes(str(path)) == len("graph") + len("weights")
    assert sorted(p.name for p in src.parent.iterdir()) == []


def test_a_board_job_carries_the_bin(tmp_path):
    from sqnxt_edge.devices.transport import RemoteJob

    art = tmp_path / NAME
    art.write_text("graph")
    Path(runner.companions(str(art))[0]).write_bytes(b"weights")
    (tmp_path / "stage").mkdir()
    job = RemoteJob.build(tmp_path / "stage", [art], runner.Settings())
    (rel,) = job.path_map
    assert (job.stage / rel).is_file() and (job.stage / runner.companions(rel)[0]).read_bytes() == b"weights"


def test_a_journalled_artifact_is_adopted_only_with_its_bin(tmp_path):
    from sqnxt_edge.export.staging import adopt, journal

    out, stage = tmp_path / "out", tmp_path / "out" / ".stage"
    stage.mkdir(parents=True)
    art, weights = out / NAME, Path(runner.companions(str(out / NAME))[0])
    art.write_text("graph")
    weights.write_bytes(b"weights")
    entry = {"path": NAME, "bytes": art.stat().st_size, "sha256": sha256_file(art)}
    entry["companions"] = [{"path": weights.name, "bytes": 7, "sha256": sha256_file(weights)}]
    journal(stage, entry, {})
    assert [e["path"] for e, _ in adopt(stage, out)] == [NAME]
    weights.write_bytes(b"other weights")  # the graph is in place, its weights are not the verified ones
    assert adopt(stage, out) == []


# -- which file to ship ----------------------------------------------------------------------------------------------


def _result(path: Path, p50: float, precision: str = "fp32", fmt: str = "onnx", device="local", **extra) -> dict:
    return {
        "artifact": str(path),
        "format": fmt,
        "precision": precision,
        "runtime": {"onnx": "onnxruntime", "ncnn": "ncnn", "pytorch": "torch"}[fmt],
        "threads": 1,
        "size_bytes": 1 << 20,
        "latency_ms": {"mean": p50, "std": 0.0, "min": p50, "p50": p50, "p90": p50, "p99": p50, "max": p50},
        "top1": 0.98,
        "env": {"device": device},
        **extra,
    }


def _artifact(folder: Path, name: str, verified: bool) -> Path:
    path = folder / name
    path.write_text("x")
    meta = {"precision": "fp32", **({"verified_on": [{"where": "this machine"}]} if verified else {})}
    Path(runner.sidecar_path(str(path))).write_text(json.dumps(meta))
    return path


def test_recommend_names_the_fastest_verified_file_per_device_and_precision(tmp_path):
    onnx = _artifact(tmp_path, "m.fp32.onnx", True)
    ncnn = _artifact(tmp_path, NAME, True)
    fast_unverified = _artifact(tmp_path, "m.fp32.tflite", False)
    int8 = _artifact(tmp_path, "m.int8.onnx", True)
    ckpt = tmp_path / "best.pt"
    results = [
        _result(onnx, 2.0),
        _result(ncnn, 1.5, fmt="ncnn"),
        _result(fast_unverified, 0.5),
        _result(ckpt, 0.1, fmt="pytorch"),
        _result(int8, 1.8, precision="int8"),
        {**_result(onnx, 0.9, device="?"), "device": "rpi5"},  # a several-board bench names each result's board
        {"artifact": str(onnx), "error": "failed"},
    ]
    got = {(r.device, r.precision): r for r in recommend(results)}
    assert sorted(got) == [("local", "fp32"), ("local", "int8"), ("rpi5", "fp32")]
    best = got["local", "fp32"]
    assert best.artifact == str(ncnn) and best.runtime == "ncnn" and best.p50_ms == 1.5 and best.candidates == 2
    assert "p50 1.500 ms" in best.why and "m.fp32.onnx" in best.why and "1.00 MB" in best.why and "98.00%" in best.why
    assert {Path(e["artifact"]).name for e in best.excluded} == {"m.fp32.tflite", "best.pt"}
    assert got["local", "int8"].artifact == str(int8) and got["rpi5", "fp32"].artifact == str(onnx)
    lines = recommendation_lines([r.to_dict() for r in recommend(results)])
    assert lines[0].startswith(f"local, fp32: ship {NAME} with ncnn (")
    assert passed_verification(ncnn) and not passed_verification(fast_unverified) and not passed_verification(ckpt)


def test_recommend_names_nothing_on_an_emulated_board_or_without_verified_files(tmp_path):
    onnx = _artifact(tmp_path, "m.fp32.onnx", True)
    emulated = recommend([_result(onnx, 1.0, device="pi", emulated=True)])
    assert emulated[0].artifact is None and "emulator" in emulated[0].why
    unverified = recommend([_result(_artifact(tmp_path, "n.fp32.onnx", False), 1.0)])
    assert unverified[0].artifact is None and "passed verification" in unverified[0].why
    assert "no file to recommend" in unverified[0].line()


# -- a real export (pnnx) and the runner's ncnn backend ------------------------------------------------------------


@pytest.fixture(scope="module")
def ncnn_export(tmp_path_factory):
    need("ncnn", module("ncnn") and module("pnnx"), "ncnn / pnnx are not installed (pip install '.[ncnn]')")
    from sqnxt_edge.export import ExportConfig, export

    ckpt = make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")
    out = tmp_path_factory.mktemp("ncnn")
    # --int8 asks ncnn for what the wheels cannot make (one line); the fp32 ONNX beside it is the bench's other file
    result = export(ckpt, ExportConfig(formats=["ncnn"], int8=True, output_dir=out, verify_size=100))
    export(ckpt, ExportConfig(formats=["onnx"], output_dir=out, verify_size=100))
    return SimpleNamespace(ckpt=ckpt, result=result, out=out, path=out / NAME)


@has_ncnn
@pytest.mark.slow
def test_export_writes_the_pair_verified_and_hashed_and_nothing_else(ncnn_export):
    result, out = ncnn_export.result, ncnn_export.out
    entry = next(a for a in result.artifacts if a["format"] == "ncnn")
    weights = out / f"{MODEL}.fp32.ncnn.bin"
    assert entry["path"] == NAME and entry["sha256"] == sha256_file(out / NAME)
    assert entry["companions"] == [
        {"path": weights.name, "bytes": weights.stat().st_size, "sha256": sha256_file(weights)}
    ]
    assert entry["parity"]["passed"] and entry["parity"]["runtime"].startswith("ncnn ")
    assert entry["parity"]["max_abs_diff"] <= 1e-4 and entry["parity"]["top1_agreement"] == 1.0
    assert entry["input"] == {"name": "in0", "shape": [1, 3, 32, 32], "layout": "NCHW", "dtype": "float32"}
    assert [(a["format"], a["precision"]) for a in result.artifacts] == [("ncnn", "fp32")]  # no ncnn int8
    assert any(w.startswith("ncnn int8 not written: ") and "ncnn2int8" in w for w in result.warnings)
    assert json.loads((out / "manifest.json").read_text())["artifacts"][NAME]["companions"] == entry["companions"]
    meta = json.loads(Path(runner.sidecar_path(str(out / NAME))).read_text())
    assert meta["input_name"] == "in0" and meta["output_name"] == "out0" and meta["weights"] == weights.name
    # pnnx's own files (.pnnx.param, .pnnx.onnx, *_ncnn.py ...) stay in its temp folder
    ncnn_files = sorted(p.name for p in out.iterdir() if "ncnn" in p.name or "pnnx" in p.name)
    assert ncnn_files == [weights.name, NAME, NAME + ".meta.json"]


@has_ncnn
@pytest.mark.slow
def test_the_backend_runs_fp32_in_fp32_on_its_threads(ncnn_export):
    from sqnxt_edge import load_checkpoint
    from sqnxt_edge.data import preprocess

    m = runner.open_model(str(ncnn_export.path), threads=2)
    assert m.runtime == "ncnn" and m.precision == "fp32" and m.fixed_batch is None
    opt = m.backend.net.opt
    assert opt.num_threads == 2 and not opt.use_vulkan_compute
    assert not any(getattr(opt, n) for n in dir(opt) if n.startswith(("use_fp16_", "use_bf16_")))
    # independent of the exporter: a batch of 5 (image by image inside) against PyTorch
    ckpt = load_checkpoint(ncnn_export.ckpt)
    images = np.random.default_rng(4).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        want = ckpt.build_model()(preprocess(images, 32, ckpt.mean, ckpt.std)).numpy()
    got = m.predict(images)
    assert got.shape == want.shape and np.abs(got - want).max() <= 1e-4
    with pytest.raises(runner.RunnerError, match=r"ncnn cannot profile: .*NCNN_BENCHMARK"):
        m.profile(m.synthetic(1), 0, 1, lambda: None)


@has_ncnn
@pytest.mark.slow
def test_the_backend_needs_the_bin_and_the_sidecar(ncnn_export, tmp_path):
    lone = tmp_path / NAME
    lone.write_bytes(ncnn_export.path.read_bytes())
    with pytest.raises(runner.RunnerError, match=r"weights .*ncnn\.bin are not beside it"):
        runner.open_model(str(lone))
    Path(runner.companions(str(lone))[0]).write_bytes(Path(runner.companions(str(ncnn_export.path))[0]).read_bytes())
    with pytest.raises(runner.RunnerError, match=r"needs its \.meta\.json"):
        runner.open_model(str(lone))


@has_ncnn
@pytest.mark.slow
def test_eval_and_bench_take_the_ncnn_file(cli, ncnn_export, tmp_path):
    onnx = ncnn_export.out / f"{MODEL}.fp32.onnx"
    here = {p: json.loads(cli("eval", p, "--data", "digits", "--json").stdout) for p in (onnx, ncnn_export.path)}
    assert here[onnx]["n"] == here[ncnn_export.path]["n"] > 0
    assert here[onnx]["top1"] == here[ncnn_export.path]["top1"]
    args = ["--json", "--warmup", "0", "--runs", "2", "--min-seconds", "0", "--threads", "1", "-o", tmp_path / "b.md"]
    r = cli("bench", ncnn_export.path, onnx, *args)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    row = next(x for x in out["results"] if x["format"] == "ncnn")
    assert row["runtime"] == "ncnn" and row["threads"] == 1 and row["precision"] == "fp32"
    assert row["size_bytes"] == runner.artifact_bytes(str(ncnn_export.path)) > ncnn_export.path.stat().st_size
    (rec,) = out["recommended"]
    assert rec["device"] == "local" and rec["precision"] == "fp32" and rec["candidates"] == len(out["results"])
    assert rec["artifact"] in {str(ncnn_export.path), str(onnx)}
    assert "local, fp32: ship " in (tmp_path / "b.md").read_text()


def test_a_missing_converter_is_one_line(tmp_path, monkeypatch):
    from sqnxt_edge.export import ExportConfig, export

    monkeypatch.setitem(sys.modules, "pnnx", None)  # `import pnnx` now raises ImportError
    config = ExportConfig(formats=["ncnn"], output_dir=tmp_path / "out")
    with pytest.raises(
        MissingExtraError, match=r"--format ncnn needs the 'pnnx' package: pip install 'sqnxt-edge\[ncnn\]'"
    ):
        export(tmp_path / "missing.pt", config)


# -- an emulated Raspberry Pi 4 -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pi(tmp_path_factory):
    """An emulated rpi4 named 'pi' (its rootfs has the ncnn aarch64 wheel); SQNXT_EDGE_TEST_CACHE keeps it."""
    from sqnxt_edge.devices import emulate, rootfs

    need("qemu", all(rootfs._which(t) is not None for t in rootfs.TOOLS), "needs qemu-user-static and debootstrap")
    cache = Path(os.environ.get("SQNXT_EDGE_TEST_CACHE") or os.environ["SQNXT_EDGE_CACHE"])
    devices = tmp_path_factory.mktemp("ncnn-devices") / "devices.toml"
    device, info = emulate.emulate_device("pi", "rpi4", devices, cache=cache)
    return SimpleNamespace(device=device, devices=devices, info=info)


@has_ncnn
@pytest.mark.slow
def test_the_ncnn_file_gives_the_same_top1_on_an_emulated_pi4(pi, digits_checkpoint, tmp_path):
    """Accuracy only: an emulator's timings are never a board's speed."""
    from sqnxt_edge.devices import check_device
    from sqnxt_edge.export import ExportConfig, export
    from sqnxt_edge.training import evaluate

    version = runner.runtime_versions()[0]["ncnn"]
    assert pi.info["rootfs"]["wheels"]["ncnn"] == version  # the release this machine exported and verified with
    assert check_device("pi", pi.devices)["runtimes"]["ncnn"] == version
    config = ExportConfig(
        formats=["ncnn"], output_dir=tmp_path / "out", verify_size=40, verify_on="pi", devices_file=pi.devices
    )
    result = export(digits_checkpoint, config)
    board = result.artifacts[0]["parity"]["board"]  # --verify-on: the .bin travelled with the .param
    assert board["passed"] and board["emulated"] and board["max_abs_diff"] <= 1e-4
    assert board["runtime"].startswith("ncnn")
    path = result.paths()[0]
    on_board = evaluate(path, data="digits", limit=40, board="pi", devices_file=pi.devices)
    here = evaluate(path, data="digits", limit=40)
    assert on_board.n == here.n == 40 and on_board.correct1 == here.correct1 and here.top1 > 85
    assert on_board.runtime.startswith("ncnn") and on_board.emulated
    assert on_board.env["arch"] == "aarch64" and on_board.env["model"] == "Cortex-A72"


def test_profile_says_why_ncnn_has_no_per_layer_times(cli, tmp_path):
    art = tmp_path / NAME
    art.write_text("graph")
    r = cli("profile", art)
    assert r.exit_code == 1 and "no per-layer profile" in r.stderr and "NCNN_BENCHMARK" in r.stderr, r.stderr

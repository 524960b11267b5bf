"""The one-file runner: its CLI contract (JSON schema, exit codes), fresh child per artifact, error isolation."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sqnxt_edge import runner
from sqnxt_edge.models import create_model

RUNNER = Path(runner.__file__)
FAST = ["--warmup", "1", "--runs", "3", "--min-seconds", "0", "--runtime", "onnxruntime"]
META = {
    "model_name": "1.0-SqNxt-23",
    "classes": [str(i) for i in range(10)],
    "mean": [0.5] * 3,
    "std": [0.5] * 3,
    "input_size": 32,
    "in_channels": 3,
    "layout": "NCHW",
    "precision": "fp32",
    "dataset": "digits",
}


def export_onnx(model: torch.nn.Module, path: Path, size: int = 32, dynamic: bool = True) -> Path:
    """A throwaway ONNX with the runner's sidecar metadata (the export stage makes the real ones)."""
    import warnings

    x = torch.randn(1, 3, size, size)
    axes = {"input": {0: "batch"}, "logits": {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (x,),
            str(path),
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes=axes,
            dynamo=False,
        )
    path.with_name(path.name + ".meta.json").write_text(json.dumps({**META, "input_size": size}))
    return path


@pytest.fixture(scope="session")
def onnx_models(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("runner-models")
    torch.manual_seed(0)
    model = create_model("1.0-SqNxt-23", 10, 32)
    return {
        "dynamic": export_onnx(model, folder / "dyn.onnx"),
        "fixed": export_onnx(model, folder / "fixed.onnx", dynamic=False),
    }


def run(*args, cwd=None, script=RUNNER) -> tuple[int, dict | None, str]:
    proc = subprocess.run(
        [sys.executable, str(script), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    return proc.returncode, data, proc.stderr


def test_runner_imports_only_stdlib_numpy_and_runtimes():
    tree = ast.parse(RUNNER.read_text())
    allowed = set(sys.stdlib_module_names) | {"numpy", "onnxruntime", "ai_edge_litert", "tflite_runtime"}
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import in the one-file runner"
            imported.add(node.module.split(".")[0])
    assert "sqnxt_edge" not in imported
    assert imported <= allowed, imported - allowed
    # runtimes are imported by name from the runtime table; the package only as the PyTorch baseline's plugin
    assert {row[1] for row in runner.RUNTIMES.values()} == {
        "onnxruntime",
        "openvino",
        "ai_edge_litert",
        "tflite_runtime",
        "torch",
    }
    assert "sqnxt_edge." not in RUNNER.read_text()  # PyTorch comes in as a plugin the harness names


def test_torch_runs_only_through_its_plugin(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    code, data, _ = run(*FAST[:-2], "--runtime", "torch", ckpt)
    assert code == 1 and "runs through its harness only" in data["results"][0]["error"]


def test_auto_measures_every_installed_engine(onnx_models):
    """auto = one row per engine that runs the artifact here (OpenVINO too when installed), default first."""
    code, data, err = run(*FAST[:-2], "--threads", "1", onnx_models["dynamic"])
    assert code == 0, err
    engines = ["onnxruntime"] + (["openvino"] if runner.installed("openvino") else [])
    assert [r["runtime"] for r in data["results"]] == engines
    assert set(data["baseline"]) == set(engines) and all(r["threads"] == 1 for r in data["results"])


def test_copy_in_temp_folder_measures_with_full_schema(onnx_models, tmp_path):
    script = tmp_path / "runner.py"
    shutil.copy(RUNNER, script)
    art = shutil.copy(onnx_models["dynamic"], tmp_path / "m.onnx")
    shutil.copy(str(onnx_models["dynamic"]) + ".meta.json", tmp_path / "m.onnx.meta.json")
    code, data, err = run(*FAST, "--samples", "--threads", "1", "m.onnx", cwd=tmp_path, script=script)
    assert code == 0, err
    assert set(data) == {"runner_version", "env", "baseline", "results"}
    for key in ("arch", "model", "cores", "features", "hostname", "mem_total_mb", "governor", "numpy", "python"):
        assert key in data["env"]
    assert data["env"]["runtimes"]["onnxruntime"]
    (r,) = data["results"]
    assert r["artifact"] == "m.onnx" and r["format"] == "onnx" and r["precision"] == "fp32"
    assert r["runtime"] == "onnxruntime" and r["threads"] == 1 and r["batch"] == 1
    assert r["size_bytes"] == Path(art).stat().st_size
    assert set(r["latency_ms"]) == {"mean", "std", "min", "p50", "p90", "p99", "max"}
    lat = r["latency_ms"]
    assert lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert len(r["samples_ms"]) == r["runs"] >= 3
    assert r["throughput_ips"] == pytest.approx(1000.0 / lat["mean"])
    assert r["peak_rss_mb"] > data["baseline"]["onnxruntime"]["peak_rss_mb"] > 0
    assert r["model_peak_rss_mb"] == pytest.approx(r["peak_rss_mb"] - data["baseline"]["onnxruntime"]["peak_rss_mb"])
    assert r["init_ms"] > 0 and r["first_ms"] > 0


def test_samples_only_on_request_and_batch_scales_throughput(onnx_models):
    code, data, err = run(*FAST, "--batch", "3", onnx_models["dynamic"])
    assert code == 0, err
    (r,) = data["results"]
    assert "samples_ms" not in r and r["batch"] == 3
    assert r["throughput_ips"] == pytest.approx(3000.0 / r["latency_ms"]["mean"])


def test_each_artifact_in_a_fresh_child(onnx_models):
    code, data, err = run(*FAST, onnx_models["dynamic"], onnx_models["fixed"], onnx_models["dynamic"])
    assert code == 0, err
    pids = [r["pid"] for r in data["results"]]
    assert len(set(pids)) == 3


def test_failures_are_isolated_one_line_each(onnx_models, tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    unknown = tmp_path / "model.bin"
    unknown.write_bytes(b"x")
    arts = [onnx_models["fixed"], tmp_path / "missing.onnx", garbage, onnx_models["dynamic"], unknown]
    code, data, _err = run(*FAST, "--batch", "2", *arts)
    assert code == 1
    results = data["results"]
    assert [r["artifact"] for r in results] == [str(a) for a in arts]
    ok = [r for r in results if "error" not in r]
    assert [r["artifact"] for r in ok] == [str(onnx_models["dynamic"])] and ok[0]["batch"] == 2
    errors = {Path(r["artifact"]).name: r["error"] for r in results if "error" in r}
    assert "fixed batch of 1" in errors["fixed.onnx"]
    assert "not found" in errors["missing.onnx"]
    assert "cannot load" in errors["garbage.onnx"]
    assert "unsupported" in errors["model.bin"]
    assert all("\n" not in e for e in errors.values())


def test_runtime_not_installed_is_that_artifacts_error(onnx_models, tmp_path):
    try:  # onnxruntime is a dependency; tflite-runtime is in no extra (an inverse condition: a plain skip)
        import tflite_runtime  # noqa: F401

        pytest.skip("tflite-runtime is installed here: its absence cannot be shown")
    except ImportError:
        pass
    fake = tmp_path / "m.tflite"
    fake.write_bytes(b"\0" * 16)
    code, data, _ = run(*FAST, "--runtime", "tflite-runtime", fake, onnx_models["dynamic"])
    assert code == 1
    first, second = data["results"]
    assert "tflite-runtime is not installed" in first["error"]
    assert "tflite-runtime cannot run onnx" in second["error"]  # the chosen runtime applies to every artifact


@pytest.mark.parametrize(
    "args",
    [
        ["--runtime", "nope", "x.onnx"],
        ["--runs", "0", "x.onnx"],
        [],
        ["--batch", "0", "x.onnx"],
        ["--data", "missing.npz", "x.onnx"],
    ],
)
def test_usage_errors_exit_2(args):
    code, data, err = run(*args)
    assert code == 2 and data is None and "usage" in err


def test_env_only_lists_runtimes():
    code, data, _ = run("--env-only")
    assert code == 0
    assert set(data["runtimes"]) == {"onnxruntime", "openvino", "litert", "tflite-runtime", "numpy"}
    assert data["env"]["emulated"] is False
    assert data["runtimes"]["numpy"] == np.__version__
    assert data["env"]["cores"] >= 1 and data["runner_version"] == runner.RUNNER_VERSION


def test_data_npz_accuracy_matches_in_process_predict(onnx_models, tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=40)
    npz = tmp_path / "d.npz"
    np.savez(npz, labels=labels, images_32=images)
    model = runner.open_model(str(onnx_models["dynamic"]))
    expect = runner.topk_accuracy(model.predict(images), labels)
    code, data, err = run(*FAST, "--data", npz, onnx_models["dynamic"])
    assert code == 0, err
    r = data["results"][0]
    assert (r["top1"], r["top5"], r["n"]) == (expect["top1"], expect["top5"], 40)


def test_data_without_the_input_size_is_an_error(onnx_models, tmp_path):
    npz = tmp_path / "d.npz"
    np.savez(npz, labels=np.zeros(2, np.int64), images_64=np.zeros((2, 64, 64, 3), np.uint8))
    code, data, _ = run(*FAST, "--data", npz, onnx_models["dynamic"])
    assert code == 1 and "images_32" in data["results"][0]["error"]


def test_run_child_timeout_and_crash():
    payload, _ = runner.run_child([sys.executable, "-c", "import time; time.sleep(30)"], timeout=1)
    assert payload["error"].startswith("timed out after 1 s")
    payload, peak = runner.run_child([sys.executable, "-c", "raise SystemExit('boom')"])
    assert "exited with code 1: boom" in payload["error"] and peak > 0
    payload, _ = runner.run_child([sys.executable, "-c", "print('{\"a\": 1}')"])
    assert payload == {"a": 1}


@pytest.mark.parametrize("samples", [[1.0], [3.0, 1.0, 2.0], list(np.linspace(1, 100, 101))])
def test_summarize_matches_numpy(samples):
    s = runner.summarize(samples)
    a = np.asarray(samples)
    assert s["p50"] == pytest.approx(np.median(a)) and s["min"] == a.min() and s["max"] == a.max()
    assert s["p99"] == pytest.approx(np.percentile(a, 99)) and s["mean"] == pytest.approx(a.mean())
    assert s["std"] == (pytest.approx(a.std(ddof=1)) if len(a) > 1 else 0.0)


def test_time_runs_honours_runs_and_min_seconds():
    calls = []
    first, samples = runner.time_runs(lambda: calls.append(1), warmup=2, runs=5, min_seconds=0)
    assert len(samples) == 5 and len(calls) == 1 + 2 + 5 and first >= 0
    _, samples = runner.time_runs(lambda: None, warmup=0, runs=1, min_seconds=0.05)
    assert len(samples) > 1


def test_topk_accuracy():
    logits = np.tile(np.arange(6, dtype=np.float32), (4, 1))  # class 5 best, class 0 worst
    acc = runner.topk_accuracy(logits, np.array([5, 1, 0, 5]))
    assert acc == {"top1": 0.5, "top5": 0.75, "n": 4}
    assert runner.topk_accuracy(logits[:, :3], np.array([2, 1, 2, 2]))["top5"] is None

"""The runner: shipped as one file (a deterministic .pyz that runs where only numpy and a runtime are installed), its
CLI contract (JSON schema, exit codes), fresh child per artifact, error isolation, the backend interface and the
typed result."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sqnxt_edge import runner
from sqnxt_edge.models import create_model
from sqnxt_edge.runner import ship

PACKAGE = Path(runner.__file__).parent
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


def run(*args, cwd=None, script=None, python=sys.executable, env=None) -> tuple[int, dict | None, str]:
    """`python runner.pyz ARGS` (the file a board runs), its exit code, JSON and stderr."""
    script = script or ship.runner_pyz()
    proc = subprocess.run(
        [python, str(script), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300, env=env
    )
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        data = None
    return proc.returncode, data, proc.stderr


def test_runner_imports_only_stdlib_numpy_and_itself():
    """Every module of the runner package imports the standard library, numpy and its own modules (relatively);
    runtimes are imported by name from the runtime table, the package never (PyTorch comes in as a plugin)."""
    allowed = set(sys.stdlib_module_names) | {"numpy"}
    for path in sorted(PACKAGE.rglob("*.py")):
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not node.value.startswith("sqnxt_edge."), (path.name, node.value)  # no "module:Class" of ours
        assert imported <= allowed, (path.name, imported - allowed)
    assert {row.module for row in runner.RUNTIMES.values()} == {
        "onnxruntime",
        "openvino",
        "ai_edge_litert",
        "tflite_runtime",
        "ncnn",
        "executorch.extension.pybindings._portable_lib",
        "torch",
    }


def test_pyz_is_one_deterministic_file_of_the_shipped_modules(tmp_path):
    """Two builds give the same bytes (no time, owner or order in them), named by that content; the archive holds
    every runner module but the builder, and nothing else."""
    a, b = ship.runner_pyz(tmp_path / "a"), ship.runner_pyz(tmp_path / "b")
    assert a.name == b.name and a.read_bytes() == b.read_bytes()
    assert ship.runner_pyz(tmp_path / "a") == a and len(list((tmp_path / "a").iterdir())) == 1  # reused, no temp
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    shipped = {f"sqnxt_runner/{p.relative_to(PACKAGE).as_posix()}" for p in PACKAGE.rglob("*.py")}
    shipped -= {"sqnxt_runner/ship.py", "sqnxt_runner/__main__.py"}
    assert names == ["__main__.py", *sorted(names[1:])]
    assert set(names) == shipped | {"__main__.py"}


def _isolated_python(tmp_path: Path) -> Path:
    """A Python that has numpy and onnxruntime and nothing else (no sqnxt_edge, no torch): a bare board."""
    venv = tmp_path / "board-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], text=True
        ).strip()
    )
    ours = Path(sysconfig.get_paths()["purelib"])
    for entry in ours.iterdir():
        if entry.name.split("-")[0].split(".")[0] in ("numpy", "onnxruntime"):
            (site / entry.name).symlink_to(entry)
    return python


def test_pyz_runs_on_a_bare_python_where_the_package_is_not_importable(onnx_models, tmp_path):
    """The board's view: one file copied into a temp folder, a Python with numpy + onnxruntime only, run isolated
    (-I: no PYTHONPATH, no user site, not the current folder); children included, the full schema comes back."""
    pytest.importorskip("onnxruntime")
    python = _isolated_python(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "SQNXT_EDGE"))}
    probe = subprocess.run([python, "-I", "-c", "import sqnxt_edge"], capture_output=True, env=env, cwd=tmp_path)
    assert probe.returncode != 0 and b"No module named 'sqnxt_edge'" in probe.stderr
    board = tmp_path / "job"
    board.mkdir()
    script = Path(shutil.copy(ship.runner_pyz(tmp_path / "build"), board / ship.PYZ_NAME))
    art = shutil.copy(onnx_models["dynamic"], board / "m.onnx")
    shutil.copy(str(onnx_models["dynamic"]) + ".meta.json", board / "m.onnx.meta.json")
    proc = subprocess.run(
        [python, "-I", script.name, *FAST, "--samples", "--threads", "1", "m.onnx"],
        capture_output=True,
        text=True,
        cwd=board,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
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


def test_children_start_through_the_launcher(onnx_models, tmp_path):
    """$SQNXT_EDGE_LAUNCHER prefixes every child the .pyz starts (an emulated board's qemu): here a wrapper that
    notes each start and runs the rest."""
    log = tmp_path / "starts.log"
    wrapper = tmp_path / "launch.sh"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec "$@"\n')
    wrapper.chmod(0o755)
    env = {**os.environ, runner.LAUNCHER_VAR: str(wrapper)}
    code, _data, err = run(*FAST, onnx_models["dynamic"], env=env)
    assert code == 0, err
    starts = log.read_text().splitlines()
    assert len(starts) == 2  # the bare runtime, then the artifact
    assert all(f"{sys.executable} " in line and ".pyz " in line for line in starts)
    assert "--bare onnxruntime" in starts[0] and "--one" in starts[1]


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
    assert set(data["runtimes"]) == {
        "onnxruntime",
        "openvino",
        "litert",
        "tflite-runtime",
        "executorch",
        "ncnn",
        "numpy",
    }
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


def test_backends_implement_the_interface_and_load_lazily(onnx_models):
    """Each installed runtime's backend has every fact of `Backend`, and Model exposes them by name; importing the
    runner imports no backend module (a board needs only the runtimes it uses)."""
    probe = (
        "import sys, sqnxt_edge.runner; print(sorted(m for m in sys.modules if '.backends.' in m or m in "
        "('onnxruntime', 'openvino')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "['sqnxt_edge.runner.backends.base']"
    engines = ["onnxruntime"] + (["openvino"] if runner.installed("openvino") else [])
    for name in engines:
        model = runner.open_model(str(onnx_models["fixed"]), runtime=name, threads=1)
        assert isinstance(model.backend, runner.Backend)
        assert model.input_name == model.backend.input_name and model.input_shape == [1, 3, 32, 32]
        assert model.fixed_batch == 1 and model.quant is None and model.runtime_version
    with pytest.raises(AttributeError):
        model.sess  # noqa: B018 - no forwarding to the backend's own attributes


def test_a_backend_without_the_facts_is_refused(onnx_models, monkeypatch, tmp_path):
    """A plugin that misses a fact of the interface is named as such, not met later as an AttributeError."""
    (tmp_path / "halfplugin.py").write_text(
        "class Half:\n    def __init__(self, path, threads, runtime):\n        self.version = '0'\n"
        "    def run(self, x):\n        return x\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(runner.PLUGINS_VAR, json.dumps({"torch": "halfplugin:Half"}))
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(runner.RunnerError, match="the torch backend lacks input_name, output_name"):
        runner.open_model(str(ckpt))


def test_profiling_a_runtime_without_a_profiler_says_why(tmp_path, monkeypatch):
    from sqnxt_edge.runner.backends.tflite import TFLite

    class Fake(TFLite):
        def __init__(self, path, threads, runtime):  # the interface's facts, no interpreter
            self.version, self.input_name, self.output_name, self.input_shape = "0", "x", "y", [1, 8, 8, 3]
            self.input_dtype, self.quant, self.dynamic_batch, self.embedded = np.float32, None, False, {}

    monkeypatch.setattr("sqnxt_edge.runner.backends.backend_class", lambda runtime: Fake)
    path = tmp_path / "m.tflite"
    path.write_bytes(b"x")
    model = runner.open_model(str(path), runtime="litert")
    with pytest.raises(runner.RunnerError, match="litert cannot profile: TFLite's Python interpreter exposes no op"):
        model.profile(np.zeros((1, 8, 8, 3), np.float32), 0, 1, lambda: None)


def test_measurement_reads_the_runners_json_and_gives_it_back(onnx_models):
    code, data, err = run(*FAST, "--samples", onnx_models["dynamic"])
    assert code == 0, err
    (raw,) = data["results"]
    m = runner.Measurement.from_dict({**raw, "speedup": 2.0})
    assert m.latency_ms.p50 == raw["latency_ms"]["p50"] and m.runtime == "onnxruntime" and m.extra == {"speedup": 2.0}
    assert m.to_dict() == {**raw, "speedup": 2.0}
    assert runner.Measurement.from_dict({"artifact": "x", "error": "boom"}).latency_ms is None


def test_top1_ties_go_to_the_lowest_index():
    logits = np.array([[1.0, 3.0, 3.0, 0.0, 3.0, 0.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0]])
    assert runner.top_classes(logits).tolist() == [1, 0] == np.argmax(logits, axis=1).tolist()
    assert runner.top_classes(logits, 3).tolist() == [[1, 2, 4], [0, 1, 2]]
    acc = runner.topk_accuracy(logits, np.array([2, 0]))
    assert acc["top1"] == 0.5 and acc["top5"] == 1.0


def test_a_board_job_holds_one_runner_file(onnx_models, tmp_path):
    """What is copied to a board: the runner as one file (the very .pyz this machine runs), the artifacts with their
    sidecars; the board's Python is given that file."""
    from sqnxt_edge.devices.transport import RemoteJob

    job = RemoteJob.build(tmp_path, [onnx_models["dynamic"]], runner.Settings(runtime="onnxruntime"))
    files = sorted(p.relative_to(job.stage).as_posix() for p in job.stage.rglob("*") if p.is_file())
    assert files == ["a0/dyn.onnx", "a0/dyn.onnx.meta.json", ship.PYZ_NAME]
    assert (job.stage / ship.PYZ_NAME).read_bytes() == ship.runner_pyz().read_bytes()
    assert job.command[:3] == [ship.PYZ_NAME, "--runtime", "onnxruntime"] and job.command[-1] == "a0/dyn.onnx"

"""The JavaScript clients in examples/ against the toolkit: the Node example (onnxruntime-node) run directly and the
web page (onnxruntime-web, LiteRT.js) in headless Chromium, on the digits checkpoint's fp32 and int8 artifacts. Both
read the same PNG files the Python side reads, so the JS preprocessing is checked against the toolkit's pixel by
pixel, and their top-1 must agree with Python's on >= 99.7% of the images (ties go to the lowest index everywhere).

npm installs happen here (cached by the lock file's hash in the temp folder), never at import; every step is bounded.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from needs import module, need
from procs import ROOT

EXAMPLES = ROOT / "examples"
MODEL = "1.0-SqNxt-23"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MIN_AGREEMENT = 0.997
SIZES = (8, 32, 45)  # digits are 8 px: as they are (enlarged), exactly the input size, and shrunk (antialiased)


def test_the_examples_share_one_preprocessing_file():
    """examples/web and examples/node each ship preprocess.js so each folder stands alone: it must be one file."""
    web, node = (EXAMPLES / d / "preprocess.js" for d in ("web", "node"))
    assert web.read_bytes() == node.read_bytes()


def _run(argv: list[str], cwd: Path, timeout: float, env: dict | None = None) -> str:
    """Run a child in its own process group; on timeout the whole group (Chromium too) is killed."""
    from sqnxt_edge.interrupts import kill_process_group

    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process_group(proc)
        pytest.fail(f"{' '.join(argv[:2])} did not finish in {timeout:.0f} s", pytrace=False)
    finally:
        if proc.poll() is None:
            kill_process_group(proc)
    assert proc.returncode == 0, f"{' '.join(argv[:2])} failed ({proc.returncode}): {err[-2000:]}"
    return out


def _node_major() -> int:
    """Node's major version, 0 without node (playwright-core needs 20)."""
    if shutil.which("node") is None:
        return 0
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, timeout=30).stdout
    return int(out.strip().lstrip("v").split(".")[0] or 0)


def _node_modules(folder: Path) -> Path:
    """`npm ci` of a folder's package-lock.json, once per lock (kept in the temp folder across sessions). No install
    scripts run: onnxruntime-node bundles its CPU build and would otherwise try to fetch a CUDA one."""
    need("node", _node_major() >= 20 and shutil.which("npm") is not None, "node >= 20 and npm are not installed")
    lock = (folder / "package-lock.json").read_bytes() + (folder / "package.json").read_bytes()
    cache = Path(tempfile.gettempdir()) / "sqnxt-edge-npm" / hashlib.sha256(lock).hexdigest()[:16]
    if not (cache / "node_modules").is_dir():
        cache.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".npm-", dir=cache.parent))
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(folder / name, work / name)
        _run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], work, timeout=900)
        try:
            os.replace(work, cache)  # another session may have won the race: its copy is as good
        except OSError:
            shutil.rmtree(work, ignore_errors=True)
    return cache / "node_modules"


def _stage(folder: Path, dest: Path) -> Path:
    """A copy of an example's files with its installed node_modules linked beside them."""
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("node_modules"))
    (dest / "node_modules").symlink_to(_node_modules(folder), target_is_directory=True)
    return dest


@pytest.fixture(scope="module")
def artifacts(digits_checkpoint, tmp_path_factory) -> Path:
    """fp32 and int8 .onnx, .ort and (with litert-torch) .tflite (int8 with float I/O, the default) of the digits
    checkpoint."""
    from sqnxt_edge.export import ExportConfig, export

    formats = ["onnx", "ort"] + (["tflite"] if module("litert_torch") else [])
    out = tmp_path_factory.mktemp("js-artifacts")
    export(digits_checkpoint, ExportConfig(formats=formats, int8=True, calib_size=200, output_dir=out))
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict:
    """The digits test split written as RGB PNG files at three sizes, and the toolkit's pixels for each file: read
    back with Pillow, resized by `resize_uint8`."""
    from PIL import Image

    from sqnxt_edge.data import load_dataset, resize_uint8

    folder = tmp_path_factory.mktemp("js-images")
    paths, pixels = [], []
    for i, image in enumerate(load_dataset("digits", "test").images):
        side = SIZES[i % len(SIZES)]
        path = folder / f"{i:03d}-{side}px.png"
        Image.fromarray(image).resize((side, side), Image.NEAREST).save(path)
        paths.append(path)
        read = np.array(Image.open(path).convert("RGB"))
        pixels.append(resize_uint8(read[None], 32)[0])
    return {"paths": paths, "pixels": np.stack(pixels)}


def _python_scores(path: Path, pixels: np.ndarray) -> np.ndarray:
    from sqnxt_edge.runner import open_model

    return open_model(str(path)).predict(pixels)


def _agree(name: str, js: np.ndarray, py: np.ndarray) -> None:
    """Top-1 agreement (argmax: ties to the lowest index) >= 99.7%; fp32 logits equal to float precision too."""
    assert js.shape == py.shape, (name, js.shape, py.shape)
    agreement = float(np.mean(js.argmax(1) == py.argmax(1)))
    assert agreement >= MIN_AGREEMENT, f"{name}: top-1 agrees with Python on {agreement:.2%} of {len(js)} images"
    if ".fp32." in name:
        assert np.abs(js - py).max() < 1e-3, name


NODE_MODELS = [f"{MODEL}.{p}.{s}" for s in ("onnx", "ort") for p in ("fp32", "int8")]


@pytest.mark.slow
@pytest.mark.parametrize("name", NODE_MODELS)
def test_node_example_agrees_with_python(name, artifacts, images, tmp_path):
    node = _stage(EXAMPLES / "node", tmp_path / "node")
    argv = ["node", "classify.mjs", str(artifacts / name), *map(str, images["paths"]), "--json"]
    lines = [json.loads(line) for line in _run(argv, node, timeout=300).splitlines()]
    assert [Path(r["image"]) for r in lines] == images["paths"]
    js = np.array([r["scores"] for r in lines], np.float32)
    assert [r["index"] for r in lines] == js.argmax(1).tolist()  # the example's own top-1 rule is argmax's
    _agree(name, js, _python_scores(artifacts / name, images["pixels"]))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".wasm": "application/wasm",
    }

    def log_message(self, *args) -> None:  # the page fetches hundreds of files
        pass


@contextmanager
def _serve(root: Path):
    """A static http server for `root` on 127.0.0.1 (a free port), in a thread; stopped and closed on exit."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    assert not thread.is_alive()


def _int8_io_tflite(artifacts: Path, dest: Path) -> Path:
    """An int8-I/O .tflite (--int8-io) from the exported fp32 file, quantized in seconds (no second conversion)."""
    from sqnxt_edge.data import load_dataset, preprocess
    from sqnxt_edge.quantize import quantize_tflite

    fp32 = artifacts / f"{MODEL}.fp32.tflite"
    meta = json.loads(Path(f"{fp32}.meta.json").read_text())
    images = load_dataset("digits", "train").sample(64, 0).images
    calib = preprocess(images, meta["input_size"], meta["mean"], meta["std"]).permute(0, 2, 3, 1).contiguous()
    return quantize_tflite(fp32, dest, calib.numpy())


@pytest.fixture(scope="module")
def page(artifacts, images, tmp_path_factory) -> dict:
    """examples/web served on 127.0.0.1 and run in headless Chromium on every artifact and image, once."""
    need("chromium", os.access(CHROMIUM, os.X_OK), "chromium is not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("js-web")
    web = _stage(EXAMPLES / "web", root / "web")
    driver = _stage(ROOT / "tests" / "js", root / "driver")
    (web / "models").mkdir()
    for path in artifacts.iterdir():
        if ".fp32." in path.name or ".int8." in path.name:
            shutil.copyfile(path, web / "models" / path.name)
    raw = []
    if (artifacts / f"{MODEL}.fp32.tflite").is_file():
        raw = ["models/int8-io.tflite"]
        _int8_io_tflite(artifacts, web / "models" / "int8-io.tflite")
    shutil.copytree(images["paths"][0].parent, web / "images")
    models = sorted(p.name for p in (web / "models").iterdir() if p.suffix in (".onnx", ".ort", ".tflite"))
    models = [f"models/{m}" for m in models if m != "int8-io.tflite"]
    with _serve(web) as url:
        job = {
            "url": f"{url}/index.html",
            "chromium": CHROMIUM,
            "models": models,
            "images": [f"images/{p.name}" for p in images["paths"]],
            "size": 32,
            "raw_litert": raw,
        }
        out = json.loads(_run(["node", "page.mjs", json.dumps(job)], driver, timeout=900))
    out["root"] = web
    return out


@pytest.mark.slow
def test_page_resizes_like_the_toolkit(page, images):
    """The page's pixels (browser PNG decode + preprocess.js) against `resize_uint8` on the same files."""
    js = np.array(page["pixels"], np.int16).reshape(images["pixels"].shape)
    diff = np.abs(js - images["pixels"].astype(np.int16))
    assert diff.max() <= 1 and float(np.mean(diff == 0)) >= 0.999, (diff.max(), float(np.mean(diff == 0)))
    same_size = [i for i, p in enumerate(images["paths"]) if p.name.endswith("-32px.png")]
    assert not diff[same_size].any()  # nothing to resample: the decode alone must be exact


WEB_MODELS = [f"{MODEL}.{p}.{s}" for s in ("onnx", "ort", "tflite") for p in ("fp32", "int8")]


@pytest.mark.slow
@pytest.mark.parametrize("name", WEB_MODELS)
def test_page_agrees_with_python(name, page, artifacts, images):
    if name.endswith(".tflite"):
        need("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")
    result = page["models"][f"models/{name}"]
    assert "error" not in result, result.get("error")
    assert result["runtime"] == ("litert.js" if name.endswith(".tflite") else "onnxruntime-web")
    _agree(name, np.array(result["scores"], np.float32), _python_scores(artifacts / name, images["pixels"]))


@pytest.mark.slow
def test_litert_js_refuses_an_int8_io_file_as_its_sidecar_says(page, tmp_path):
    """What `does_not_load_in` claims, checked against LiteRT.js itself: an int8-I/O file does not load, the
    float-I/O default does (test_page_agrees_with_python)."""
    need("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")
    from sqnxt_edge.export.tflite_export import tflite_clients, tflite_io

    got = page["raw_litert"]["models/int8-io.tflite"]
    assert not got["loaded"] and "INT8" in got["error"].upper(), got
    clients = tflite_clients(tflite_io(page["root"] / "models" / "int8-io.tflite"))
    assert "litert.js" in clients["does_not_load_in"] and "litert.js" not in clients["loads_in"]

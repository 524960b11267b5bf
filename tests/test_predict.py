"""`sqnxt-edge predict`: image files -> the runner (here or on a board) -> top-K with labels from the metadata; the
pixel rules in one place (`runner.pixels`), the same on a board without Pillow or torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from sqnxt_edge import runner
from sqnxt_edge.data import preprocess, resize_uint8
from sqnxt_edge.errors import CheckpointError, DataError
from sqnxt_edge.predict import collect_images, predict
from sqnxt_edge.runner import pixels
from sqnxt_edge.runner.predict import pack_images
from sqnxt_edge.runner.ship import runner_pyz

from builders import write_tiny_onnx

# logits = [0, s, 0, s] with s = the sum of the normalised channel means: classes 1 and 3 tie (bright images, s > 0)
# or 0 and 2 tie (dark images, s < 0); the one top-1 rule picks the lowest index of a tie
TIE_WEIGHTS = np.array([[0, 1, 0, 1]] * 3, dtype=np.float32)


@pytest.fixture(scope="module")
def tie_onnx(tmp_path_factory):
    return write_tiny_onnx(tmp_path_factory.mktemp("tie") / "tie.onnx", weights=TIE_WEIGHTS)


@pytest.fixture
def photos(tmp_path):
    """A bright non-square photo, a dark grey one, an RGBA one, and a file that is no image."""
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((30, 50, 3), 230, np.uint8)).save(folder / "bright.png")
    Image.fromarray(np.full((20, 20), 10, np.uint8), mode="L").save(folder / "dark.png")
    Image.fromarray(np.full((9, 9, 4), 200, np.uint8), mode="RGBA").save(folder / "alpha.png")
    (folder / "broken.jpg").write_bytes(b"no jpeg here")
    (folder / "notes.txt").write_text("not an image suffix: not listed")
    return folder


# -- the pixel rules ------------------------------------------------------------------------------------------------


def test_resize_is_torch_antialiased_bilinear_on_half_pixel_centres():
    rng = np.random.default_rng(0)
    for h, w, size in [(8, 8, 32), (64, 64, 32), (40, 24, 17), (5, 5, 3)]:
        x = rng.integers(0, 256, (3, h, w, 3), dtype=np.uint8)
        t = torch.from_numpy(x).permute(0, 3, 1, 2).float()
        ref = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        ref = ref.round().clamp(0, 255).permute(0, 2, 3, 1).numpy().astype(int)
        got = pixels.resize_uint8(x, size).astype(int)
        assert got.shape == ref.shape
        assert np.abs(got - ref).max() <= 1 and np.mean(got == ref) > 0.999  # float summation order only


def test_the_package_uses_the_runners_pixel_rules():
    x = np.random.default_rng(1).integers(0, 256, (2, 13, 13, 3), dtype=np.uint8)
    assert np.array_equal(resize_uint8(x, 20), pixels.resize_uint8(x, 20))
    mean, std = (0.5,) * 3, (0.25,) * 3
    ref = (pixels.resize_uint8(x, 20).astype(np.float32) / 255 - 0.5) / 0.25
    assert np.allclose(preprocess(x, 20, mean, std).numpy(), ref.transpose(0, 3, 1, 2), atol=1e-6)


def test_fit_cuts_the_centred_square_and_converts_channels():
    img = np.zeros((4, 6, 3), np.uint8)
    img[:, 1:5] = 100  # the centred 4x4 square
    assert np.array_equal(pixels.fit(img, 4, 3), np.full((4, 4, 3), 100, np.uint8))
    grey = pixels.fit(np.full((5, 5), 50, np.uint8), 5, 3)
    assert grey.shape == (5, 5, 3) and (grey == 50).all()
    assert pixels.fit(np.full((5, 5, 4), 7, np.uint8), 5, 1).shape == (5, 5, 1)
    with pytest.raises(ValueError):
        pixels.fit(np.zeros((0, 5, 3), np.uint8), 5, 3)


# -- the runner's --predict mode (what a board runs) -------------------------------------------------------------


def test_runner_predicts_without_pillow_or_torch(tie_onnx, tmp_path):
    """The board's side: the runner decodes the .npz and resizes with numpy; Pillow and torch cannot be imported."""
    block = tmp_path / "block"
    for name in ("PIL", "torch"):
        (block / name).mkdir(parents=True)
        (block / name / "__init__.py").write_text(f"raise ImportError('{name} is not on this board')\n")
    npz = tmp_path / "images.npz"
    images = {"bright": np.full((30, 50, 3), 230, np.uint8), "dark": np.full((20, 20), 10, np.uint8)}
    np.savez(npz, **pack_images({**images, "empty": np.zeros((0, 4, 3), np.uint8)}))
    env = {**os.environ, "PYTHONPATH": str(block)}
    cmd = [sys.executable, str(runner_pyz()), "--predict", "4", "--data", str(npz), str(tie_onnx)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (result,) = json.loads(proc.stdout)["results"]
    rows = {p["image"]: p for p in result["predictions"]}
    assert [t["index"] for t in rows["bright"]["top"]] == [1, 3, 0, 2]  # ties: lowest index first
    assert [t["label"] for t in rows["dark"]["top"]] == ["a", "c", "b", "d"]
    assert rows["bright"]["top"][0]["prob"] == pytest.approx(rows["bright"]["top"][1]["prob"])
    assert "error" in rows["empty"] and "top" not in rows["empty"]


def test_predict_settings_reach_the_runner_as_argv():
    s = runner.PredictSettings(runtime="onnxruntime", threads=2, data="x.npz", top_k=3)
    assert s.to_argv() == ["--predict", "3", "--runtime", "onnxruntime", "--threads", "2", "--data", "x.npz"]
    with pytest.raises(runner.RunnerError):
        runner.PredictSettings(top_k=0).check()


# -- the library and the command ----------------------------------------------------------------------------------


def test_predict_reports_bad_images_and_predicts_the_rest(tie_onnx, photos):
    result = predict(tie_onnx, [photos], top_k=2)
    rows = {Path(p.image).name: p for p in result.predictions}
    assert set(rows) == {"alpha.png", "bright.png", "broken.jpg", "dark.png"}
    assert rows["broken.jpg"].error and not rows["broken.jpg"].top
    assert rows["bright.png"].label == "b" and rows["dark.png"].label == "a" and rows["alpha.png"].label == "b"
    assert [t["index"] for t in rows["bright.png"].top] == [1, 3]
    assert result.predicted == 3 and result.runtime == "onnxruntime" and result.input_size == 8
    assert result.device == "local" and result.emulated is False


def test_predict_matches_the_runner_on_the_same_pixels(tie_onnx, tmp_path):
    """A photo through `predict` gives the logits of the model on `fit`'s pixels, normalised by the metadata."""
    rng = np.random.default_rng(3)
    photo = rng.integers(0, 256, (21, 33, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "p.png")
    (got,) = predict(tie_onnx, [tmp_path / "p.png"], top_k=4).predictions
    model = runner.open_model(str(tie_onnx))
    want = model.predict(pixels.fit(photo, 8, 3)[None])[0]
    assert {t["index"]: t["logit"] for t in got.top} == pytest.approx(dict(enumerate(want.tolist())), abs=1e-5)


def test_predict_mistakes_are_one_line(tie_onnx, tmp_path, reg):
    with pytest.raises(DataError, match="no such image"):
        predict(tie_onnx, [tmp_path / "missing.png"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        collect_images([tmp_path / "empty"])
    with pytest.raises(CheckpointError, match="not found"):
        predict(tmp_path / "nope.onnx", [tmp_path])
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="on this machine"):
        predict(ckpt, [tmp_path], device="pi", devices_file=reg)


def test_predict_command_table_json_and_exit_codes(cli, tie_onnx, photos, tmp_path):
    r = cli("predict", tie_onnx, photos, "--top-k", "2")
    assert r.exit_code == 0, r.stderr
    assert "bright.png" in r.stdout and "broken.jpg" not in r.stdout
    assert "broken.jpg" in r.stderr and "Traceback" not in r.stderr
    out = tmp_path / "pred.json"
    r = cli("predict", tie_onnx, photos / "dark.png", "--json", "-o", out)
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data == json.loads(out.read_text())
    assert data["predictions"][0]["top"][0]["label"] == "a" and len(data["predictions"][0]["top"]) == 4
    r = cli("predict", tie_onnx, photos / "broken.jpg")
    assert r.exit_code == 1 and "no image could be predicted" in r.stderr


@pytest.mark.slow
def test_predict_with_a_checkpoint_is_the_trained_model_on_the_same_pixels(digits_checkpoint, tmp_path):
    """A checkpoint runs through the runner's PyTorch plugin with the same pixel rules as training's `preprocess`."""
    from sqnxt_edge.checkpoint import load_checkpoint
    from sqnxt_edge.data import load_dataset
    from sqnxt_edge.training.metrics import torch_logits

    data = load_dataset("digits", "test").sample(6, seed=1)
    files = []
    for i, img in enumerate(data.images):
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(img).save(files[-1])
    result = predict(digits_checkpoint, files, top_k=1)
    ckpt = load_checkpoint(digits_checkpoint)
    logits = torch_logits(ckpt.build_model(), data.images, ckpt.input_size, ckpt.mean, ckpt.std).numpy()
    assert [p.top[0]["index"] for p in result.predictions] == runner.top_classes(logits).tolist()
    assert result.runtime == "torch"


# -- on an emulated Raspberry Pi 4 (no Pillow, no torch there) ------------------------------------------------------


@pytest.mark.slow
def test_predict_on_an_emulated_board_matches_this_machine(tie_onnx, photos, tmp_path_factory):
    from sqnxt_edge.devices import emulate, rootfs
    from sqnxt_edge.devices.rootfs import TOOLS

    from needs import need

    need("qemu", all(rootfs._which(t) is not None for t in TOOLS), "needs qemu-user-static and debootstrap")
    cache = Path(os.environ.get("SQNXT_EDGE_TEST_CACHE") or os.environ["SQNXT_EDGE_CACHE"])
    devices = tmp_path_factory.mktemp("predict-devices") / "devices.toml"
    emulate.emulate_device("pi", "rpi4", devices, cache=cache)
    here = predict(tie_onnx, [photos], top_k=4)
    there = predict(tie_onnx, [photos], top_k=4, device="pi", devices_file=devices)
    assert there.emulated and there.device == "pi" and there.predicted == here.predicted == 3
    for a, b in zip(here.predictions, there.predictions):
        assert a.image == b.image and (a.error is None) == (b.error is None)
        assert [t["index"] for t in a.top] == [t["index"] for t in b.top]
        assert [t["logit"] for t in a.top] == pytest.approx([t["logit"] for t in b.top], abs=1e-5)

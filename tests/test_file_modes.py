"""Every file the package writes gets the mode a plain `open(path, "w")` gives under the user's umask (0644 under 022,
0640 under 027): a web server running as another user must be able to serve the sidecars and the int8 models as it
serves the fp32 ones. Real writers: atomic_write alone, a real ONNX fp32 + int8 export, a short training run."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import pytest

from sqnxt_edge.artifacts import atomic_write, copy_artifact, write_sidecar

from builders import write_color_folder

UMASKS = [0o022, 0o027]


@contextlib.contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _modes(root: Path) -> dict[str, int]:
    """{path relative to root: permission bits} of every file and folder under root (root included)."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


def _wrong(root: Path, mask: int) -> dict[str, str]:
    """What under root does not have the mode a plain open() / mkdir() would give under `mask`."""
    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    modes = _modes(root)
    return {
        name: oct(mode) for name, mode in modes.items() if mode != (dir_mode if (root / name).is_dir() else file_mode)
    }


@pytest.mark.parametrize("mask", UMASKS, ids=lambda m: f"umask-{m:03o}")
def test_atomic_write_gives_the_umask_mode(tmp_path, mask):
    def replace_with_private(tmp: Path) -> None:  # a writer that unlinks and recreates its target (some libraries)
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, b"recreated")
        os.close(fd)

    out = tmp_path / "out"
    with umask(mask):
        atomic_write(out / "a.txt", lambda tmp: tmp.write_text("a"))
        atomic_write(out / "b.bin", replace_with_private)
        write_sidecar(out / "a.txt", {"precision": "int8"})
        copy_artifact(out / "a.txt", out / "copied.txt")
        with pytest.raises(ZeroDivisionError):  # a failed write leaves nothing behind, whatever the mode
            atomic_write(out / "c.txt", lambda tmp: 1 / 0)
    assert (out / "b.bin").read_bytes() == b"recreated"
    names = set(_modes(out))
    assert {"a.txt", "a.txt.meta.json", "b.bin", "copied.txt", "copied.txt.meta.json"} <= names
    assert not any(n.endswith(".tmp") or n == "c.txt" for n in names)
    assert _wrong(out, mask) == {}
    plain = tmp_path / "plain.txt"
    with umask(mask):
        plain.write_text("x")  # the reference: what open(path, "w") gives
    assert stat.S_IMODE(plain.stat().st_mode) == stat.S_IMODE((out / "a.txt").stat().st_mode)


@pytest.mark.slow
@pytest.mark.parametrize("mask", UMASKS, ids=lambda m: f"umask-{m:03o}")
def test_export_writes_every_file_with_the_umask_mode(digits_checkpoint, tmp_path, mask):
    from sqnxt_edge.export import ExportConfig, export

    out = tmp_path / "export"
    with umask(mask):
        result = export(
            digits_checkpoint,
            ExportConfig(formats=["onnx"], int8=True, calib_size=50, verify_size=100, output_dir=out),
        )
    names = set(_modes(out))
    assert {a["path"] for a in result.artifacts} >= {"1.0-SqNxt-23.fp32.onnx", "1.0-SqNxt-23.int8.onnx"}
    assert {a["path"] + ".meta.json" for a in result.artifacts} <= names
    assert "manifest.json" in names
    assert _wrong(out, mask) == {}


@pytest.mark.slow
@pytest.mark.parametrize("mask", UMASKS, ids=lambda m: f"umask-{m:03o}")
def test_training_run_folder_has_the_umask_mode(tmp_path, mask):
    from sqnxt_edge.training import TrainConfig, train

    data = write_color_folder(tmp_path / "data", {"train": 6, "test": 3}, noise=30)
    out = tmp_path / "runs" / "run"
    with umask(mask):
        train(
            TrainConfig(
                model="1.0-SqNxt-23",
                data="folder",
                data_dir=data,
                input_size=16,
                epochs=1,
                batch_size=6,
                recipe="seed-cifar",
                out=out,
                threads=1,
            ),
            progress=False,
        )
    names = set(_modes(out))
    assert {"best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json"} <= names
    assert _wrong(tmp_path / "runs", mask) == {}

"""int8 on every CPU class: emulated x86 classes (QEMU's CPUID of an older CPU, this machine's Python and runtimes)
and emulated Raspberry Pi cores run the digits model's default int8 artifacts, which must keep fp32's top-1 there.

Why: int8 numerics depend on the CPU that runs a file. onnxruntime's AVX2 kernels (no VNNI) add pairs of u8 x s8
products in 16 bits and saturate, so a full-range U8S8 file made on this VNNI machine loses about a sixth of its
top-1 agreement on an AVX2-only CPU, while it is exact on ARM and on SSE. The x86 board's CPU view (its
/proc/cpuinfo) must agree with what QEMU's CPUID answers, or the runner would report the host's avx512 and vnni.

The ARM user space is built once per session (about a minute; SQNXT_EDGE_TEST_CACHE keeps it between sessions) and
shared with tests/test_emulate.py; an x86 class needs nothing built.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from sqnxt_edge import runner
from sqnxt_edge.devices import Device, add_device, cpus, emulate, load_devices, rootfs
from sqnxt_edge.errors import DeviceError

from needs import module, need

VERIFY_IMAGES = 64  # enough to see saturation (a sixth of them flip), few enough for emulation (seconds each)
X86 = {"x86-64-v3": {"avx2": True, "avx": True, "fma": True}, "x86-64-v2": {"avx2": False, "avx": False, "fma": False}}
ARM_TOOLS = ("qemu-aarch64-static", "debootstrap", "dpkg-deb")
# CPUID from inside the emulated process (mmap'ed machine code called through ctypes): what the kernels dispatch on
CPUID = """
import ctypes, json, mmap, struct
code = bytes.fromhex("5389f889f14989d00fa241890041895804418948084189500c5bc3")
page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
fn = ctypes.CFUNCTYPE(None, ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p)(
    ctypes.addressof(ctypes.c_char.from_buffer(page)))
def cpuid(leaf, sub=0):
    out = (ctypes.c_uint32 * 4)(); fn(leaf, sub, ctypes.addressof(out)); return list(out)
_, _, c1, _ = cpuid(1); _, b7, c7, _ = cpuid(7)
brand = b"".join(struct.pack("<4I", *cpuid(0x80000002 + i)) for i in range(3)).rstrip(b"\\0").decode().strip()
print(json.dumps({"model": brand, "sse4_2": bool(c1 >> 20 & 1), "avx": bool(c1 >> 28 & 1), "fma": bool(c1 >> 12 & 1),
                  "avx2": bool(b7 >> 5 & 1), "avx512f": bool(b7 >> 16 & 1), "avx512_vnni": bool(c7 >> 11 & 1)}))
"""


def _qemu(arm: bool = False) -> None:
    tools = ARM_TOOLS if arm else ("qemu-x86_64-static",)
    missing = [t for t in tools if rootfs._which(t) is None]
    need("qemu", not missing, f"needs {', '.join(missing)} (apt-get install qemu-user-static debootstrap)")


# -- the CPU view and the registry (no emulation) -----------------------------------------------------------------


@pytest.mark.parametrize("profile", list(cpus.X86_CLASSES))
def test_x86_view_reads_as_the_class(profile, monkeypatch):
    """The files an x86 board folder holds make the runner's cpu_info() report that class, not this machine."""
    cls = cpus.X86_CLASSES[profile]
    files = cpus.view(cls)
    monkeypatch.setattr(runner.machine, "_read", lambda path: files.get(path, ""))
    monkeypatch.setattr(runner.machine.platform, "machine", lambda: "x86_64")
    info = runner.cpu_info()
    assert info["arch"] == "x86_64" and info["model"] == cls.model and info["cores"] == cls.cores
    feats = info["features"]
    assert feats["avx2"] is X86[profile]["avx2"] and not feats["avx512"] and not feats["vnni"] and not feats["neon"]
    assert info["int8_dot"] is False and info["board"] is None and runner.default_threads() == cls.cores
    flags = set(files["/proc/cpuinfo"].split("flags\t\t: ")[1].splitlines()[0].split())
    assert {"sse4_1", "sse4_2", "ssse3"} <= flags and ("fma" in flags) is X86[profile]["fma"]


def test_x86_boards_in_the_registry(reg):
    add_device(Device(name="avx2", emulate="x86-64-v3", rootfs="/b/avx2", python="/venv/bin/python", threads=1), reg)
    back = load_devices(reg)["avx2"]
    assert (back.emulate, back.profile, back.python, back.target) == (
        "x86-64-v3",
        None,
        "/venv/bin/python",
        "emulated x86-64-v3",
    )
    reg.write_text('[devices.v4]\nemulate = "x86-64-v4"\nrootfs = "/b"\n')
    with pytest.raises(DeviceError, match="emulate must be one of rpi4, rpi5, generic-arm64, x86-64-v3, x86-64-v2"):
        load_devices(reg)


def test_an_x86_board_is_a_cpu_view_only(cli, reg, tmp_path):
    """Nothing is built: the board folder holds the class's files; this Python runs it; `remove` deletes the folder,
    and a board whose Python is gone says how to make it again."""
    _qemu()
    device, info = emulate.emulate_device("old", "x86-64-v3", reg, cache=tmp_path / "cache")
    board = Path(device.rootfs)
    assert info["built"] is False and info["rootfs"] is None and device.python == info["python"] == sys.executable
    assert sorted(p.name for p in board.iterdir()) == [".sqnxt-edge-board.json", "proc", "sys"]
    assert "avx512" not in (board / "proc/cpuinfo").read_text() and "avx2" in (board / "proc/cpuinfo").read_text()
    moved = Device(**{**device.to_dict(), "python": str(tmp_path / "deleted-venv/bin/python")})
    with pytest.raises(DeviceError, match=r"Python .*deleted-venv.* is gone.*devices emulate old --profile x86-64-v3"):
        emulate.command(moved, ["-c", "pass"], tmp_path)
    r = cli("devices", "remove", "old", "--devices", reg, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["deleted"] == [str(board)] and not board.exists()


# -- real emulated CPUs ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def boards(tmp_path_factory):
    """An emulated x86-64-v3 ('avx2'), x86-64-v2 ('sse42'), Pi 4 and Pi 5 in one session devices.toml."""
    _qemu(arm=True)
    cache = os.environ.get("SQNXT_EDGE_TEST_CACHE")  # else the session's own cache, shared with test_emulate.py
    devices = tmp_path_factory.mktemp("cpu-classes") / "devices.toml"
    made = {
        name: emulate.emulate_device(name, profile, devices, cache=cache)[0]
        for name, profile in (("avx2", "x86-64-v3"), ("sse42", "x86-64-v2"), ("rpi4", "rpi4"), ("rpi5", "rpi5"))
    }
    return SimpleNamespace(devices=devices, **made)


@pytest.mark.slow
@pytest.mark.parametrize("name, profile", [("avx2", "x86-64-v3"), ("sse42", "x86-64-v2")])
def test_check_reports_the_emulated_x86_class(cli, boards, tmp_path, name, profile):
    """`devices check` sees the class, and the CPUID that onnxruntime's kernel dispatch reads says the same."""
    argv, env = emulate.command(getattr(boards, name), ["-c", CPUID], tmp_path)
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stderr == "", res.stderr[-500:]  # and no QEMU warning about a feature
    cpuid = json.loads(res.stdout)
    cls = cpus.X86_CLASSES[profile]
    assert cpuid["model"] == cls.model and cpuid["sse4_2"] and not cpuid["avx512f"] and not cpuid["avx512_vnni"]
    assert all(cpuid[k] is v for k, v in X86[profile].items())
    r = cli("devices", "check", name, "--devices", boards.devices, "--json")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    env, feats = rep["env"], rep["env"]["features"]
    assert env["arch"] == "x86_64" and env["model"] == cls.model and env["cores"] == cls.cores
    assert feats["avx2"] is X86[profile]["avx2"] and feats["avx512"] is False and feats["vnni"] is False
    assert env["int8_dot"] is False and env["emulated"] is True and env["device"]["emulate"] == profile
    assert env["emulation"]["cpu"] == cls.qemu_cpu and env["emulation"]["profile"] is None
    assert rep["runtimes"]["onnxruntime"] and rep["missing"] == [] and rep["warnings"] == []


@pytest.fixture(scope="module")
def default_int8(digits_checkpoint, tmp_path_factory):
    """The digits model's default int8 ONNX and TFLite (made for this machine: no --verify-on), PyTorch's logits of
    the verification images, and this machine's logits of each file."""
    need("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")
    from sqnxt_edge.checkpoint import load_checkpoint
    from sqnxt_edge.export import ExportConfig, export
    from sqnxt_edge.export.verify import predict, reference_logits, verify_images

    config = ExportConfig(formats=["onnx", "tflite"], int8=True, output_dir=tmp_path_factory.mktemp("default-int8"))
    result = export(digits_checkpoint, config)
    ckpt = load_checkpoint(digits_checkpoint)
    vset = verify_images(ckpt, VERIFY_IMAGES)
    paths = [result.output_dir / f"1.0-SqNxt-23.int8.{e}" for e in ("onnx", "tflite")]
    return SimpleNamespace(
        out=result.output_dir,
        vset=vset,
        ref=reference_logits(ckpt.build_model(), vset.images, ckpt.mean, ckpt.std),
        here={p: predict(p, vset.images)[0] for p in paths},
        max_drop=result.manifest["export_config"]["max_drop"],
        labels={a["path"]: (a.get("quantization") or {}).get("label") for a in result.artifacts},
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", ["avx2", "rpi4", "rpi5"])
def test_the_default_int8_keeps_top1_on_every_cpu_class(boards, default_int8, tmp_path, name):
    """Verified through the board path `export --verify-on` uses: the class's kernels agree with this machine's run of
    the same file on >= 99% of top-1 classes, and the file keeps >= 99% top-1 agreement with fp32 PyTorch and a drop
    within the export's max drop there, unless it already misses them here (on 64 images one flip costs 1.6 points:
    the file's own quality is the export's gate, on 360 images). On x86-64-v3 a full-range U8S8 file fails."""
    import numpy as np

    from sqnxt_edge.export.board import BoardCheck

    check = BoardCheck(name, boards.devices, default_int8.vset, tmp_path, lambda message: None)
    assert check.emulated
    ref, labels = default_int8.ref, default_int8.vset.labels
    reports = {p: check.verify(p, "int8", ref, here, default_int8.max_drop) for p, here in default_int8.here.items()}
    for path, rep in reports.items():  # every file runs first: a failure shows them all
        here = default_int8.here[path]
        agreement_here = float(np.mean(here.argmax(1) == ref.argmax(1)))
        drop_here = float(np.mean(ref.argmax(1) == labels) - np.mean(here.argmax(1) == labels)) * 100
        what = f"{path.name} ({default_int8.labels.get(path.name)}) on {name}: {rep}; here {agreement_here:.3f}"
        assert rep["n"] == VERIFY_IMAGES and rep["emulated"], what
        assert rep["top1_agreement_vs_here"] >= 0.99, what  # the CPU's kernels change nothing that matters
        assert rep["top1_agreement"] >= min(0.99, agreement_here), what  # and the file keeps fp32's top-1 there
        assert rep["accuracy"]["drop"] <= max(default_int8.max_drop, drop_here + 1e-6), what


@pytest.mark.slow
def test_bench_on_an_emulated_x86_class_says_it_cannot_estimate(cli, boards, default_int8):
    """Timings are the emulator's and compare with nothing; no hardware profile fits an x86 class, and the bench
    says so instead of failing."""
    art = default_int8.out / "1.0-SqNxt-23.fp32.onnx"
    args = ["--warmup", "0", "--runs", "2", "--min-seconds", "0", "--runtime", "onnxruntime", "--json"]
    r = cli("bench", art, "--device", "avx2", "--devices", boards.devices, *args)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert not out["errors"] and out["reference"] is None and out["env"]["emulated"] is True
    assert out["env"]["model"] == cpus.X86_CLASSES["x86-64-v3"].model and out["env"]["features"]["avx512"] is False
    (row,) = out["results"]
    assert row["emulated"] is True and "speedup" not in row and row["latency_ms"]["p50"] > 0
    assert out["estimates"]["estimates"] == [] and any("no hardware profile" in p for p in out["estimates"]["problems"])

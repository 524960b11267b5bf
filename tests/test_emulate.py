"""Emulated ARM boards: the CPU view, the registry, the build's failure modes (no board needed), and a REAL emulated
Raspberry Pi 4 (QEMU user mode, Debian arm64, the aarch64 runtimes) that `devices check`, `bench --device`,
`eval --device` and `export --verify-on` use like a real board.

The board is built once per session (about a minute from nothing; set SQNXT_EDGE_TEST_CACHE to a folder to keep it
between sessions) and one export of the digits model, verified on it, is shared by the tests that need artifacts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sqnxt_edge import runner
from sqnxt_edge.bench import BenchRun, report as bench_report
from sqnxt_edge.devices import (
    PROFILES,
    Device,
    add_device,
    check_device,
    cpus,
    emulate,
    get_device,
    load_devices,
    rootfs,
    run_runner,
)
from sqnxt_edge.errors import DeviceError

from builders import write_tiny_onnx
from needs import mark, module, need
from procs import processes_running

TOOLS = ("qemu-aarch64-static", "debootstrap", "dpkg-deb")
needs_qemu = mark(
    "qemu",
    all(rootfs._which(t) is not None for t in TOOLS),
    "needs qemu-user-static and debootstrap (apt-get install qemu-user-static debootstrap)",
)
VERIFY_IMAGES = 120  # board parity sample of --verify-on (eval below scores all 360 test images)
HWCAP_ASIMDDP = 1 << 20  # Linux arm64 AT_HWCAP bit of the dot-product instructions


# -- the CPU view and the registry (no board) --------------------------------------------------------------------


BOARDS = {  # profile -> the CPU model and board the runner must report from the board's files
    "rpi4": ("Cortex-A72", "Raspberry Pi 4 Model B Rev 1.4"),
    "rpi5": ("Cortex-A76", "Raspberry Pi 5 Model B Rev 1.0"),
    "generic-arm64": ("Cortex-A53", None),  # no device tree model: a board of no particular make
}


@pytest.mark.parametrize("profile", list(cpus.CORES))
def test_cpu_view_reads_as_the_board(profile, monkeypatch):
    """The files a board folder holds make the runner's own cpu_info() report that board (and its profile agrees)."""
    view = cpus.view(cpus.CORES[profile])
    monkeypatch.setattr(runner.machine, "_read", lambda path: view.get(path, ""))
    monkeypatch.setattr(runner.machine.platform, "machine", lambda: "aarch64")
    info, prof = runner.cpu_info(), PROFILES[profile]
    assert info["arch"] == "aarch64" and info["cores"] == 4 and info["features"]["neon"]
    assert info["features"]["dotprod"] is (profile == "rpi5") and info["int8_dot"] is (profile == "rpi5")
    assert (info["model"], info["board"]) == BOARDS[profile]
    assert prof.cpu is None or info["model"] == prof.cpu
    assert prof.cores is None or prof.cores == cpus.CORES[profile].cores
    assert prof.clock_ghz is None or cpus.CORES[profile].max_khz == round(prof.clock_ghz * 1e6)
    assert runner.default_threads() == 4


@pytest.fixture
def reg(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SQNXT_EDGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("SQNXT_EDGE_DEVICES", raising=False)
    return tmp_path / "devices.toml"


def test_emulated_device_roundtrip(reg):
    dev = Device(name="pi emu", emulate="rpi4", rootfs="/x/boards/pi", profile="rpi4", threads=1, timeout=3600)
    add_device(dev, reg)
    text = reg.read_text()
    assert "host" not in text and 'emulate = "rpi4"' in text and 'rootfs = "/x/boards/pi"' in text
    back = load_devices(reg)["pi emu"]
    assert (back.emulate, back.rootfs, back.host, back.threads, back.target) == (
        "rpi4",
        "/x/boards/pi",
        "",
        1,
        "emulated rpi4",
    )


@pytest.mark.parametrize(
    "table, match",
    [
        ('emulate = "rpi4"\nrootfs = "/b"\nhost = "pi@x"', "an emulated board has no host"),
        ('emulate = "rpi4"\nrootfs = "/b"\nport = 22', "has no port"),
        ('emulate = "rpi4"', "needs rootfs"),
        ('emulate = "rpi4"\nrootfs = "rel/b"', "needs rootfs"),
        ('emulate = "local"\nrootfs = "/b"', "emulate must be one of rpi4, rpi5, generic-arm64, x86-64-v3"),
        ('host = "pi@x"\nrootfs = "/b"', "rootfs belongs to emulated boards"),
    ],
)
def test_bad_emulated_entry_is_one_line(reg, table, match):
    reg.write_text(f"[devices.e]\n{table}\n")
    with pytest.raises(DeviceError, match=match) as exc:
        load_devices(reg)
    assert "\n" not in str(exc.value)


def test_a_missing_board_folder_says_how_to_rebuild(reg, tmp_path):
    add_device(Device(name="gone", emulate="rpi5", rootfs=str(tmp_path / "nowhere"), profile="rpi5"), reg)
    with pytest.raises(DeviceError, match=r"missing or incomplete.*devices emulate gone --profile rpi5 --force"):
        check_device("gone", reg)


# -- the build's failure modes (fake tools; nothing is downloaded) ------------------------------------------------


def _fake_tools(folder: Path, debootstrap_body: str) -> str:
    """A PATH with a scripted debootstrap and stand-ins for the other tools the build looks for."""
    folder.mkdir()
    for tool in ("qemu-aarch64-static", "dpkg-deb"):
        (folder / tool).write_text("#!/bin/sh\nexit 0\n")
    (folder / "debootstrap").write_text("#!/bin/sh\n" + debootstrap_body)
    for p in folder.iterdir():
        p.chmod(0o755)
    return f"{folder}:/usr/bin:/bin"


def test_missing_tools_is_one_line_and_builds_nothing(cli, reg, tmp_path, monkeypatch):
    monkeypatch.setattr(rootfs, "_which", lambda tool: None)
    r = cli("devices", "emulate", "pi", "--profile", "rpi4", "--devices", reg)
    assert r.exit_code == 1
    line = r.stderr.strip()
    assert "\n" not in line and "apt-get install -y debootstrap dpkg qemu-user-static" in line
    assert not reg.exists() and not (tmp_path / "cache").exists()


def test_failed_build_leaves_nothing(cli, reg, tmp_path, monkeypatch):
    script = (
        'mkdir -p "$6/var/cache/apt/archives" "$6/debootstrap"; echo half > "$6/half"\n'
        'echo "E: Failed getting release file" > "$6/debootstrap/debootstrap.log"; exit 1\n'
    )
    monkeypatch.setenv("PATH", _fake_tools(tmp_path / "bin", script))
    monkeypatch.setenv("SQNXT_EDGE_DEBIAN_MIRROR", "http://mirror.invalid/debian")
    stale = tmp_path / "cache" / "emulate" / ".rootfs-0123.killed"  # what a SIGKILLed build would leave
    stale.mkdir(parents=True)
    r = cli("devices", "emulate", "pi", "--devices", reg)
    assert r.exit_code == 1 and "Failed getting release file" in r.stderr and "Traceback" not in r.stderr
    assert sorted(p.name for p in (tmp_path / "cache" / "emulate").iterdir()) == [".lock"]
    assert not reg.exists()


def test_interrupted_build_leaves_nothing(reg, tmp_path):
    env = {
        **os.environ,
        "PATH": _fake_tools(tmp_path / "bin", 'mkdir -p "$6"; echo x > "$6/part"; exec sleep 60\n'),
        "SQNXT_EDGE_CACHE": str(tmp_path / "cache"),
        "SQNXT_EDGE_DEBIAN_MIRROR": "http://mirror.invalid/debian",
    }
    cmd = [sys.executable, "-m", "sqnxt_edge", "devices", "emulate", "pi", "--devices", str(reg)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cache = tmp_path / "cache" / "emulate"
    deadline = time.monotonic() + 60
    while not list(cache.glob(".rootfs-*/root/part")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(cache.glob(".rootfs-*/root/part")), "the build never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted" in err
    assert sorted(p.name for p in cache.iterdir()) == [".lock"] and not reg.exists()


def test_mirror_comes_from_apt_sources(tmp_path, monkeypatch):
    monkeypatch.delenv("SQNXT_EDGE_DEBIAN_MIRROR", raising=False)
    monkeypatch.setattr(rootfs, "APT", tmp_path)
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n\n"
        "Types: deb\n# a comment\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert rootfs.debian_mirror() == "http://mirror.example/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://archive.ubuntu.com/ubuntu jammy main\n")
    with pytest.raises(DeviceError, match=r"no Debian archive.*--mirror"):
        rootfs.debian_mirror()
    (tmp_path / "sources.list").write_text("deb http://ftp.example.org/debian trixie main\n")
    assert rootfs.debian_mirror() == "http://ftp.example.org/debian"
    assert rootfs.debian_mirror("http://given/debian/") == "http://given/debian"


def test_pip_sees_every_wheel_tag_the_boards_glibc_allows():
    args = rootfs._platforms("2.36-9+deb12u10")
    tags = args[1::2]
    assert set(args[::2]) == {"--platform"} and tags[0] == "manylinux2014_aarch64"
    assert tags[1:] == [f"manylinux_2_{v}_aarch64" for v in range(17, 37)]  # 2_27: ai-edge-litert 2.x, 2_28: ORT
    with pytest.raises(DeviceError):
        rootfs._platforms("")


def test_remove_deletes_the_board_and_an_unused_rootfs(cli, reg, tmp_path):
    """Built by hand (no debootstrap): a complete rootfs shared by two boards; the rootfs goes with the last one."""
    cache = tmp_path / "cache" / "emulate"
    root = cache / "rootfs-test"
    (root / "usr/bin").mkdir(parents=True)
    (root / rootfs.MARKER).parent.mkdir(parents=True)
    (root / rootfs.MARKER).write_text('{"suite": "bookworm"}')
    for name, profile in (("a", "rpi4"), ("b", "rpi5")):
        board = emulate._make_board(emulate._board_dir(cache, name), profile, root)
        add_device(Device(name=name, emulate=profile, rootfs=str(board), profile=profile), reg)
        assert (board / "proc" / "cpuinfo").is_file() and (board / "usr").resolve() == (root / "usr").resolve()
    first = Path(get_device("a", reg).rootfs)
    r = cli("devices", "remove", "a", "--devices", reg, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["deleted"] == [str(first)]
    assert not first.exists() and root.is_dir()
    second = Path(get_device("b", reg).rootfs)
    r = cli("devices", "remove", "b", "--devices", reg)
    assert r.exit_code == 0 and not second.exists() and not root.exists()
    assert load_devices(reg) == {}


def _emulated_run(emulated: bool) -> BenchRun:
    env = {
        "device": {"name": "pi"},
        "model": "Cortex-A72",
        "arch": "aarch64",
        "cores": 4,
        "features": {"neon": True},
        "emulated": emulated,
        **({"emulation": {"emulator": "qemu-aarch64 7.2", "host": {"model": "X"}}} if emulated else {}),
    }
    results = []
    for name, p50 in (("m.fp32.onnx", 300.0), ("m.int8.onnx", 150.0)):
        results.append(
            {
                "artifact": name,
                "format": "onnx",
                "precision": name.split(".")[1],
                "runtime": "onnxruntime",
                "threads": 1,
                "batch": 1,
                "size_bytes": 1000,
                "top1": 0.9,
                "latency_ms": {"mean": p50, "std": 1.0, "min": p50, "p50": p50, "p90": p50, "p99": p50, "max": p50},
                "samples_ms": [p50, p50 + 1],
                "env": env,
            }
        )
    report = {"env": env, "results": results}
    from sqnxt_edge.bench.api import _finish
    from sqnxt_edge.bench.settings import BenchConfig

    return _finish(report, [], [Path(r["artifact"]) for r in results], BenchConfig(device="pi"))


def test_emulated_latencies_are_labelled_and_never_compared(tmp_path):
    run, real = _emulated_run(True), _emulated_run(False)
    assert run.emulated and run.reference is None
    assert all(r["emulated"] and "speedup" not in r for r in run.results)
    assert all(r["speedup"] for r in real.results)
    from rich.console import Console

    console = Console(width=250, record=True)
    console.print(bench_report.rich_table(run))
    text = console.export_text()
    assert "EMULATED" in text and "p50 ms (emu)" in text and "speed-up" not in text
    md = bench_report.to_markdown(run)
    assert "EMULATED" in md and "p50 ms (emu)" in md and "peak MB (emu)" in md and "speed-up" not in md
    csv_text = bench_report.to_csv(run)
    assert csv_text.splitlines()[0].split(",").count("emulated") == 1 and ",True," in csv_text
    assert "emulated" not in bench_report.to_csv(real).splitlines()[0].split(",")
    assert json.loads(bench_report.to_json(run))["env"]["emulated"] is True
    png = bench_report.plot_latency(run, tmp_path / "lat.png")
    assert png.stat().st_size > 1000
    from sqnxt_edge.export import ExportResult
    from sqnxt_edge.pipeline import report as pipeline_report

    ckpt = SimpleNamespace(
        model_name="m", dataset="digits", path="m.pt", sha256="0" * 64, num_classes=10, input_size=32, epoch=3
    )
    exported = ExportResult(tmp_path, tmp_path / "manifest.json", {}, [])
    md = pipeline_report._markdown(ckpt, exported, run, {})
    assert "**EMULATED**" in md and "| speed-up |" not in md and "p50 ms (emu)" in md and "Device: pi " in md
    assert pipeline_report.plot_accuracy_vs_latency(run, tmp_path / "acc.png") is None


# -- a real emulated Raspberry Pi 4 -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def board(tmp_path_factory):
    """An emulated rpi4 named 'pi', built once per session, registered in a session devices.toml."""
    need("qemu", all(rootfs._which(t) is not None for t in TOOLS), "needs qemu-user-static and debootstrap")
    cache = Path(os.environ.get("SQNXT_EDGE_TEST_CACHE") or os.environ["SQNXT_EDGE_CACHE"])  # the session's own
    devices = tmp_path_factory.mktemp("emulate-devices") / "devices.toml"
    device, info = emulate.emulate_device("pi", "rpi4", devices, cache=cache)
    return SimpleNamespace(device=device, devices=devices, cache=cache, info=info)


@needs_qemu
@pytest.mark.slow
def test_check_reports_the_emulated_board(cli, board):
    r = cli("devices", "check", "pi", "--devices", board.devices, "--json")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    env = rep["env"]
    assert env["arch"] == "aarch64" and env["model"] == "Cortex-A72" and env["cores"] == 4
    assert env["features"]["neon"] and not env["features"]["dotprod"] and env["python"].startswith("3.11")
    assert env["emulated"] is True and env["emulation"]["cpu"] == "cortex-a72"
    assert env["board"].startswith("Raspberry Pi 4") and env["device"]["emulate"] == "rpi4"
    assert rep["runtimes"]["onnxruntime"] and rep["runtimes"]["litert"] and rep["runtimes"]["numpy"]
    assert rep["missing"] == [] and rep["warnings"] == []
    r = cli("devices", "check", "pi", "--devices", board.devices)
    assert r.exit_code == 0 and "emulated" in r.stdout and "Cortex-A72" in r.stdout


@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize(
    "profile, model, dotprod",
    [("rpi4", "Cortex-A72", False), ("rpi5", "Cortex-A76", True), ("generic-arm64", "Cortex-A53", False)],
)
def test_qemu_pins_each_boards_isa(board, tmp_path, profile, model, dotprod):
    """What the runtimes' kernel dispatch reads (AT_HWCAP from QEMU's -cpu) and what /proc/cpuinfo says agree with
    the board; a second board of any profile comes from the cache without a new build."""
    devices = tmp_path / "devices.toml"
    device, info = emulate.emulate_device(profile, profile, devices, cache=board.cache)
    assert info["built"] is False and info["rootfs"] == board.info["rootfs"]
    code = "import ctypes, platform; print(platform.machine(), ctypes.CDLL(None).getauxval(16))"
    argv, env = emulate.command(device, ["-c", code], tmp_path)
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300, check=True).stdout.split()
    assert out[0] == "aarch64" and bool(int(out[1]) & HWCAP_ASIMDDP) is dotprod
    rep = check_device(profile, devices)
    assert rep["env"]["model"] == model and rep["env"]["features"]["dotprod"] is dotprod and rep["warnings"] == []


@pytest.fixture(scope="session")
def board_export(board, digits_checkpoint, tmp_path_factory):
    """The digits model as fp32 + int8 ONNX and TFLite, every artifact verified on the emulated Pi 4 too."""
    need("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")
    from sqnxt_edge.export import ExportConfig, export

    out = tmp_path_factory.mktemp("board-export")
    config = ExportConfig(
        formats=["onnx", "tflite"],
        int8=True,
        verify_on="pi",
        devices_file=board.devices,
        verify_size=VERIFY_IMAGES,
        output_dir=out,
    )
    return export(digits_checkpoint, config)


@needs_qemu
@pytest.mark.slow
def test_export_verify_on_the_emulated_board(board_export):
    entries = {a["path"]: a for a in board_export.artifacts}
    assert sorted(entries) == sorted(f"1.0-SqNxt-23.{p}.{e}" for p in ("fp32", "int8") for e in ("onnx", "tflite"))
    for name, entry in entries.items():
        on_board = entry["parity"]["board"]
        assert on_board["passed"] and on_board["emulated"] and on_board["device"] == "pi", (name, on_board)
        assert on_board["cpu"] == "Cortex-A72 (aarch64)" and on_board["n"] == VERIFY_IMAGES
        if entry["precision"] == "fp32":  # the fp32 tolerance, against PyTorch and against this machine's run
            assert on_board["max_abs_diff"] <= 1e-4 and on_board["max_abs_diff_vs_here"] <= 1e-4
        else:
            assert on_board["top1_agreement_vs_here"] >= 0.99
            assert on_board["accuracy"]["drop"] <= board_export.manifest["export_config"]["max_drop"]
    # the int8 ONNX is the portable file (safe on every CPU class), verified here and on the board's ARM class
    int8 = entries["1.0-SqNxt-23.int8.onnx"]
    assert int8["quantization"]["target"] == "portable" and "arm-neon" in int8["quantization"]["safe_on"]
    assert [(v["cpu_class"], v["emulated"]) for v in int8["verified_on"]][1:] == [("arm-neon", True)]
    assert board_export.manifest["export_config"]["verify_on"] == "pi"
    assert any("Cortex-A72 has no" in w for w in board_export.warnings)


@needs_qemu
@pytest.mark.slow
def test_the_runtimes_see_a_cpu_they_know(board, board_export, tmp_path):
    """With the host's x86 /proc and /sys, pytorch-cpuinfo fails: onnxruntime warns or crashes and XNNPACK silently
    stays off. With the board's CPU view both initialise and TFLite runs through XNNPACK, as on a Pi."""
    code = (
        "import sys, numpy as np, onnxruntime as ort\n"
        "from ai_edge_litert.interpreter import Interpreter\n"
        "so = ort.SessionOptions(); so.intra_op_num_threads = 1\n"  # as the runner does
        "ort.InferenceSession(sys.argv[1], so, providers=['CPUExecutionProvider'])\n"
        "it = Interpreter(model_path=sys.argv[2], num_threads=1); it.allocate_tensors(); it.invoke()\n"
    )
    onnx, tflite = (str(board_export.output_dir / f"1.0-SqNxt-23.fp32.{e}") for e in ("onnx", "tflite"))
    argv, env = emulate.command(board.device, ["-c", code, onnx, tflite], tmp_path)
    res = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-500:]
    assert "XNNPACK delegate for CPU" in res.stderr and "cpuinfo" not in res.stderr.lower(), res.stderr[-500:]


@needs_qemu
@pytest.mark.slow
@pytest.mark.parametrize("name", ["fp32.onnx", "int8.onnx", "fp32.tflite", "int8.tflite"])
def test_eval_on_the_emulated_board_matches_this_machine(cli, board, board_export, name):
    art = board_export.output_dir / f"1.0-SqNxt-23.{name}"
    r = cli("eval", art, "--device", "pi", "--devices", board.devices, "--data", "digits", "--json")
    assert r.exit_code == 0, r.stderr
    on_board = json.loads(r.stdout)
    here = json.loads(cli("eval", art, "--data", "digits", "--json").stdout)
    assert on_board["n"] == here["n"] == 360
    assert abs(on_board["top1"] - here["top1"]) <= 0.3 and on_board["top1"] > 85
    assert on_board["emulated"] is True and on_board["device"] == "pi"
    assert on_board["env"]["arch"] == "aarch64" and on_board["env"]["model"] == "Cortex-A72"


@needs_qemu
@pytest.mark.slow
def test_bench_on_the_emulated_board(cli, board, board_export, tmp_path):
    arts = board_export.paths()
    r = cli(
        "bench",
        *arts,
        "--device",
        "pi",
        "--devices",
        board.devices,
        "--json",
        "--warmup",
        "0",
        "--runs",
        "2",
        "--min-seconds",
        "0",
        "-o",
        tmp_path / "b.md",
    )
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    assert {x["artifact"] for x in out["results"]} == {str(a) for a in arts} and not out["errors"]
    assert out["env"]["emulated"] is True and out["env"]["arch"] == "aarch64" and out["reference"] is None
    for x in out["results"]:
        assert x["emulated"] is True and "speedup" not in x and x["latency_ms"]["p50"] > 0
        assert x["runtime"] == ("onnxruntime" if x["format"] == "onnx" else "litert")
    md = (tmp_path / "b.md").read_text()
    assert "EMULATED" in md and "(emu)" in md and "speed-up" not in md


@needs_qemu
@pytest.mark.slow
def test_timeout_kills_the_emulation_and_leaves_nothing(board, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the staging folder lands here: it must be gone afterwards
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    art = write_tiny_onnx(tmp_path / "tiny.onnx", batch=1, metadata=False)
    forever = runner.Settings(warmup=0, runs=10**9, min_seconds=3600, runtime="onnxruntime")
    started = time.monotonic()
    with pytest.raises(DeviceError, match="timed out after 8 s on the emulated board"):
        run_runner(board.device, [art], forever, timeout=8)
    assert time.monotonic() - started < 60
    time.sleep(1)
    assert processes_running(board.device.rootfs) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]


@needs_qemu
@pytest.mark.slow
def test_a_killed_caller_leaves_no_emulation_running(board, tmp_path):
    art = write_tiny_onnx(tmp_path / "tiny.onnx", batch=1, metadata=False)
    code = (
        "import sys; from sqnxt_edge.devices import get_device, run_runner; from sqnxt_edge.runner import Settings\n"
        "run_runner(get_device('pi', sys.argv[1]), [sys.argv[2]], Settings(warmup=0, runs=10**9, "
        "min_seconds=3600, runtime='onnxruntime'))\n"
    )
    # SIGKILL leaves the caller's staging folder (nothing can delete it); keep it in tmp_path, not in /tmp
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(board.devices), str(art)], env={**os.environ, "TMPDIR": str(tmp_path)}
    )
    deadline = time.monotonic() + 120  # wait for the runner's own child: the bound, the runner, its child
    while len(processes_running(board.device.rootfs)) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(processes_running(board.device.rootfs)) >= 3, "the runner never started its measuring child"
    proc.kill()  # SIGKILL: no handler of the caller runs
    proc.wait()
    deadline = time.monotonic() + 30
    while processes_running(board.device.rootfs) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert processes_running(board.device.rootfs) == []

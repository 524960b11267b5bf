"""Remote runs through a REAL OpenSSH server on 127.0.0.1 (tests/sshd.py): check, bench, and every failure mode."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from sqnxt_edge.devices import Device, check_device, render_toml, transport
from sqnxt_edge.devices.ssh import scp_argv, ssh_argv
from sqnxt_edge.errors import DeviceError
from sqnxt_edge.runner import Settings

sys.path.insert(0, str(Path(__file__).parent))
from needs import mark, module, need
from procs import processes_running
from sshd import LoopbackSshd, find_sshd, free_port

needs_sshd = mark(
    "ssh",
    find_sshd() is not None and shutil.which("ssh") is not None,
    "needs OpenSSH (apt-get install openssh-server openssh-client)",
)
QUICK = ["--warmup", "1", "--runs", "3", "--min-seconds", "0"]
FAST = Settings(warmup=1, runs=3, min_seconds=0, runtime="onnxruntime")


def run_remote(name, artifacts, settings, data_file, devices, timeout):
    """The board's runner report through the one target seam (what bench, profile, eval and --verify-on use)."""
    from sqnxt_edge.devices import Target

    return Target(name, devices).run(artifacts, settings, data_file, timeout)


# -- argv construction (no server) ------------------------------------------------------------------------------


def test_ssh_argv_is_safe_and_leaves_host_keys_to_the_user():
    dev = Device(name="x", host="pi@board", port=2222, user="pi", identity="/k/id", ssh_options=("ProxyJump=j",))
    argv = ssh_argv(dev, "echo 'hi'; rm -rf /")
    assert argv[-3:-1] == ["--", "pi@board"]
    assert argv[-1] == "sh -c 'echo '\"'\"'hi'\"'\"'; rm -rf /'"  # one quoted script for the remote shell
    joined = " ".join(argv)
    assert "BatchMode=yes" in joined and "ConnectTimeout=10" in joined and "ServerAliveInterval=5" in joined
    assert "Port=2222" in joined and "-i /k/id" in joined and "ProxyJump=j" in joined
    assert "StrictHostKeyChecking" not in joined
    assert joined.index("BatchMode=yes") < joined.index("ProxyJump=j")  # ours first: ssh keeps the first value


def test_scp_argv_makes_local_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = scp_argv(Device(name="x", host="fe80::1"), [Path("a:b.onnx")], "/tmp/d")
    assert argv[-2] == str(tmp_path / "a:b.onnx") and argv[-1] == "[fe80::1]:/tmp/d/"
    assert "-B" in argv and argv[argv.index("--") - 1] != "--"


@pytest.mark.parametrize(
    "word, shell_sees",
    [
        ("~/venv/bin/python", "{home}/venv/bin/python"),
        ("/opt/py $(touch x)/python", "/opt/py $(touch x)/python"),
        ("~/a b;c", "{home}/a b;c"),
        ("~user/x", "~user/x"),
    ],
)
def test_remote_word_quotes_but_keeps_home(word, shell_sees, tmp_path):
    out = subprocess.run(
        ["sh", "-c", "printf %s " + transport.remote_word(word)],
        capture_output=True,
        text=True,
        env={"HOME": str(tmp_path), "PATH": os.environ["PATH"]},
        cwd=tmp_path,
    )
    assert out.stdout == shell_sees.format(home=tmp_path)
    assert not (tmp_path / "x").exists()


# -- a real server ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    need("ssh", find_sshd() is not None, "sshd is not installed (apt-get install openssh-server)")
    server = LoopbackSshd(tmp_path_factory.mktemp("sshd")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory) -> Path:
    """The same tiny net as .tflite via litert-torch (in a child process: the converter is heavy to import)."""
    need("tflite", module("litert_torch"), "litert-torch is not installed (pip install '.[tflite]')")
    path = tmp_path_factory.mktemp("tfl") / "tiny.tflite"
    code = (
        "import sys, torch, litert_torch\n"
        "class T(torch.nn.Module):\n"
        "    def __init__(s):\n        super().__init__(); s.fc = torch.nn.Linear(3, 4)\n"
        "    def forward(s, x):\n        return s.fc(x.mean(dim=(1, 2)))\n"
        "torch.manual_seed(0)\n"
        "litert_torch.convert(T().eval(), (torch.zeros(1, 8, 8, 3),)).export(sys.argv[1])\n"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True, timeout=300)
    Path(str(path) + ".meta.json").write_text(
        json.dumps(
            {
                "model_name": "tiny",
                "input_size": 8,
                "layout": "NHWC",
                "mean": [0.5] * 3,
                "std": [0.25] * 3,
                "classes": list("abcd"),
                "precision": "fp32",
            }
        )
    )
    return path


@pytest.fixture
def board(tmp_path, sshd):
    """A devices.toml with the loopback server as device 'loop'; `board.add(name, **settings)` adds variants.
    Each test gets its own remote workdir so leftovers are visible."""

    class Board:
        devices = tmp_path / "devices.toml"
        workdir = tmp_path / "remote"

        def add(self, name, **settings):
            settings.setdefault("workdir", str(self.workdir))
            with self.devices.open("a") as fh:
                fh.write(sshd.device_toml(name, **settings) + "\n")

        def leftovers(self):
            return sorted(p.name for p in self.workdir.iterdir())

    b = Board()
    b.workdir.mkdir()
    b.add("loop")
    return b


def _script(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


@needs_sshd
@pytest.mark.ssh
def test_devices_check_end_to_end(cli, board):
    r = cli("devices", "check", "loop", "--devices", board.devices, "--json")
    assert r.exit_code == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["reachable"] and rep["env"]["python"] == platform.python_version()
    assert rep["env"]["arch"] == platform.machine().lower() and rep["env"]["device"]["name"] == "loop"
    assert rep["runtimes"]["onnxruntime"] and rep["runtimes"]["numpy"]
    assert rep["missing"] == [] and rep["pip_install"] is None
    assert board.leftovers() == []
    r = cli("devices", "check", "loop", "--devices", board.devices)
    assert r.exit_code == 0 and "onnxruntime" in r.stdout and "python" in r.stdout


@needs_sshd
@pytest.mark.ssh
def test_check_missing_runtime_and_profile_mismatch(board, tmp_path):
    block = tmp_path / "block" / "onnxruntime"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    py = _script(tmp_path / "py", f'PYTHONPATH={tmp_path / "block"} exec {sys.executable} "$@"\n')
    board.add("noort", python=py, profile="rpi4")
    rep = check_device("noort", board.devices)
    assert rep["runtimes"]["onnxruntime"] is None and "onnxruntime" in rep["missing"]
    assert rep["pip_install"].endswith("-m pip install onnxruntime")
    if platform.machine().lower() != "aarch64":
        assert any("architecture" in w for w in rep["warnings"])
    assert board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
def test_run_runner_remote_onnx_with_nasty_name(board, tiny_onnx, tmp_path):
    weird = tmp_path / "my models $(touch pwned); touch pwned2 `touch pwned3`"
    weird.mkdir()
    art = weird / "tiny $(touch pwned4);'x'.onnx"
    shutil.copy(tiny_onnx, art)
    Path(str(art) + ".meta.json").write_text(
        json.dumps({"input_size": 8, "layout": "NCHW", "mean": [0.5] * 3, "std": [0.25] * 3, "precision": "fp32"})
    )
    data = run_remote("loop", [art, tmp_path / "missing.onnx"], replace(FAST, threads=1), None, board.devices, 120)
    ok, missing = data["results"]
    assert ok["artifact"] == str(art) and "error" not in ok, ok
    assert ok["threads"] == 1 and ok["latency_ms"]["p50"] > 0
    assert missing["artifact"] == str(tmp_path / "missing.onnx") and "not found" in missing["error"]
    assert data["env"]["device"] == {"name": "loop", "host": "127.0.0.1", "profile": None}
    assert board.leftovers() == []
    for where in (tmp_path, weird, Path.home(), board.workdir):
        assert not list(where.glob("pwned*")), where


@needs_sshd
@pytest.mark.ssh
@pytest.mark.slow
@pytest.mark.tflite
def test_run_runner_remote_onnx_and_tflite(board, tiny_onnx, tiny_tflite):
    data = run_remote("loop", [tiny_onnx, tiny_tflite], replace(FAST, runtime="auto"), None, board.devices, 180)
    by_name = {r["artifact"]: r for r in data["results"]}
    assert set(by_name) == {str(tiny_onnx), str(tiny_tflite)}
    assert data["results"][0]["runtime"] == "onnxruntime"  # the default engine first, then any other installed
    assert all("error" not in r for r in data["results"]), data["results"]
    assert by_name[str(tiny_tflite)]["runtime"] in ("litert", "tflite-runtime")
    assert data["env"]["device"]["name"] == "loop" and board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
@pytest.mark.slow
@pytest.mark.tflite
def test_bench_cli_onnx_and_tflite_on_device(cli, board, tiny_onnx, tiny_tflite):
    """The issue's "done when": `sqnxt-edge bench ART.onnx ART.tflite --device NAME` end to end."""
    r = cli("bench", tiny_onnx, tiny_tflite, "--device", "loop", "--devices", board.devices, "--json", *QUICK)
    assert r.exit_code == 0, r.stderr
    results = json.loads(r.stdout)["results"]
    assert {x["artifact"] for x in results} == {str(tiny_onnx), str(tiny_tflite)}
    assert all("error" not in x for x in results)
    assert all(x["env"]["device"]["name"] == "loop" and x["env"]["python"] for x in results)
    assert board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
def test_bench_cli_on_device(cli, board, tiny_onnx):
    r = cli("bench", tiny_onnx, "--device", "loop", "--devices", board.devices, "--json", *QUICK)
    assert r.exit_code == 0, r.stderr
    out = json.loads(r.stdout)
    results = out["results"]
    assert results and all("error" not in x for x in results)
    assert "loop" in json.dumps(out) and board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
def test_refused_connection_is_one_line(cli, board):
    board.add("closed", port=free_port())
    r = cli("devices", "check", "closed", "--devices", board.devices)
    assert r.exit_code == 1
    assert "connection refused" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@needs_sshd
@pytest.mark.ssh
def test_refused_login(board):
    board.add("nouser", user="sqnxt-no-such-user")
    with pytest.raises(DeviceError, match="authentication refused"):
        check_device("nouser", board.devices)


@needs_sshd
@pytest.mark.ssh
@pytest.mark.parametrize("board_tools", ["timeout", "setsid"])
def test_hung_board_times_out_and_leaves_nothing(board, tiny_onnx, tmp_path, monkeypatch, board_tools):
    """With coreutils `timeout` the board stops the runner itself; without it (busybox-less boards) the local
    timeout fires and the cleanup connection kills the runner's process group (setsid) or the runner."""
    real = transport._preflight
    if board_tools != "timeout":
        monkeypatch.setattr(transport, "_preflight", lambda *a: (real(*a)[0], {board_tools}))
    marker = f"sqnxt-hang-{os.getpid()}-{time.monotonic_ns()}"
    # the hung "python" is a shell whose CHILD carries the marker: a leftover grandchild would be seen too
    sleeper = _script(tmp_path / "hang.sh", f"{sys.executable} -c 'import time; time.sleep(300)' {marker}\n")
    board.add("hang", python=sleeper)
    started = time.monotonic()
    with pytest.raises(DeviceError, match="timed out") as info:
        run_remote("hang", [tiny_onnx], FAST, None, board.devices, 6)
    assert "\n" not in str(info.value)
    assert time.monotonic() - started < 6 + 15  # the timeout holds (generous slack for a loaded CI machine)
    deadline = time.monotonic() + 10  # the board's `timeout -k` may take a moment to reap
    while processes_running(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = processes_running(marker)
    for entry in left:  # never leave a stray process behind, even when the test fails
        os.kill(int(entry.split(":")[0]), 9)
    assert left == []
    assert board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
@pytest.mark.parametrize(
    "python, match",
    [
        ("/nonexistent/python3", "not found on the board"),
        ("SCRIPT:echo hello; exit 0", "runner output is not JSON"),
        (
            "SCRIPT:echo 'Traceback (most recent call last):' >&2; "
            "echo \"ModuleNotFoundError: No module named 'numpy'\" >&2; exit 1",
            "No module named 'numpy'.*pip install numpy",
        ),
    ],
)
def test_broken_remote_python(board, tiny_onnx, tmp_path, python, match):
    if python.startswith("SCRIPT:"):
        python = _script(tmp_path / "fakepy", python[len("SCRIPT:") :] + "\n")
    board.add("broken", python=python)
    with pytest.raises(DeviceError, match=match) as info:
        run_remote("broken", [tiny_onnx], FAST, None, board.devices, 60)
    assert "\n" not in str(info.value)
    assert board.leftovers() == []


@needs_sshd
@pytest.mark.ssh
def test_missing_runtime_is_a_per_artifact_error(board, tiny_onnx, tmp_path):
    block = tmp_path / "block" / "onnxruntime"
    block.mkdir(parents=True)
    (block / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    py = _script(tmp_path / "py", f'PYTHONPATH={tmp_path / "block"} exec {sys.executable} "$@"\n')
    board.add("noort", python=py)
    data = run_remote("noort", [tiny_onnx], FAST, None, board.devices, 60)
    (res,) = data["results"]
    assert res["artifact"] == str(tiny_onnx) and "onnxruntime" in res["error"]


@needs_sshd
@pytest.mark.ssh
def test_server_without_sftp_falls_back_to_legacy_scp(tmp_path):
    server = LoopbackSshd(tmp_path / "srv", sftp=False).start()
    try:
        devices = tmp_path / "devices.toml"
        (tmp_path / "remote").mkdir()
        devices.write_text(server.device_toml("old", workdir=str(tmp_path / "remote")))
        rep = check_device("old", devices)
        assert rep["reachable"] and list((tmp_path / "remote").iterdir()) == []
    finally:
        server.stop()


@needs_sshd
@pytest.mark.ssh
@pytest.mark.parametrize("how", ["argument", "in_settings"])
def test_data_file_is_copied_and_scored(board, tiny_onnx, tmp_path, how):
    rng = np.random.RandomState(0)
    data = tmp_path / "my data $(x).npz"
    np.savez(data, images_8=rng.randint(0, 255, (10, 8, 8, 3), dtype=np.uint8), labels=rng.randint(0, 4, 10))
    settings = replace(FAST, data=str(data)) if how == "in_settings" else FAST
    report = run_remote("loop", [tiny_onnx], settings, data if how == "argument" else None, board.devices, 120)
    (res,) = report["results"]
    assert "error" not in res, res
    assert res["n"] == 10 and 0.0 <= res["top1"] <= 1.0
    assert board.leftovers() == []


def test_silent_host_times_out_at_connect(tmp_path):
    """A host that accepts TCP but never speaks SSH (a wedged board): ConnectTimeout, one line, no hang."""
    import socket

    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(5)
        devices = tmp_path / "devices.toml"
        devices.write_text(
            render_toml(
                Device(
                    name="mute",
                    host="127.0.0.1",
                    port=srv.getsockname()[1],
                    connect_timeout=1,
                    timeout=20,
                    ssh_options=("UserKnownHostsFile=/dev/null",),
                )
            )
        )
        started = time.monotonic()
        with pytest.raises(DeviceError, match=r"unreachable|timed out") as info:
            check_device("mute", devices)
        assert "\n" not in str(info.value) and time.monotonic() - started < 20

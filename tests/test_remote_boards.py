"""Several boards at once: two loopback SSH boards (each a real sshd on 127.0.0.1 and a real runner) measured in
parallel through a group of devices.toml; one board's connection is killed mid-run and costs only its own rows."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sqnxt_edge.devices import resolve_boards

from procs import Child, wait_gone
from test_remote import needs_sshd
from test_remote_drop import Board, _sshd_ancestors


@pytest.fixture
def boards(tmp_path):
    made = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            made.append(Board(tmp_path / name))
        yield made
    finally:
        for b in made:
            b.stop()


def _registry(boards, path: Path) -> Path:
    tables = [b.devices.read_text().replace("[devices.loop]", f"[devices.{n}]") for n, b in zip("ab", boards)]
    path.write_text("\n".join(tables) + '\n[groups]\nlab = ["a", "b"]\n')
    return path


@needs_sshd
@pytest.mark.ssh
@pytest.mark.slow
def test_two_boards_in_parallel_one_killed_mid_run(boards, tiny_onnx, tmp_path):
    a, b = boards
    devices = _registry(boards, tmp_path / "devices.toml")
    assert resolve_boards(["lab"], devices) == ["a", "b"]
    timing = ["--runtime", "onnxruntime", "--threads", 1, "--warmup", 1, "--runs", 5, "--min-seconds", 8]
    child = Child(["bench", tiny_onnx, "--device", "lab", "--devices", devices, "--json", *timing], cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not (a.measuring() and b.measuring()):  # both boards timing at the same moment: in parallel
        assert child.proc.poll() is None, "\n".join(child.lines)
        assert time.monotonic() < deadline, "the two boards never measured at the same time"
        time.sleep(0.1)
    sessions = _sshd_ancestors(int(b.measuring()[0]), b.server.proc.pid)
    assert sessions, "no sshd session found above board b's runner"
    for pid in sessions:  # board b drops its connection mid-run
        os.kill(pid, signal.SIGKILL)
    assert child.finish(timeout=180) == 1
    out = json.loads(child.stdout)
    assert [r["device"] for r in out["results"]] == ["a"]  # board a's row survives
    (res,) = out["results"]
    assert res["artifact"] == str(tiny_onnx) and res["latency_ms"]["p50"] > 0 and res["cores"]
    assert [(e["device"], e["artifact"]) for e in out["errors"]] == [("b", str(tiny_onnx))]
    assert "connection lost during the remote run" in out["errors"][0]["error"]
    assert out["boards"]["a"]["measured"] is True and out["boards"]["b"]["measured"] is False
    assert set(out["env"]["devices"]) == {"a"}
    assert child.error_lines() == [f"error: b: {tiny_onnx.name}: {out['errors'][0]['error']}"]
    assert wait_gone(b.marker, timeout=20) == []  # nothing left running on board b ...
    deadline = time.monotonic() + 10
    while b.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert b.leftovers() == [] and a.leftovers() == []  # ... nor stored on either board


@needs_sshd
@pytest.mark.ssh
@pytest.mark.slow
def test_stopping_a_bench_on_two_boards_cleans_both(boards, tiny_onnx, tmp_path):
    a, b = boards
    devices = _registry(boards, tmp_path / "devices.toml")
    timing = ["--runtime", "onnxruntime", "--threads", 1, "--warmup", 1, "--runs", 10**9, "--min-seconds", 300]
    child = Child(["bench", tiny_onnx, "--device", "a", "--device", "b", "--devices", devices, *timing], cwd=tmp_path)
    deadline = time.monotonic() + 180
    while not (a.measuring() and b.measuring()):
        assert child.proc.poll() is None, "\n".join(child.lines)
        assert time.monotonic() < deadline, "the two boards never measured at the same time"
        time.sleep(0.1)
    child.send(signal.SIGTERM)
    assert child.finish(timeout=90) == 143
    assert child.lines[-1] == "error: stopped by SIGTERM"
    assert child.leftovers() == []  # no worker, no local ssh left
    for board in boards:
        assert wait_gone(board.marker, timeout=20) == []
        deadline = time.monotonic() + 10
        while board.leftovers() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert board.leftovers() == []

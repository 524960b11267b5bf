"""A board whose SSH connection drops mid-run, or whose bench is stopped by a signal mid-run: one line, a non-zero
exit, and nothing left running or stored on the board (a real sshd on 127.0.0.1, a real runner measuring there)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from procs import MARKER_VAR, Child, processes_with, wait_gone
from sshd import LoopbackSshd
from test_remote import needs_sshd

LONG = ["--runtime", "onnxruntime", "--threads", 1, "--warmup", 1, "--runs", 10**9, "--min-seconds", 300]


class Board:
    """A loopback "board" with its own sshd (these tests kill it), a workdir to inspect, and a python that marks
    every process it starts, so whatever runs there can be found."""

    def __init__(self, folder: Path):
        self.server = LoopbackSshd(folder / "sshd").start()
        self.workdir = folder / "remote"
        self.workdir.mkdir()
        self.marker = f"board-{os.getpid()}-{time.monotonic_ns()}"
        python = folder / "python"
        python.write_text(f'#!/bin/sh\n{MARKER_VAR}={self.marker} exec {sys.executable} "$@"\n')
        python.chmod(0o755)
        self.devices = folder / "devices.toml"
        self.devices.write_text(
            self.server.device_toml("loop", python=str(python), workdir=str(self.workdir), timeout=600.0) + "\n"
        )

    def measuring(self) -> list[str]:
        return [p for p in processes_with(self.marker) if b"--one" in Path(f"/proc/{p}/cmdline").read_bytes()]

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.workdir.iterdir())

    def stop(self) -> None:
        for pid in processes_with(self.marker):
            os.kill(int(pid), signal.SIGKILL)
        self.server.stop()


def _sshd_ancestors(pid: int, listener: int) -> list[int]:
    """The sshd processes between the listener and `pid`: the session that serves this connection."""
    found, cur = [], pid
    while cur > 1 and cur != listener:
        stat = Path(f"/proc/{cur}/stat").read_text()
        name, parent = stat[stat.index("(") + 1 : stat.rindex(")")], int(stat.rsplit(")", 1)[1].split()[1])
        if name.startswith("sshd"):
            found.append(cur)
        cur = parent
    return found


@pytest.fixture
def board(tmp_path):
    b = Board(tmp_path)
    try:
        yield b
    finally:
        b.stop()


def _start_remote_bench(board: Board, artifact: Path, tmp_path: Path) -> Child:
    child = Child(["bench", artifact, "--device", "loop", "--devices", board.devices, *LONG], cwd=tmp_path)
    deadline = time.monotonic() + 120
    while not board.measuring():  # the runner is timing on the board
        assert child.proc.poll() is None, "\n".join(child.lines)
        assert time.monotonic() < deadline, "the remote measuring process never started"
        time.sleep(0.2)
    return child


@needs_sshd
@pytest.mark.ssh
@pytest.mark.parametrize("drop", ["session", "server"])
def test_dropped_connection_mid_run_is_one_line_and_leaves_nothing_on_the_board(board, tiny_onnx, tmp_path, drop):
    """session: the sshd process serving the run dies (the server still accepts: the client cleans up over a new
    connection). server: the whole sshd dies (nobody can connect: the board's watchdog must clean up alone)."""
    child = _start_remote_bench(board, tiny_onnx, tmp_path)
    sessions = _sshd_ancestors(int(board.measuring()[0]), board.server.proc.pid)
    assert sessions, "no sshd session found above the remote runner"
    if drop == "server":
        board.server.stop()  # the listener: no new connection from now on
    for pid in sessions:
        os.kill(pid, signal.SIGKILL)
    assert child.finish(timeout=60) == 1
    errors = child.error_lines()
    assert len(errors) == 1 and errors == child.lines[-1:], child.lines
    assert errors[0].startswith("error: device 'loop'") and "connection lost during the remote run" in errors[0]
    assert wait_gone(board.marker, timeout=20) == []  # the runner and its measuring child stopped on the board
    deadline = time.monotonic() + 10
    while board.leftovers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert board.leftovers() == []  # and the temp folder deleted there


@needs_sshd
@pytest.mark.ssh
def test_remote_bench_stopped_by_sigterm_cleans_the_board(board, tiny_onnx, tmp_path):
    child = _start_remote_bench(board, tiny_onnx, tmp_path)
    child.send(signal.SIGTERM)
    assert child.finish(timeout=60) == 143
    assert child.lines[-1] == "error: stopped by SIGTERM" and child.error_lines() == child.lines[-1:]
    assert child.leftovers() == []  # no local ssh left
    assert wait_gone(board.marker, timeout=20) == [] and board.leftovers() == []

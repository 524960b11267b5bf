"""Stop signals: SIGTERM / SIGHUP unwind a command like Ctrl-C (one line, exit 128+signal, children gone).

The context manager is checked in this process with real signals; the CLI in a real child process (a local bench
whose runner and measuring child must go with it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sqnxt_edge.interrupts import Interrupted, describe, exit_code, kill_process_group, stop_on_signals

sys.path.insert(0, str(Path(__file__).parent))
from procs import Child, processes_with, wait_gone


def _wait_for_signal(seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.01)  # the handler runs between bytecodes of the main thread


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_raises_interrupted_and_handlers_come_back(sig):
    before = signal.getsignal(sig)
    with pytest.raises(Interrupted) as info, stop_on_signals():
        os.kill(os.getpid(), sig)
        _wait_for_signal()
    assert isinstance(info.value, KeyboardInterrupt)  # every `except KeyboardInterrupt` cleanup sees it
    assert info.value.signum == sig and exit_code(info.value) == 128 + sig
    assert describe(info.value) == f"stopped by {signal.Signals(sig).name}"
    assert signal.getsignal(sig) is before
    assert describe(KeyboardInterrupt()) == "interrupted" and exit_code(KeyboardInterrupt()) == 130


def test_a_second_signal_lets_the_cleanup_finish():
    cleaned = []
    with pytest.raises(Interrupted), stop_on_signals():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            _wait_for_signal()
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # impatient sender: must not cut the cleanup short
            _wait_for_signal(0.2)
            cleaned.append(True)
    assert cleaned == [True]


def test_an_ignored_signal_stays_ignored():
    """`nohup` ignores SIGHUP for its child: the command must then survive a hang-up."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stop_on_signals():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGHUP)
            _wait_for_signal(0.2)
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)


def test_kill_process_group_takes_the_grandchildren_too(tmp_path):
    marker = f"sqnxt-group-{os.getpid()}-{time.monotonic_ns()}"
    code = (
        "import subprocess, sys, time; "
        f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{marker}']); time.sleep(300)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, marker], start_new_session=True)
    deadline = time.monotonic() + 20
    while len(_cmdline_has(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(_cmdline_has(marker)) == 2
    kill_process_group(proc)
    assert proc.returncode is not None and _cmdline_has(marker) == []


def _cmdline_has(marker: str) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if marker.encode() in cmd and state != "Z":
                found.append(pid)
    return found


# -- the CLI, in a real child process ---------------------------------------------------------------------------


def _measuring(marker: str) -> list[str]:
    """The runner's measuring child of a bench (`runner.pyz --one ...`), among the marked processes."""
    return [pid for pid in processes_with(marker) if b"--one" in Path(f"/proc/{pid}/cmdline").read_bytes()]


SIGNALS = [signal.SIGTERM, signal.SIGHUP]
if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # a child of an ignoring parent would ignore it too
    SIGNALS.append(signal.SIGINT)


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_bench_stopped_by_a_signal_says_so_and_leaves_nothing_running(tiny_onnx, tmp_path, sig):
    child = Child(
        [
            "bench",
            tiny_onnx,
            "--runtime",
            "onnxruntime",
            "--threads",
            1,
            "--warmup",
            1,
            "--runs",
            10**9,
            "--min-seconds",
            600,
            "-o",
            tmp_path / "bench.json",
        ],
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 120
        while not _measuring(child.marker):  # the runner has started timing: children exist now
            assert child.proc.poll() is None, "\n".join(child.lines)
            assert time.monotonic() < deadline, "the measuring child never started"
            time.sleep(0.1)
        child.send(sig)
        code = child.finish(timeout=60)
        assert code == 128 + sig
        expected = "interrupted" if sig == signal.SIGINT else f"stopped by {signal.Signals(sig).name}"
        assert child.lines[-1] == f"error: {expected}"
        assert not any("Traceback" in ln for ln in child.lines) and child.stdout == ""
        assert wait_gone(child.marker) == []  # the runner and its measuring child went with it
        assert sorted(p.name for p in tmp_path.iterdir()) == []  # no half-written report
    finally:
        child.kill_leftovers()


# -- the composite commands: the same mechanism, whatever stage they are in ---------------------------------------


@pytest.mark.slow
def test_demo_stopped_while_training(tmp_path):
    child = Child(
        ["demo", "--epochs", 2, "--no-int8", "--format", "onnx", "-o", tmp_path / "demo"],
        cwd=tmp_path,
        env={"OMP_NUM_THREADS": "1"},
    )
    try:
        child.wait_for(r"1/2 training")
        time.sleep(2.0)
        child.send(signal.SIGTERM)
        assert child.finish(timeout=120) == 143
        assert child.lines[-1] == "error: stopped by SIGTERM" and child.error_lines() == child.lines[-1:]
        assert wait_gone(child.marker) == []
        written = list((tmp_path / "demo").rglob("*"))
        assert not [p for p in written if p.name.startswith(".")]  # no temp file of an atomic write
        assert not (tmp_path / "export").exists()  # it never got there
    finally:
        child.kill_leftovers()


@pytest.mark.slow
def test_pipeline_stopped_while_benchmarking(tmp_path):
    from test_export import make_checkpoint

    ckpt = make_checkpoint(tmp_path / "tiny.pt")
    child = Child(
        [
            "pipeline",
            ckpt,
            "--format",
            "onnx",
            "--threads",
            1,
            "--export-dir",
            tmp_path / "exp",
            "-o",
            tmp_path / "report",
        ],
        cwd=tmp_path,
    )
    try:
        child.wait_for(r"benchmarking \d+ artifacts")
        deadline = time.monotonic() + 120
        while not _measuring(child.marker):  # a runner child is measuring
            assert child.proc.poll() is None and time.monotonic() < deadline, "\n".join(child.lines)
            time.sleep(0.1)
        child.send(signal.SIGTERM)
        assert child.finish(timeout=120) == 143
        assert child.lines[-1] == "error: stopped by SIGTERM" and child.error_lines() == child.lines[-1:]
        assert wait_gone(child.marker) == []  # the runner and its measuring child too
        names = sorted(p.name for p in (tmp_path / "exp").iterdir())
        assert names == ["1.0-SqNxt-23.fp32.onnx", "1.0-SqNxt-23.fp32.onnx.meta.json", "manifest.json"]
        assert not (tmp_path / "report").exists()
    finally:
        child.kill_leftovers()

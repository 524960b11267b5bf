"""Real child processes for the stop-signal tests: start `python -m sqnxt_edge ...`, wait for a line on its stderr,
send it a real signal, and find anything it left running (every descendant carries a marker in its environment,
so orphans re-parented to init are found too)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER_VAR = "SQNXT_EDGE_TEST_MARKER"


class Child:
    """`python -m sqnxt_edge ARGS` with stderr collected line by line in the background."""

    def __init__(self, args: list, cwd: Path | None = None, env: dict | None = None, argv: list | None = None):
        self.marker = uuid.uuid4().hex
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            MARKER_VAR: self.marker,
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        cmd = argv or [sys.executable, "-m", "sqnxt_edge"]
        self.proc = subprocess.Popen(
            [*cmd, *[str(a) for a in args]],
            cwd=cwd,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
        )
        self.lines: list[str] = []
        self.stdout = ""
        self._cond = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read_err, daemon=True),
            threading.Thread(target=self._read_out, daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read_err(self) -> None:
        for line in self.proc.stderr:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self) -> None:
        self.stdout = self.proc.stdout.read()

    def wait_for(self, pattern: str, timeout: float = 300.0) -> str:
        """The first stderr line matching `pattern`; fails if the child ends or time runs out first."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if rx.search(line):
                        return line
                seen = len(self.lines)
                if self.proc.poll() is not None and not self._readers[0].is_alive():
                    raise AssertionError(
                        f"child ended (exit {self.proc.returncode}) before {pattern!r}:\n" + "\n".join(self.lines[-20:])
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {pattern!r} within {timeout} s:\n" + "\n".join(self.lines[-20:]))
                self._cond.wait(min(left, 0.5))

    def send(self, sig: int) -> None:
        os.kill(self.proc.pid, sig)

    def finish(self, timeout: float = 120.0) -> int:
        """Wait for the exit status (killing the child if it hangs) and for its output."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"child did not exit within {timeout} s:\n" + "\n".join(self.lines[-20:])) from None
        for t in self._readers:
            t.join(timeout=10)
        return self.proc.returncode

    def error_lines(self) -> list[str]:
        """stderr lines that are not progress chatter (progress lines are dim, plain text: we keep error ones)."""
        return [ln for ln in self.lines if ln.startswith("error:") or "Traceback" in ln]

    def leftovers(self) -> list[str]:
        return processes_with(self.marker)

    def kill_leftovers(self) -> None:
        for pid in processes_with(self.marker):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def processes_with(marker: str) -> list[str]:
    """Live processes (other than us) whose environment carries `marker`: the child and all its descendants."""
    found = []
    needle = f"{MARKER_VAR}={marker}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie has ended; it only waits to be reaped
                    found.append(pid)
        except OSError:
            continue
    return found


def processes_running(text: str) -> list[str]:
    """Live processes (other than us) whose command line contains `text`, as "pid: command line"."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if text in cmd:
                found.append(f"{pid}: {cmd[:200]}")
    return found


def wait_gone(marker: str, timeout: float = 10.0) -> list[str]:
    """Give processes that are ending a moment, then return those still alive."""
    deadline = time.monotonic() + timeout
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_with(marker)

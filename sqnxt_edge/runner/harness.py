"""The child harness: every measurement runs in a fresh process that prints one JSON object, so one model's memory,
threads or crash never touch another's. Children are this runner again (the .pyz it runs from), started through
$SQNXT_EDGE_LAUNCHER when there is one (an emulated board's qemu).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile

from .backends import backend_class, need, version
from .contract import LAUNCHER_VAR, RunnerError, first_line


def run_child(cmd: list, timeout: float | None = None) -> tuple[dict, float | None]:
    """Run `cmd` (a child that prints one JSON object) in a fresh process; return (its JSON, its peak RSS in MB).

    Peak RSS comes from os.wait4's rusage of exactly that child (KiB on Linux, bytes on macOS). A child that fails
    gives {"error": one line}.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=errf)
        deadline, timed_out = time.monotonic() + (timeout or float("inf")), False
        try:  # polled like Popen.wait(timeout) does, but through wait4 (POSIX), which also gives the rusage
            while not (reaped := os.wait4(proc.pid, os.WNOHANG))[0]:
                if time.monotonic() > deadline and not timed_out:
                    proc.kill()  # not reaped yet, so the pid is still this child's
                    timed_out = True
                time.sleep(0.05)  # at most 50 ms late; no wakeups worth measuring
        except BaseException:  # interrupted: the child goes with us
            proc.kill()
            proc.wait()
            raise
        _, status, usage = reaped
        proc.returncode = os.waitstatus_to_exitcode(status)
        peak = usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024.0)
        out.seek(0)
        errf.seek(0)
        text = out.read().decode("utf-8", "replace").strip()
        err_text = errf.read().decode("utf-8", "replace").strip()
    try:
        payload = json.loads(text.splitlines()[-1]) if text else None
    except ValueError:
        payload = None
    if timed_out:
        return {"error": f"timed out after {timeout:g} s"}, peak
    if isinstance(payload, dict) and ("error" in payload or proc.returncode == 0):
        return payload, peak
    if proc.returncode < 0:
        why = f"killed by signal {-proc.returncode}" + (" (out of memory?)" if proc.returncode == -9 else "")
    else:
        last = err_text.splitlines()[-1] if err_text else ""
        why = f"exited with code {proc.returncode}" + (f": {last[:300]}" if last else "")
    return {"error": f"measuring process {why}"}, peak


def archive() -> str | None:
    """The .pyz this code runs from (a board's, or the one the package built), else None (imported in-process)."""
    path = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # <archive>/<package>/harness.py
    return path if os.path.isfile(path) and zipfile.is_zipfile(path) else None


def entry() -> str:
    """What a child runs: the archive we run from; in-process (the package imported us), the .pyz built from this
    very package, so children run the same code as a board would."""
    path = archive()
    if path is None:
        from .ship import runner_pyz  # never shipped: only reached from the package itself

        path = str(runner_pyz())
    return path


def self_cmd(*args) -> list[str]:
    """This runner as a fresh child, through the launcher when there is one (an emulated board's qemu)."""
    launcher = shlex.split(os.environ.get(LAUNCHER_VAR, ""))
    return [*launcher, sys.executable, entry(), *[str(a) for a in args]]


def child_main(fn) -> int:
    """Child side: print one JSON object; a failure becomes {"error": one line} and exit 1."""
    try:
        payload, code = fn(), 0
    except RunnerError as exc:
        payload, code = {"error": str(exc)}, 1
    except Exception as exc:  # a runtime's own exception types: still one line, never a traceback on the board
        payload, code = {"error": f"{type(exc).__name__}: {first_line(exc)}"}, 1
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()
    return code


def bare(runtime: str) -> dict:
    """What a measurement imports and nothing more: the memory every model's share is measured above."""
    module = need(runtime)
    # the backend's module too: a plugin's imports the package (torch), ExecuTorch's imports torch for its tensors
    backend_class(runtime)
    return {"runtime": runtime, "runtime_version": version(runtime, module)}

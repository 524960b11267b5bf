"""This machine as a target: the one-file runner (`runner.pyz`, exactly what a board receives) in a child process,
its progress lines relayed, its JSON report returned. So a local figure comes from the same code and procedure as a
board's: one fresh child per artifact and runtime, each with its own peak RSS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from .. import runner
from ..errors import BenchError
from ..interrupts import kill_process_group
from ..runner.ship import runner_pyz

__all__ = ["run_local", "Progress"]

Progress = Callable[[str | None, str | None], None]  # (artifact, error or None) after each measurement


def run_local(
    artifacts: list[Path], settings: runner.Settings, progress: Progress | None = None, env: dict | None = None
) -> dict:
    """`python runner.pyz SETTINGS --progress ARTIFACTS` with `env` added to this process's environment (a harness's
    runtime plugins); returns its JSON report."""
    cmd = [sys.executable, str(runner_pyz()), *settings.to_argv(), "--progress", *[str(a) for a in artifacts]]
    other: list[str] = []
    with tempfile.TemporaryFile() as out:
        # its own process group: when we are stopped, the runner and the measuring child it started go together
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        assert proc.stderr is not None  # stderr=PIPE
        try:
            for line in proc.stderr:
                try:
                    event = json.loads(line)
                except ValueError:
                    other.append(line.rstrip())
                    continue
                if progress and isinstance(event, dict) and "done" in event:
                    progress(event.get("artifact"), event.get("error"))
            proc.wait()
        except BaseException:  # interrupted: the runner and its children go too
            kill_process_group(proc)
            raise
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    try:
        return json.loads(text)
    except ValueError:
        last = next((ln for ln in reversed(other) if ln.strip()), f"exit code {proc.returncode}")
        raise BenchError(f"the runner failed: {last.strip()[:300]}") from None

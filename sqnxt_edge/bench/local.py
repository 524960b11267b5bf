"""Measuring on this machine: the runner as a subprocess with the bench's settings, relaying its progress lines.

It is the same one-file runner (`runner.pyz`, built from the package) a board receives, so local and remote figures
come from identical code. The runner then starts one fresh child per artifact and runtime (PyTorch checkpoints
included, through its torch plugin), so every figure comes from the same procedure and every artifact has its own
peak RSS.
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
PLUGINS = {"torch": "sqnxt_edge.bench.torch_runtime:TorchBackend"}  # the runner's PyTorch baseline


def _plugin_path() -> str:
    """$PYTHONPATH with this package's folder first: the plugins it names are this package's, whatever else is
    installed (the runner itself needs nothing from it)."""
    root = str(Path(__file__).resolve().parents[2])
    return os.pathsep.join([root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])


def run_local(artifacts: list[Path], settings: runner.Settings, progress: Progress | None = None) -> dict:
    """`python runner.pyz SETTINGS --progress ARTIFACTS`; returns its JSON report."""
    cmd = [sys.executable, str(runner_pyz()), *settings.to_argv(), "--progress", *[str(a) for a in artifacts]]
    other: list[str] = []
    with tempfile.TemporaryFile() as out:
        env = {**os.environ, runner.PLUGINS_VAR: json.dumps(PLUGINS), "PYTHONPATH": _plugin_path()}
        # its own process group: when we are stopped, the runner and the measuring child it started go together
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
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

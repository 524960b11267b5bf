"""Measuring on this machine: the runner as a subprocess for exported artifacts, the torch child for checkpoints.

Both go through the runner's `run_child`, so every artifact gets a fresh process and its own peak RSS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

from ..errors import BenchError
from . import runner

Progress = Callable[[str, str | None], None]  # (artifact, error or None) after each one


def runner_args(threads: int | None, batch: int, warmup: int, runs: int, min_seconds: float, runtime: str,
                samples: bool, data_file: Path | None) -> list[str]:
    """The runner's options for one bench (the same list goes to a remote board)."""
    args = ["--batch", str(batch), "--warmup", str(warmup), "--runs", str(runs), "--min-seconds", str(min_seconds),
            "--runtime", runtime]
    if threads:
        args += ["--threads", str(threads)]
    if samples:
        args.append("--samples")
    if data_file:
        args += ["--data", str(data_file)]
    return args


def run_runner(artifacts: list[Path], args: list[str], progress: Progress | None = None,
               timeout: float | None = None) -> dict:
    """Run runner.py over `artifacts` in a subprocess, relaying its per-artifact progress lines."""
    cmd = [sys.executable, runner.__file__, *args, "--progress"]
    if timeout:
        cmd += ["--timeout", str(timeout)]
    cmd += [str(a) for a in artifacts]
    other: list[str] = []
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            try:
                event = json.loads(line)
            except ValueError:
                other.append(line.rstrip())
                continue
            if progress and isinstance(event, dict) and "done" in event:
                progress(event.get("artifact"), event.get("error"))
        proc.wait()
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    try:
        report = json.loads(text)
    except ValueError:
        last = next((ln for ln in reversed(other) if ln.strip()), f"exit code {proc.returncode}")
        raise BenchError(f"the runner failed: {last.strip()[:300]}") from None
    return report


def _torch_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "sqnxt_edge.bench.torch_child", *[str(a) for a in args]]


def run_torch(checkpoints: list[Path], threads: int | None, batch: int, warmup: int, runs: int, min_seconds: float,
              samples: bool, data_file: Path | None, progress: Progress | None = None,
              timeout: float | None = None) -> tuple[dict, list[dict]]:
    """PyTorch eager baseline: (bare-torch baseline, results), one fresh child per checkpoint."""
    threads = threads or runner.default_threads()
    bare, peak = runner.run_child(_torch_cmd("--bare"), timeout)
    bare["peak_rss_mb"] = peak
    results = []
    for ckpt in checkpoints:
        opts = ["--threads", threads, "--batch", batch, "--warmup", warmup, "--runs", runs,
                "--min-seconds", min_seconds] + (["--samples"] if samples else [])
        result, peak = runner.run_child(_torch_cmd(ckpt, *opts), timeout)
        if "error" in result:
            result = {"artifact": str(ckpt), "error": result["error"]}
        else:
            result["peak_rss_mb"] = peak
            base = bare.get("peak_rss_mb")
            result["model_peak_rss_mb"] = peak - base if peak is not None and base is not None else None
            if data_file:
                acc, _ = runner.run_child(_torch_cmd(ckpt, "--threads", threads, "--data", data_file), timeout)
                result = {"artifact": str(ckpt), "error": acc["error"]} if "error" in acc else {**result, **acc}
        results.append(result)
        if progress:
            progress(str(ckpt), result.get("error"))
    return bare, results

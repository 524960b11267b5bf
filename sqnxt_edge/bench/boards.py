"""Several boards at once: `bench --device a --device b` (or a group of devices.toml) measures every board in
parallel, each board's artifacts one after another, and gives one table with a device column.

Each board runs in its own worker process (`python -m sqnxt_edge.bench.boards`, the usual `run_bench` on one
board), so a board that fails or drops its SSH connection costs only its own rows, and stopping the bench stops every
board's run cleanly (the worker's own cleanup: its ssh and the board's temp folder).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from ..errors import BenchError, SqnxtError
from ..interrupts import kill_process_group, stop_on_signals
from ..progress import progress_bar
from .api import BenchRun, BoardUnreachable, run_bench
from .discover import discover_artifacts
from .settings import BenchConfig

__all__ = ["run_boards"]

_PATHS = ("devices_file", "export_dir")


def _job(artifacts: list[str] | None, config: BenchConfig) -> str:
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    return json.dumps({"artifacts": artifacts, "config": cfg})


def _start(name: str, artifacts: list[str] | None, config: BenchConfig, out, err) -> subprocess.Popen:
    """One board's worker: this very package (its folder first on the path) in a fresh process of its own group."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sqnxt_edge.bench.boards"],
        stdin=subprocess.PIPE,
        stdout=out,
        stderr=err,
        env=env,
        start_new_session=True,
    )
    assert proc.stdin is not None
    proc.stdin.write(_job(artifacts, replace(config, device=name)).encode())
    proc.stdin.close()
    return proc


def _outcome(proc: subprocess.Popen, out, err) -> dict[str, Any]:
    out.seek(0)
    err.seek(0)
    text = out.read().decode("utf-8", "replace").strip()
    try:
        return json.loads(text.splitlines()[-1])
    except (ValueError, IndexError):
        lines = [ln for ln in err.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return {"failed": f"its bench process exited with code {proc.returncode}: {(lines or ['no message'])[-1]}"}


def run_boards(
    boards: list[str], artifacts: list[str | Path] | None = None, config: BenchConfig | None = None, progress=True
) -> BenchRun:
    """Measure `artifacts` on every board of `boards` at once; one `BenchRun` whose results carry their `device`.
    A board that cannot be measured gives error rows for its artifacts (and, in `boards`, its labelled estimates)."""
    config = config or BenchConfig()
    config.validate()
    if len(set(boards)) < 2:
        raise BenchError("several boards: name two or more (--device a --device b, or a group)")
    named = [str(a) for a in artifacts] if artifacts else None
    outcomes: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sqnxt-boards-") as tmp, contextlib.ExitStack() as stack:
        files = {
            b: tuple(stack.enter_context(open(Path(tmp) / f"{i}.{kind}", "w+b")) for kind in ("out", "err"))
            for i, b in enumerate(boards)
        }
        procs: dict[str, subprocess.Popen] = {}
        try:
            for board in boards:
                procs[board] = _start(board, named, config, *files[board])
            with progress_bar(f"bench on {len(boards)} boards", total=len(boards), enabled=progress) as advance:
                while len(outcomes) < len(procs):
                    for board, proc in procs.items():
                        if board not in outcomes and proc.poll() is not None:
                            outcomes[board] = _outcome(proc, *files[board])
                            advance(1, board)
                    time.sleep(0.1)
        finally:  # interrupted: each worker's own cleanup runs (SIGTERM), then whatever is left goes
            for proc in procs.values():
                if proc.poll() is None:
                    kill_process_group(proc, grace=15.0)
    return _combine(boards, outcomes, named, config)


def _combine(boards: list[str], outcomes: dict[str, dict], named: list[str] | None, config: BenchConfig) -> BenchRun:
    results, errors, skipped, envs, status = [], [], [], {}, {}
    for board in boards:
        got = outcomes[board]
        if "run" in got:
            run = BenchRun.from_dict(got["run"])
            envs[board] = run.env
            results += [{**r, "device": board} for r in run.results]
            errors += [{**e, "device": board} for e in run.errors]
            skipped += [{**k, "device": board} for k in run.skipped]
            status[board] = {"measured": True, **({"estimates": run.estimates} if run.estimates else {})}
            continue
        why = got.get("unreachable") or got.get("failed") or "unknown failure"
        errors += [{"artifact": a, "device": board, "error": why} for a in _artifacts(named, config)]
        status[board] = {
            "measured": False,
            "error": why,
            **({"estimates": got["estimates"]} if "estimates" in got else {}),
        }
    env = {
        "device": ", ".join(boards),
        "devices": envs,
        "emulated": bool(envs) and all(e.get("emulated") for e in envs.values()),
    }
    cfg = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    from .recommend import recommend

    return BenchRun(
        env=env,
        results=results,
        errors=errors,
        config={**cfg, "device": boards},
        skipped=skipped,
        boards=status,
        recommended=[r.to_dict() for r in recommend(results)],
    )


def _artifacts(named: list[str] | None, config: BenchConfig) -> list[str]:
    """The artifacts a board that could not run was to measure (its error rows)."""
    if named:
        return named
    try:
        return [str(p) for p in discover_artifacts(config.export_dir)]
    except SqnxtError:
        return ["(the newest export)"]


def _worker() -> int:
    """One board's bench (stdin: the job as JSON); prints its outcome as one JSON line."""
    job = json.loads(sys.stdin.read())
    cfg = job["config"]
    values: dict[str, Any] = {k: Path(v) if k in _PATHS and v else v for k, v in cfg.items()}
    config = BenchConfig(**values)
    with stop_on_signals():
        try:
            out: dict[str, Any] = {"run": run_bench(job["artifacts"], config, progress=False).to_dict()}
        except BoardUnreachable as exc:
            out = {"unreachable": str(exc), "estimates": exc.estimates}
        except SqnxtError as exc:
            out = {"failed": str(exc)}
    sys.stdout.write(json.dumps(out, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_worker())

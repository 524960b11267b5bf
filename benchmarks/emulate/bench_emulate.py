"""Emulated Raspberry Pi 4: first set-up from an empty cache, later starts, and `eval --device` of the 360 digits test
images per artifact (wall and CPU seconds, top-1 on the board vs this machine), with the load average around each.

    python benchmarks/emulate/bench_emulate.py --cache /tmp/emu-cache -o benchmarks/emulate/results.json ART...

Every step is the real CLI in a fresh process; CPU seconds are the step's processes' own (user + sys of every child,
QEMU included), which the other jobs on a shared machine do not inflate the way they inflate wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path


def step(name: str, argv: list[str], env: dict) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "sqnxt_edge", *argv], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if res.returncode != 0:
        raise SystemExit(f"{name} failed: {res.stderr.strip()[-500:]}")
    out = {
        "step": name,
        "command": "sqnxt-edge " + " ".join(argv),
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load1_before": round(load, 2),
        "load1_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out), flush=True)
    return {**out, "stdout": res.stdout}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="+", type=Path)
    p.add_argument("--cache", type=Path, required=True, help="an empty (or missing) cache folder: it is deleted first")
    p.add_argument("-o", "--output", type=Path)
    args = p.parse_args()
    shutil.rmtree(args.cache, ignore_errors=True)
    devices = args.cache / "devices.toml"
    env = {**os.environ, "SQNXT_EDGE_CACHE": str(args.cache), "PIP_NO_CACHE_DIR": "1"}  # a true first set-up
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    steps = [
        step(
            "first set-up (empty cache)",
            ["devices", "emulate", "pi", "--profile", "rpi4", "--devices", str(devices)],
            env,
        )
    ]
    steps.append(
        step(
            "second board (cached)", ["devices", "emulate", "pi5", "--profile", "rpi5", "--devices", str(devices)], env
        )
    )
    steps.append(step("devices check", ["devices", "check", "pi", "--devices", str(devices)], env))
    evals = []
    for art in args.artifacts:
        board = step(
            f"eval {art.name} on the emulated Pi 4",
            ["eval", str(art), "--device", "pi", "--devices", str(devices), "--data", "digits", "--json"],
            env,
        )
        here = step(f"eval {art.name} here", ["eval", str(art), "--data", "digits", "--json"], env)
        b, h = json.loads(board.pop("stdout")), json.loads(here.pop("stdout"))
        steps += [board, here]
        evals.append(
            {
                "artifact": art.name,
                "images": b["n"],
                "top1_board": round(b["top1"], 3),
                "top1_here": round(h["top1"], 3),
                "board_runtime": b["runtime"],
                "here_runtime": h["runtime"],
                "board_wall_s": board["wall_s"],
                "board_cpu_s": board["cpu_s"],
                "here_wall_s": here["wall_s"],
                "board_cpu_ms_per_image": round(1000 * board["cpu_s"] / b["n"], 1),
            }
        )
    for s in steps:
        s.pop("stdout", None)
    result = {
        "uptime_at_start": uptime,
        "uptime_at_end": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
        "host": os.uname().machine,
        "cpus": os.cpu_count(),
        "steps": steps,
        "eval": evals,
    }
    text = json.dumps(result, indent=1) + "\n"
    if args.output:
        args.output.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

"""How long `sqnxt-edge demo` takes, as a new user runs it: a fresh process, the default options, wall time from
start to exit, and where the time went (the report's stages and the export's steps).

    python benchmarks/demo/time_demo.py -o benchmarks/demo/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = p.parse_args()
    from sqnxt_edge.artifacts import atomic_write
    from sqnxt_edge.runner import environment

    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            load = [round(v, 2) for v in os.getloadavg()]
            t0 = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "sqnxt_edge", "demo", "-o", f"{tmp}/demo", "--json"],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(done.stderr.strip().splitlines()[-1])
            report = json.loads(done.stdout)
            runs.append(
                {
                    "wall_s": round(wall, 1),
                    "loadavg_before": load,
                    "stages": report.get("stages"),
                    "export_steps": report.get("export_steps"),
                    "summary": report.get("summary"),
                }
            )
            print(
                f"demo: {wall:.1f} s wall; "
                + ", ".join(f"{s['stage']} {s['seconds']:.0f} s" for s in report.get("stages") or []),
                flush=True,
            )
    result = {
        "command": " ".join(["python", *sys.argv]),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "env": environment(),
        "runs": runs,
    }
    atomic_write(args.output, lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Accuracy only: top-1 of each artifact on the digits test split here (x86) and on the emulated Raspberry Pi 4
(Cortex-A72, no dotprod) and Pi 5 (Cortex-A76, dotprod), through the real CLI (`sqnxt-edge eval ART --data digits
[-d BOARD] --json`). Emulated timings are the emulator's, never a board's speed: none are recorded.

    python benchmarks/runtimes/emulated.py ART [ART ...] -o benchmarks/runtimes/emulated.json

The boards are registered in a temporary devices.toml (the emulated user space is cached as usual).
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

BOARDS = {"emu-rpi4": "rpi4", "emu-rpi5": "rpi5"}


def cli(argv: list[str], env: dict) -> dict:
    res = subprocess.run([sys.executable, "-m", "sqnxt_edge", *argv], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": (res.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(res.stdout)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("artifacts", nargs="+", type=Path)
    p.add_argument("-o", "--output", type=Path, default=Path("benchmarks/runtimes/emulated.json"))
    args = p.parse_args()
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "SQNXT_EDGE_DEVICES": str(Path(tmp) / "devices.toml")}
        for name, profile in BOARDS.items():
            made = cli(["devices", "emulate", name, "--profile", profile, "--json"], env)
            if "error" in made:
                raise SystemExit(f"{name}: {made['error']}")
        rows = []
        for art in args.artifacts:
            row: dict = {"artifact": art.name}
            here = cli(["eval", str(art), "--data", "digits", "--json"], env)
            row["x86"] = here.get("top1", here.get("error"))
            for name in BOARDS:
                there = cli(["eval", str(art), "--data", "digits", "-d", name, "--json"], env)
                row[name] = there.get("top1", there.get("error"))
                if isinstance(row[name], float) and isinstance(row["x86"], float):
                    row[f"{name}_minus_x86_pt"] = round(row[name] - row["x86"], 3)
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = {
        "command": "python benchmarks/runtimes/emulated.py " + " ".join(sys.argv[1:]),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started),
        "what": "top-1 (%) on the 360 digits test images; emulated boards give accuracy, never speed",
        "rows": rows,
    }
    args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

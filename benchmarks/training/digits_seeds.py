"""Does the digits default hold for every seed? `sqnxt-edge train` on the embedded digits with the default recipe
(or the options given) for several seeds, each a fresh process: best test top-1 as correct/360, epochs, seconds.

    python benchmarks/training/digits_seeds.py --seeds 0 1 2 -o benchmarks/training/digits_seeds.json
    python benchmarks/training/digits_seeds.py --seeds 0 1 2 -- --batch-size 32 --epochs 4   # a recipe variant
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
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("digits_seeds.json"))
    p.add_argument("extra", nargs="*", help="more `sqnxt-edge train` options, after --")
    args = p.parse_args()
    from sqnxt_edge.artifacts import atomic_write
    from sqnxt_edge.runner import environment

    rows = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as tmp:
            load = [round(v, 2) for v in os.getloadavg()]
            cmd = [
                sys.executable,
                "-m",
                "sqnxt_edge",
                "train",
                "--model",
                args.model,
                "--data",
                "digits",
                "--seed",
                str(seed),
                "--out",
                f"{tmp}/run",
                "--json",
                *args.extra,
            ]
            t0 = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode:
                raise SystemExit(done.stderr.strip().splitlines()[-1])
            res = json.loads(done.stdout)
            history = [json.loads(line) for line in Path(tmp, "run", "metrics.jsonl").read_text().splitlines()]
        correct = round(res["best_top1"] * 360 / 100)
        rows.append(
            {
                "seed": seed,
                "best_top1": res["best_top1"],
                "correct_of_360": correct,
                "best_epoch": res["best_epoch"],
                "epochs": len(history),
                "wall_s": round(wall, 1),
                "images_per_s": [h["images_per_s"] for h in history],
                "loadavg_before": load,
            }
        )
        print(
            f"seed {seed}: {correct}/360 ({res['best_top1']:.2f}%) at epoch {res['best_epoch']}/{len(history)}, "
            f"{wall:.0f} s",
            flush=True,
        )
    result = {
        "command": " ".join(["python", *sys.argv]),
        "extra_options": args.extra,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "env": environment(),
        "rows": rows,
        "min_correct": min(r["correct_of_360"] for r in rows),
    }
    atomic_write(args.output, lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))


if __name__ == "__main__":
    main()

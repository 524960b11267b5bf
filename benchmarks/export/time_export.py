"""How long exporting every format takes: `sqnxt-edge export CKPT --format onnx,tflite --int8` for 1.0-SqNxt-23 at
227 px (1000 classes, random weights with BN statistics from random batches, int8 calibrated on digits resized, every
no parity check: random weights give near-ties that int8 flips, so `--no-verify`; the demo's figures include it), as a
fresh process, wall time from start to exit; with the TFLite conversions in background processes (the default) and
in-process (SQNXT_EDGE_TFLITE_JOBS=0), interleaved rounds, medians; each run's steps from its --json output.

    python benchmarks/export/time_export.py --rounds 2 -o benchmarks/export/results.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("--input-size", type=int, default=227)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--modes", nargs="+", default=["background", "in-process"])
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = p.parse_args()
    import torch

    from sqnxt_edge.artifacts import atomic_write
    from sqnxt_edge.checkpoint import Checkpoint, save_checkpoint
    from sqnxt_edge.models import create_model
    from sqnxt_edge.runner import environment

    load_before, runs = [round(v, 2) for v in os.getloadavg()], {m: [] for m in args.modes}
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = create_model(args.model, 1000, args.input_size).train()
        with torch.no_grad():  # BN statistics from random batches: activations (and logits) at a trained model's scale
            for _ in range(2):
                model(torch.randn(8, 3, args.input_size, args.input_size))
        model.eval()
        ckpt = save_checkpoint(
            Checkpoint(args.model, 1000, args.input_size, stem=model.stem_kind, state_dict=model.state_dict()),
            Path(tmp) / "m.pt",
        )
        for r in range(args.rounds):
            for mode in args.modes if r % 2 == 0 else args.modes[::-1]:
                env = {**os.environ, "SQNXT_EDGE_TFLITE_JOBS": "1" if mode == "background" else "0"}
                out = Path(tmp) / f"{mode}-{r}"
                t0 = time.perf_counter()
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "sqnxt_edge",
                        "export",
                        str(ckpt),
                        "--format",
                        "onnx,tflite",
                        "--int8",
                        "--calib-data",
                        "digits",
                        "--no-verify",
                        "-o",
                        str(out),
                        "--json",
                    ],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                wall = time.perf_counter() - t0
                if done.returncode:
                    raise SystemExit(done.stderr.strip().splitlines()[-1])
                report = json.loads(done.stdout)
                runs[mode].append(
                    {"wall_s": round(wall, 1), "artifacts": sorted(report["artifacts"]), "steps": report["timings"]}
                )
                print(f"{mode}: {wall:.1f} s", flush=True)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": args.model,
        "input_size": args.input_size,
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg_before": load_before,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "env": environment(),
        "median_wall_s": {m: statistics.median(r["wall_s"] for r in v) for m, v in runs.items()},
        "runs": runs,
    }
    atomic_write(args.output, lambda t: t.write_text(json.dumps(result, indent=2) + "\n"))
    print(result["median_wall_s"])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""What portability costs in speed here: fp32 vs the portable int8 default (`export --int8`) vs the file made for this
machine's CPU class only (`--int8-target here`), onnxruntime, batch 1, 1 and 2 threads, interleaved rounds, medians.

    python benchmarks/int8/portable.py --sizes 32 64 227 -o benchmarks/int8/portable.json

Random weights with BN statistics from random batches (latency does not depend on the values; `configs.py` does the
same); calibrated on 64 digits images resized to the input. Run it on an otherwise idle machine: it records the load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.data import load_dataset, resize_uint8
from sqnxt_edge.quantize import class_of, default_int8_config, quantize_onnx
from sqnxt_edge.quantize.latency import interleaved_latency
from sqnxt_edge.runner import environment, open_model

sys.path.insert(0, str(Path(__file__).parent))
from configs import fp32_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="1.0-SqNxt-23")
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 227])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("-o", "--output", default="benchmarks/int8/portable.json")
    args = ap.parse_args()
    env = environment()
    here = class_of(env).name
    configs = {"portable": default_int8_config(), here: default_int8_config(here)}
    rows, started, load_before = [], time.time(), env["loadavg"]
    digits = load_dataset("digits", "train").images[:64]
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            fp32 = fp32_model(args.model, size, folder)
            calib = resize_uint8(digits, size)
            files = {"fp32": fp32} | {
                name: quantize_onnx(fp32, folder / f"{name}.onnx", calib, cfg) for name, cfg in configs.items()
            }
            x = np.random.default_rng(0).integers(0, 256, (1, size, size, 3), dtype=np.uint8)
            for threads in args.threads:
                models = {name: open_model(str(p), threads=threads) for name, p in files.items()}
                times = interleaved_latency(
                    models, {k: m.prepare(x) for k, m in models.items()}, args.rounds, args.reps
                )
                base = times["fp32"].p50
                row = {"model": args.model, "size": size, "threads": threads, "fp32_ms": round(base, 4)}
                for name, cfg in configs.items():
                    row[name] = {
                        "config": cfg.label,
                        "ms": round(times[name].p50, 4),
                        "speedup": round(base / times[name].p50, 3),
                    }
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {
        "command": "python benchmarks/int8/portable.py " + " ".join(sys.argv[1:]),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started),
        "machine": {k: env.get(k) for k in ("model", "arch", "cores", "features")},
        "cpu_class": here,
        "loadavg_before": load_before,
        "loadavg_after": environment()["loadavg"],
        "onnxruntime": onnxruntime.__version__,
        "rounds": args.rounds,
        "reps": args.reps,
        "rows": rows,
    }
    atomic_write(args.output, lambda p: p.write_text(json.dumps(out, indent=1) + "\n"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

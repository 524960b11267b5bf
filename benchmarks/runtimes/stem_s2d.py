#!/usr/bin/env python3
"""Does the space-to-depth stem pay? fp32 and the portable int8 default, each with the stem as trained and rewritten
(`sqnxt_edge.quantize.stem_s2d`: pad + SpaceToDepth + a stride-1 conv over 12 channels, exactly equivalent),
onnxruntime, batch 1, 1 and 2 threads, interleaved rounds, medians; plus the largest output difference.

    python benchmarks/runtimes/stem_s2d.py -o benchmarks/runtimes/stem_s2d.json

Random weights with BN statistics from random batches (`benchmarks/int8/configs.py`), calibrated on 64 digits images
resized to the input. Run it on an otherwise idle machine: it records the load.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.data import load_dataset, resize_uint8
from sqnxt_edge.quantize import Int8Session, default_int8_config
from sqnxt_edge.quantize.latency import interleaved_latency
from sqnxt_edge.quantize.stem_s2d import space_to_depth_stem
from sqnxt_edge.runner import environment, open_model

sys.path.insert(0, str(Path(__file__).parents[1] / "int8"))
from configs import fp32_model


def _s2d_copy(fp32: Path, dest: Path) -> tuple[Path, str]:
    model = onnx.load(str(fp32))
    what = space_to_depth_stem(model)
    onnx.save(model, str(dest))
    Path(str(dest) + ".meta.json").write_text(Path(str(fp32) + ".meta.json").read_text())
    return dest, what or "not applicable"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["1.0-SqNxt-23", "squeezenet1_1"])
    ap.add_argument("--size", type=int, default=227)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("-o", "--output", default="benchmarks/runtimes/stem_s2d.json")
    args = ap.parse_args()
    env, started = environment(), time.time()
    load_before = env["loadavg"]
    calib = resize_uint8(load_dataset("digits", "train").images[:64], args.size)
    x = np.random.default_rng(0).integers(0, 256, (1, args.size, args.size, 3), dtype=np.uint8)
    int8 = default_int8_config()
    rows = []
    for name in args.models:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            fp32 = fp32_model(name, args.size, folder)
            fp32_s2d, what = _s2d_copy(fp32, folder / "fp32-s2d.onnx")
            with Int8Session(fp32, calib) as session:
                files = {
                    "fp32": fp32,
                    "fp32 s2d": fp32_s2d,
                    "int8": session.quantize(int8, folder / "int8.onnx"),
                    "int8 s2d": session.quantize(int8.with_(s2d_stem=True), folder / "int8-s2d.onnx"),
                }
            for threads in args.threads:
                models = {k: open_model(str(p), threads=threads) for k, p in files.items()}
                inputs = {k: m.prepare(x) for k, m in models.items()}
                outs = {k: np.asarray(m.run(inputs[k]), np.float32) for k, m in models.items()}
                times = interleaved_latency(models, inputs, args.rounds, args.reps)
                row = {"model": name, "size": args.size, "threads": threads, "rewrite": what}
                for k in files:
                    row[k] = {"ms": round(times[k].p50, 4)}
                for prec in ("fp32", "int8"):
                    row[f"{prec} s2d"]["speedup"] = round(times[prec].p50 / times[f"{prec} s2d"].p50, 3)
                    row[f"{prec} s2d"]["max_abs_diff"] = float(np.abs(outs[prec] - outs[f"{prec} s2d"]).max())
                    row[f"{prec} s2d"]["same_top1"] = bool(outs[prec].argmax() == outs[f"{prec} s2d"].argmax())
                rows.append(row)
                print(json.dumps(row), flush=True)
    out = {
        "command": "python benchmarks/runtimes/stem_s2d.py " + " ".join(sys.argv[1:]),
        "when_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "seconds": round(time.time() - started),
        "machine": {k: env.get(k) for k in ("model", "arch", "cores", "features")},
        "loadavg_before": load_before,
        "loadavg_after": environment()["loadavg"],
        "onnxruntime": onnxruntime.__version__,
        "int8": int8.label,
        "rounds": args.rounds,
        "reps": args.reps,
        "rows": rows,
    }
    atomic_write(args.output, lambda p: p.write_text(json.dumps(out, indent=1) + "\n"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""int8 vs fp32 ONNX latency: batch 1, one onnxruntime thread, median of many runs, fp32/int8 interleaved.

    python benchmarks/int8/bench_int8.py [--rounds 40] [--reps 10] [--models 1.0-SqNxt-23 2.0-SqNxt-23] [--sizes 32 227]

For each model and input size: a random-weight model (latency does not depend on the weights' values) is exported to
fp32 ONNX (legacy exporter, BN folded by ORT's pre-processing), calibrated on 64 real digits images resized to the
input, and quantized with this machine's default config (`default_int8_config()`) and with QDQ S8S8 for contrast
(onnxruntime's own default activation type). The three models are timed in alternating rounds
(`sqnxt_edge.quantize.latency.interleaved_latency`) so load from other processes hits them alike.
Writes benchmarks/int8/results.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent


def export_fp32(model_name: str, size: int, num_classes: int, out: Path) -> Path:
    import warnings

    import onnx

    from sqnxt_edge.models import create_model

    torch.manual_seed(0)
    model = create_model(model_name, num_classes, size, 3).eval()
    x = torch.zeros(1, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (x,), str(out), input_names=["input"], output_names=["logits"], dynamo=False, opset_version=17
        )
    proto = onnx.load(str(out))
    meta = {
        "model_name": model_name,
        "input_size": size,
        "in_channels": 3,
        "layout": "NCHW",
        "precision": "fp32",
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
    }
    for key, value in meta.items():
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, str(out))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["1.0-SqNxt-23", "2.0-SqNxt-23"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[32, 227])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--reps", type=int, default=10)
    parser.add_argument("--out", type=Path, default=HERE / "results.json")
    args = parser.parse_args()

    import onnxruntime as ort

    from sqnxt_edge.data import load_dataset, resize_uint8
    from sqnxt_edge.quantize import default_int8_config, quantize_onnx
    from sqnxt_edge.quantize.latency import interleaved_latency
    from sqnxt_edge.runner import cpu_info, open_model

    cpu = cpu_info()
    default = default_int8_config(cpu)
    contrast = default.with_(activation_type="int8", reduce_range=False)
    digits = load_dataset("digits", "train").sample(64, seed=0).images
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        for name in args.models:
            for size in args.sizes:
                classes = 10 if size <= 64 else 1000
                fp32 = export_fp32(name, size, classes, Path(tmp) / f"{name}-{size}.fp32.onnx")
                calib = resize_uint8(digits, size)
                files = {"fp32": fp32}
                for key, cfg in (("int8", default), ("s8s8", contrast)):
                    files[key] = quantize_onnx(fp32, Path(tmp) / f"{name}-{size}.{key}.onnx", calib, cfg)
                models = {k: open_model(str(p), threads=1) for k, p in files.items()}
                image = calib[:1]
                inputs = {k: m.prepare(image) for k, m in models.items()}
                t0 = time.time()
                samples = interleaved_latency(models, inputs, rounds=args.rounds, reps=args.reps, warmup=10)
                row = {
                    "model": name,
                    "input_size": size,
                    "num_classes": classes,
                    "fp32_ms": round(samples["fp32"].p50, 4),
                    "int8_ms": round(samples["int8"].p50, 4),
                    "s8s8_ms": round(samples["s8s8"].p50, 4),
                    "fp32_p90_ms": round(samples["fp32"].p90, 4),
                    "int8_p90_ms": round(samples["int8"].p90, 4),
                    "s8s8_p90_ms": round(samples["s8s8"].p90, 4),
                    "runs_each": len(samples["fp32"].ms),
                    "fp32_bytes": fp32.stat().st_size,
                    "int8_bytes": files["int8"].stat().st_size,
                    "seconds": round(time.time() - t0, 1),
                }
                row["speedup_int8"] = round(row["fp32_ms"] / row["int8_ms"], 3)
                row["speedup_s8s8"] = round(row["fp32_ms"] / row["s8s8_ms"], 3)
                rows.append(row)
                print(
                    f"{name} @{size}: fp32 {row['fp32_ms']:.3f} ms, int8 {row['int8_ms']:.3f} ms "
                    f"({row['speedup_int8']:.2f}x), S8S8 {row['s8s8_ms']:.3f} ms",
                    file=sys.stderr,
                )
    result = {
        "command": "python benchmarks/int8/bench_int8.py " + " ".join(sys.argv[1:]),
        "settings": {
            "batch": 1,
            "intra_op_threads": 1,
            "inter_op_threads": 1,
            "rounds": args.rounds,
            "reps_per_round": args.reps,
            "interleaved": True,
            "statistic": "median",
            "int8_default": default.label,
            "int8_contrast": contrast.label,
            "calibration": "64 digits images",
        },
        "machine": {
            **cpu,
            "onnxruntime": ort.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "platform": platform.platform(),
        },
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "rows": rows,
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"| model | input | fp32 ms | int8 ({default.label}) ms | speed-up | {contrast.label} ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['input_size']} | {r['fp32_ms']:.3f} | {r['int8_ms']:.3f} | "
            f"{r['speedup_int8']:.2f}x | {r['s8s8_ms']:.3f} | {r['speedup_s8s8']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Which int8 configuration is fastest here: every candidate the per-CPU choice probes (and a few more), timed against
fp32 in onnxruntime and OpenVINO, 1 thread, batch 1, interleaved rounds, medians.

    python benchmarks/int8/configs.py --sizes 32 64 227 -o benchmarks/int8/configs.json

Random weights with BN statistics from random batches (latency does not depend on the values); calibrated on 64
digits images resized to the input. The probe size the package uses (`export.onnx_export.PROBE`) is one of the rows,
so the table shows whether the probe ranks the candidates the way the 227 px model does.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.data import load_dataset, resize_uint8
from sqnxt_edge.export.onnx_export import export_onnx, save_onnx, simplify_onnx
from sqnxt_edge.models import create_model
from sqnxt_edge.quantize import Int8Config, quantize_onnx
from sqnxt_edge.quantize.latency import interleaved_latency
from sqnxt_edge.runner import environment, installed, open_model

CONFIGS = [
    Int8Config(a, "int8", f, per_channel=pc)
    for a in ("uint8", "int8")
    for f in ("qdq", "qoperator")
    for pc in (True, False)
]


def fp32_model(name: str, size: int, folder: Path) -> Path:
    torch.manual_seed(0)
    model = create_model(name, 10 if size <= 64 else 1000, size).train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.randn(8, 3, size, size))
    path = save_onnx(simplify_onnx(export_onnx(model.eval(), size, 3, 17, 1), dynamic=False), folder / "fp32.onnx")
    meta = {
        "input_size": size,
        "in_channels": 3,
        "layout": "NCHW",
        "mean": [0.5] * 3,
        "std": [0.5] * 3,
        "precision": "fp32",
    }
    Path(str(path) + ".meta.json").write_text(json.dumps(meta))
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 227])
    p.add_argument("--rounds", type=int, default=12)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("configs.json"))
    args = p.parse_args()
    load_before = [round(v, 2) for v in os.getloadavg()]
    digits = load_dataset("digits", "train").sample(64, seed=0).images
    rows = []
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            fp32 = fp32_model(args.model, size, folder)
            calib = resize_uint8(digits, size)
            files = {"fp32": fp32}
            for i, cfg in enumerate(CONFIGS):
                files[cfg.label] = quantize_onnx(fp32, folder / f"q{i}.onnx", calib, cfg)
            models = {f"ort {k}": open_model(str(v), "onnxruntime", 1) for k, v in files.items()}
            if installed("openvino"):
                for k in ("fp32", "QDQ U8S8 per-channel", "QDQ S8S8 per-channel"):
                    models[f"openvino {k}"] = open_model(str(files[k]), "openvino", 1)
            x = calib[:1]
            times = interleaved_latency(
                models, {k: m.prepare(x) for k, m in models.items()}, rounds=args.rounds, reps=args.reps, warmup=10
            )
            base = times["ort fp32"].p50
            for key, t in times.items():
                rows.append(
                    {
                        "input_size": size,
                        "config": key,
                        "p50_ms": round(t.p50, 4),
                        "vs_ort_fp32": round(base / t.p50, 3),
                    }
                )
                print(f"{size:>4} px  {key:42s} {t.p50:8.3f} ms  {base / t.p50:5.2f}x", flush=True)
    result = {
        "command": "python " + " ".join(sys.argv),
        "model": args.model,
        "threads": 1,
        "batch": 1,
        "rounds": args.rounds,
        "reps": args.reps,
        "loadavg_before": load_before,
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "env": environment(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    atomic_write(args.output, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))


if __name__ == "__main__":
    main()

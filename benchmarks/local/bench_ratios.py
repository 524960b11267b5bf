#!/usr/bin/env python3
"""PyTorch eager : ONNX fp32 : ONNX int8 latency (p50, batch 1) for 1.0-SqNxt-23 at 32 px and 227 px.

    python benchmarks/local/bench_ratios.py            # writes benchmarks/local/results.json and results.md

Each configuration is measured with `sqnxt_edge.bench.run_bench` (fresh process per artifact, the runner's timing),
repeated --repeats times; the recorded p50 is the median of the repeats' p50s and `spread_pct` their range. Weights
are seeded random (10 classes, digits normalization): latency does not depend on the values. int8 comes from
`sqnxt_edge.quantize.quantize_onnx` with this CPU's default Int8Config, calibrated on digits images.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.bench import BenchConfig, run_bench
from sqnxt_edge.checkpoint import Checkpoint, save_checkpoint
from sqnxt_edge.models import create_model
from sqnxt_edge.runner import cpu_info

HERE = Path(__file__).resolve().parent
MODEL = "1.0-SqNxt-23"


def make_artifacts(size: int, folder: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    model = create_model(MODEL, 10, size).eval()
    ckpt = Checkpoint(
        MODEL,
        10,
        size,
        classes=[str(i) for i in range(10)],
        mean=(0.5,) * 3,
        std=(0.5,) * 3,
        dataset="digits",
        state_dict=model.state_dict(),
    )
    pt = save_checkpoint(ckpt, folder / f"sqnxt23_{size}.pt")
    from sqnxt_edge.export import ExportConfig, export

    result = export(pt, ExportConfig(formats=["onnx"], output_dir=folder / f"export_{size}", verify=False))
    fp32 = result.paths()[0]
    from sqnxt_edge.checkpoint import load_checkpoint
    from sqnxt_edge.quantize import calibration_images, default_int8_config, quantize_onnx

    images = calibration_images(load_checkpoint(pt), calib_size=200)
    int8 = quantize_onnx(fp32, folder / f"sqnxt23_{size}_int8.onnx", images, default_int8_config())
    return {"pytorch": pt, "onnx_fp32": fp32, "onnx_int8": Path(int8)}


def measure(arts: dict[str, Path], threads: int, repeats: int, min_seconds: float, runs: int) -> dict:
    p50s: dict[str, list[float]] = {k: [] for k in arts}
    env = None
    for _ in range(repeats):
        run = run_bench(
            list(arts.values()),
            BenchConfig(threads=threads, batch=1, warmup=20, runs=runs, min_seconds=min_seconds),
            progress=False,
        )
        if run.errors:
            sys.exit(f"error: {run.errors}")
        env = run.env
        for key, r in zip(arts, run.results):
            p50s[key].append(r["latency_ms"]["p50"])
    row = {}
    for key, values in p50s.items():
        med = statistics.median(values)
        row[key] = {"p50_ms": med, "repeats_p50_ms": values, "spread_pct": 100 * (max(values) - min(values)) / med}
    base = row["onnx_int8"]["p50_ms"]
    row["ratio"] = {k: row[k]["p50_ms"] / base for k in arts}
    row["loadavg"] = env.get("loadavg")
    return row


def markdown(data: dict) -> str:
    lines = [
        "| input | threads | PyTorch eager p50 ms | ONNX fp32 p50 ms | ONNX int8 p50 ms | ratio eager : fp32 : int8 |"
        " run-to-run spread (eager/fp32/int8) |",
        "|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in data["rows"]:
        ms = [r[k]["p50_ms"] for k in ("pytorch", "onnx_fp32", "onnx_int8")]
        ratio = " : ".join(f"{r['ratio'][k]:.2f}" for k in ("pytorch", "onnx_fp32", "onnx_int8"))
        spread = " / ".join(f"{r[k]['spread_pct']:.0f}%" for k in ("pytorch", "onnx_fp32", "onnx_int8"))
        lines.append(
            f"| {r['input_size']} px | {r['threads']} | {ms[0]:.3f} | {ms[1]:.3f} | {ms[2]:.3f} | {ratio} | {spread} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[32, 227])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--min-seconds", type=float, default=2.0)
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("-o", "--output", type=Path, default=HERE / "results.json")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sqnxt-ratios-") as tmp:
        for size in args.sizes:
            arts = make_artifacts(size, Path(tmp))
            for threads in args.threads:
                row = measure(arts, threads, args.repeats, args.min_seconds, args.runs)
                rows.append({"model": MODEL, "input_size": size, "batch": 1, "threads": threads, **row})
                print(
                    f"{size} px, {threads} thread(s): eager : fp32 : int8 = "
                    + " : ".join(f"{row['ratio'][k]:.2f}" for k in arts),
                    file=sys.stderr,
                )
    data = {
        "command": "python benchmarks/local/bench_ratios.py " + " ".join(sys.argv[1:]),
        "measured_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cpu": cpu_info(),
        "torch": torch.__version__,
        "rows": rows,
    }
    atomic_write(args.output, lambda t: t.write_text(json.dumps(data, indent=2) + "\n"))
    atomic_write(args.output.with_suffix(".md"), lambda t: t.write_text(markdown(data)))
    sys.stdout.write(markdown(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())

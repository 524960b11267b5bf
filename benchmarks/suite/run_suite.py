#!/usr/bin/env python3
"""The project's published numbers, reproduced by one command:

    python benchmarks/suite/run_suite.py            # writes benchmarks/suite/results.json, README.md tables, plots

For 1.0-SqNxt-23, 1.0-SqNxt-23v5, 2.0-SqNxt-23 and SqueezeNet-1.1 at 32 px (10 classes) and 227 px (1000 classes):
PyTorch eager, ONNX fp32, ONNX int8, TFLite fp32 and TFLite int8, measured by `sqnxt-edge bench`'s own harness (each
artifact in a fresh process, batch 1, pinned threads): latency p50/p99, peak memory, size, MACs. In the same run
the machine's matrix-multiply peaks are measured (fp32: the better of torch's GEMM and onnxruntime's MatMul; int8:
onnxruntime's MatMulInteger, u8 x s8),
in short bursts interleaved with the models, the best burst kept; each model's achieved GFLOP/s (2 x MACs / p50) is
reported as a fraction of the peak of its precision, so a loaded moment lowers the peak and the models alike and the
fraction cannot read far above 100%.

Weights are random (Xavier init, BN at its initial statistics): latency, memory and size do not depend on the
values; int8 is calibrated on real images (the embedded digits data, resized). Accuracy is measured elsewhere
(the demo and the export reports), on trained checkpoints.
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

from sqnxt_edge import __version__
from sqnxt_edge.bench import BenchConfig, run_bench
from sqnxt_edge.checkpoint import random_checkpoint, save_checkpoint
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.models import create_model, model_stats
from sqnxt_edge.runner import environment

HERE = Path(__file__).resolve().parent
MODELS = ["1.0-SqNxt-23", "1.0-SqNxt-23v5", "2.0-SqNxt-23", "SqueezeNet-1.1"]
SIZES = {32: 10, 227: 1000}  # input size -> classes


def matmul_peak_gflops(threads: int, n: int = 1536, seconds: float = 1.0) -> float:
    """Best fp32 GEMM rate of one burst at `threads` (torch's BLAS), the practical compute ceiling."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def ort_peak_gflops(threads: int, precision: str, n: int = 1536, seconds: float = 1.0) -> float:
    """Best GEMM rate of one burst in onnxruntime itself (MLAS, what its convs run on): MatMul in fp32, MatMulInteger
    (uint8 x int8 -> int32) for int8."""
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if precision == "int8":
        b = numpy_helper.from_array(rng.integers(-127, 128, (n, n), dtype=np.int8), "B")
        a = rng.integers(0, 256, (n, n), dtype=np.uint8)
        op, types = "MatMulInteger", (TensorProto.UINT8, TensorProto.INT32)
    else:
        b = numpy_helper.from_array(rng.standard_normal((n, n), dtype=np.float32), "B")
        a = rng.standard_normal((n, n), dtype=np.float32)
        op, types = "MatMul", (TensorProto.FLOAT, TensorProto.FLOAT)
    graph = helper.make_graph(
        [helper.make_node(op, ["A", "B"], ["Y"])],
        "peak",
        [helper.make_tensor_value_info("A", types[0], [n, n])],
        [helper.make_tensor_value_info("Y", types[1], [n, n])],
        [b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    sess.run(None, {"A": a})
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        sess.run(None, {"A": a})
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


class Peaks:
    """Peak bursts taken between the models; the best of all of them is the ceiling."""

    def __init__(self, threads: int):
        self.threads, self.fp32, self.int8 = threads, [], []

    def sample(self) -> None:  # fp32: the better of torch's and onnxruntime's GEMM
        self.fp32 += [round(matmul_peak_gflops(self.threads), 2), round(ort_peak_gflops(self.threads, "fp32"), 2)]
        self.int8.append(round(ort_peak_gflops(self.threads, "int8"), 2))

    def best(self, precision: str) -> float:
        return max(self.int8 if precision == "int8" else self.fp32)


def make_checkpoint(name: str, size: int, classes: int, folder: Path) -> Path:
    return save_checkpoint(random_checkpoint(name, classes, size), folder / f"{name}-{size}.pt")


def run(args) -> dict:
    formats = ["onnx"] + ([] if args.no_tflite else ["tflite"])
    peaks = Peaks(args.threads)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sqnxt-suite-") as tmp:
        tmp = Path(tmp)
        for size, classes in SIZES.items():
            for name in args.models:
                peaks.sample()
                print(
                    f"peak bursts so far: fp32 {peaks.best('fp32'):.1f} GFLOP/s, int8 {peaks.best('int8'):.1f} GOP/s",
                    file=sys.stderr,
                )
                macs = model_stats(create_model(name, classes, size), size).macs
                ckpt = make_checkpoint(name, size, classes, tmp)
                print(f"== {name} @ {size}px: export {'+'.join(formats)} fp32+int8", file=sys.stderr)
                # parity is checked on trained checkpoints (tests, demo); random weights give logits in the
                # hundreds, where float32 summation order alone moves them by more than the 1e-4 fp32 tolerance
                exported = export(
                    ckpt,
                    ExportConfig(
                        formats=formats,
                        int8=True,
                        calib_data="digits",
                        verify=False,
                        calib_size=args.calib_size,
                        output_dir=tmp / f"{name}-{size}",
                    ),
                )
                artifacts = [*exported.paths(), ckpt]
                bench = run_bench(
                    artifacts,
                    BenchConfig(
                        threads=args.threads, batch=1, warmup=args.warmup, runs=args.runs, min_seconds=args.min_seconds
                    ),
                    progress=False,
                )
                for e in bench.errors:
                    print(f"error: {Path(e['artifact']).name}: {e['error']}", file=sys.stderr)
                for r in bench.results:
                    lat = r["latency_ms"]
                    gflops = 2 * macs / (lat["p50"] / 1e3) / 1e9
                    rows.append(
                        {
                            "model": name,
                            "input_size": size,
                            "num_classes": classes,
                            "macs": macs,
                            "format": r["format"],
                            "precision": r["precision"],
                            "runtime": r["runtime"],
                            "size_bytes": r["size_bytes"],
                            "p50_ms": lat["p50"],
                            "p99_ms": lat["p99"],
                            "mean_ms": lat["mean"],
                            "std_ms": lat["std"],
                            "runs": r.get("runs"),
                            "peak_rss_mb": r.get("peak_rss_mb"),
                            "model_peak_rss_mb": r.get("model_peak_rss_mb"),
                            "achieved_gflops": gflops,
                        }
                    )
                    print(
                        f"   {r['format']:8s} {r['precision']:5s} p50 {lat['p50']:8.3f} ms  {gflops:6.1f} GFLOP/s",
                        file=sys.stderr,
                    )
    peaks.sample()
    for r in rows:  # against the best burst of the whole run, of the row's precision
        r["fraction_of_peak"] = r["achieved_gflops"] / peaks.best(r["precision"])
    return {
        "toolkit_version": __version__,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/suite/run_suite.py " + " ".join(sys.argv[1:]),
        "threads": args.threads,
        "batch": 1,
        "matmul_peak_gflops": peaks.best("fp32"),
        "int8_matmul_peak_gops": peaks.best("int8"),
        "peak_bursts": {"fp32": peaks.fp32, "int8": peaks.int8},
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "env": environment(),
        "rows": rows,
    }


LABEL = {
    ("pytorch", "fp32"): "PyTorch eager",
    ("onnx", "fp32"): "ONNX fp32",
    ("onnx", "int8"): "ONNX int8",
    ("tflite", "fp32"): "TFLite fp32",
    ("tflite", "int8"): "TFLite int8",
}


def markdown(results: dict) -> str:
    lines = []
    for size in SIZES:
        lines += [
            f"### {size}x{size} input, batch 1, {results['threads']} thread(s)",
            "",
            f"% of peak: fp32 rows against {results['matmul_peak_gflops']:.1f} GFLOP/s (fp32 GEMM), int8 rows "
            f"against {results['int8_matmul_peak_gops']:.1f} GOP/s (onnxruntime MatMulInteger), best bursts of "
            "this run.",
            "",
            "| model | MMACs | runtime | p50 ms | p99 ms | peak MB (model) | size MB | GFLOP/s | % of peak |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in (r for r in results["rows"] if r["input_size"] == size):
            model_mb = r["model_peak_rss_mb"]
            lines.append(
                f"| {r['model']} | {r['macs'] / 1e6:.1f} | {LABEL.get((r['format'], r['precision']), r['format'])}"
                f"{' (OpenVINO)' if r['runtime'] == 'openvino' else ''} | "
                f"{r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['peak_rss_mb']:.0f}"
                f"{f' ({model_mb:+.0f})' if model_mb is not None else ''} | {r['size_bytes'] / 2**20:.2f} | "
                f"{r['achieved_gflops']:.1f} | {100 * r['fraction_of_peak']:.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plots(results: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    for ax, size in zip(axes, SIZES):
        for key, label in LABEL.items():
            pts = [r for r in rows if r["input_size"] == size and (r["format"], r["precision"]) == key]
            if pts:
                ax.plot([r["macs"] / 1e6 for r in pts], [r["p50_ms"] for r in pts], "o", label=label)
        for r in rows:
            if r["input_size"] == size and r["format"] == "onnx" and r["precision"] == "fp32":
                ax.annotate(
                    r["model"], (r["macs"] / 1e6, r["p50_ms"]), fontsize=7, xytext=(4, -8), textcoords="offset points"
                )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("MMACs")
        ax.set_ylabel("p50 latency (ms)")
        ax.set_title(f"latency vs MACs at {size}px, batch 1, {results['threads']} thread(s)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
    axes[0].legend(fontsize=7)
    fig.savefig(HERE / "latency_vs_macs.png", dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.0), layout="constrained")
    for ax, size in zip(axes, SIZES):
        labels = [
            label
            for key, label in LABEL.items()
            if any((r["format"], r["precision"]) == key and r["input_size"] == size for r in rows)
        ]
        keys = [k for k, v in LABEL.items() if v in labels]
        for i, name in enumerate(("1.0-SqNxt-23", "1.0-SqNxt-23v5")):
            vals = [
                next(
                    (
                        r["p50_ms"]
                        for r in rows
                        if r["model"] == name and r["input_size"] == size and (r["format"], r["precision"]) == k
                    ),
                    0,
                )
                for k in keys
            ]
            ax.bar([j + 0.4 * i for j in range(len(keys))], vals, width=0.4, label=name)
        ax.set_xticks([j + 0.2 for j in range(len(keys))], labels, fontsize=8, rotation=15)
        ax.set_ylabel("p50 latency (ms)")
        ax.set_title(f"v1 vs v5 at {size}px", fontsize=9)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    fig.savefig(HERE / "v1_vs_v5.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--min-seconds", type=float, default=2.0)
    parser.add_argument("--calib-size", type=int, default=200)
    parser.add_argument("--no-tflite", action="store_true")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "results.json")
    args = parser.parse_args()
    results = run(args)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (HERE / "tables.md").write_text(markdown(results), encoding="utf-8")
    plots(results)
    print(markdown(results))


if __name__ == "__main__":
    main()

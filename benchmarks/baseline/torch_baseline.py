"""Is the bench's PyTorch row honest? `sqnxt-edge bench` on a checkpoint against a plain `torch.inference_mode()`
loop in a fresh process, same model, threads and batch; interleaved rounds, medians, the ratio per round.

    python benchmarks/baseline/torch_baseline.py --rounds 5 -o benchmarks/baseline/results.json
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

import torch

from sqnxt_edge.artifacts import atomic_write
from sqnxt_edge.bench import BenchConfig, run_bench
from sqnxt_edge.checkpoint import Checkpoint, save_checkpoint
from sqnxt_edge.models import create_model
from sqnxt_edge.runner import environment

PLAIN = r"""
import sys, time, statistics, torch
from sqnxt_edge.checkpoint import load_checkpoint
threads, runs, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
torch.set_num_threads(threads)
ckpt = load_checkpoint(path)
model = ckpt.build_model().eval()
x = torch.randn(1, 3, ckpt.input_size, ckpt.input_size)
with torch.inference_mode():
    for _ in range(10):
        model(x)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        model(x)
        times.append((time.perf_counter_ns() - t0) / 1e6)
print(statistics.median(times))
"""


def plain_p50(ckpt: Path, threads: int, runs: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PLAIN, str(threads), str(runs), str(ckpt)],
        capture_output=True,
        text=True,
        check=True,
        env={k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"},
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_p50(ckpt: Path, threads: int, runs: int) -> float:
    run = run_bench(
        [ckpt], BenchConfig(runtime="torch", threads=threads, runs=runs, min_seconds=0, warmup=10), progress=False
    )
    if not run.ok:
        raise SystemExit(run.errors)
    return run.results[0]["latency_ms"]["p50"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="1.0-SqNxt-23")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=300)
    p.add_argument("-o", "--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = p.parse_args()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        model = create_model(args.model, 10, args.input_size).eval()
        ckpt = save_checkpoint(
            Checkpoint(args.model, 10, args.input_size, mean=(0.5,) * 3, std=(0.5,) * 3, state_dict=model.state_dict()),
            Path(tmp) / "m.pt",
        )
        rows = []
        for threads in args.threads:
            bench, plain = [], []
            for r in range(args.rounds):  # alternate which goes first, so drift hits both alike
                pair = [("bench", bench_p50), ("plain", plain_p50)][:: 1 if r % 2 == 0 else -1]
                for name, fn in pair:
                    (bench if name == "bench" else plain).append(fn(ckpt, threads, args.runs))
            ratios = [b / q for b, q in zip(bench, plain)]
            rows.append(
                {
                    "threads": threads,
                    "bench_p50_ms": bench,
                    "plain_p50_ms": plain,
                    "ratio_per_round": ratios,
                    "median_ratio": statistics.median(ratios),
                    "bench_median_ms": statistics.median(bench),
                    "plain_median_ms": statistics.median(plain),
                }
            )
            print(
                f"threads {threads}: bench {statistics.median(bench):.3f} ms, plain loop "
                f"{statistics.median(plain):.3f} ms, ratio {statistics.median(ratios):.3f}"
            )
    result = {
        "command": " ".join(["python", *sys.argv]),
        "model": args.model,
        "input_size": args.input_size,
        "batch": 1,
        "loadavg_before": [round(v, 2) for v in load_before],
        "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "env": environment(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rows": rows,
    }
    atomic_write(args.output, lambda tmp: tmp.write_text(json.dumps(result, indent=2) + "\n"))


if __name__ == "__main__":
    main()

"""The PyTorch eager baseline, measured exactly like an exported artifact.

`python -m sqnxt_edge.bench.torch_child CKPT [--threads N --batch N --warmup N --runs N --min-seconds S --samples]`
prints one JSON result; `--data FILE.npz` prints top-1/top-5 instead; `--bare` only imports what a measurement
imports (the memory baseline). Timing, statistics and the child protocol are the runner's own functions, so the
baseline and the artifacts differ only in what runs inside the timed call.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .runner import (RunnerError, _child_main, default_threads, describe, latency_fields, load_data, time_runs,
                     topk_accuracy)


def _load(path: str, threads: int):
    import torch

    from ..checkpoint import load_checkpoint
    from ..errors import SqnxtError

    torch.set_num_threads(threads)
    try:
        ckpt = load_checkpoint(path)
        return ckpt, ckpt.build_model()
    except SqnxtError as exc:
        raise RunnerError(str(exc)) from None


def measure_checkpoint(path: str, threads: int | None = None, batch: int = 1, warmup: int = 10, runs: int = 100,
                       min_seconds: float = 1.0, keep_samples: bool = False) -> dict:
    import torch

    from ..data import preprocess

    threads = threads or default_threads()
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise RunnerError(f"cannot read {path}: {exc.strerror or exc}") from None
    t0 = time.perf_counter_ns()
    ckpt, model = _load(path, threads)
    init_ms = (time.perf_counter_ns() - t0) / 1e6
    s = ckpt.input_size
    images = np.random.default_rng(0).integers(0, 256, size=(batch, s, s, ckpt.in_channels), dtype=np.uint8)
    x = preprocess(images, s, ckpt.mean, ckpt.std)
    with torch.inference_mode():
        first_ms, samples = time_runs(lambda: model(x), warmup=warmup, runs=runs, min_seconds=min_seconds)
    result = describe(path)
    result.update(precision="fp32", runtime="torch", runtime_version=torch.__version__, threads=threads, batch=batch,
                  input_size=s, size_bytes=size, init_ms=init_ms, warmup=warmup, pid=os.getpid())
    result.update(latency_fields(first_ms, samples, batch, keep_samples))
    return result


def checkpoint_accuracy(path: str, data: str, threads: int | None = None) -> dict:
    """top-1/top-5 through the same npz images and the package's own preprocessing."""
    import torch

    from ..data import preprocess

    ckpt, model = _load(path, threads or default_threads())
    images, labels = load_data(data, ckpt.input_size)
    outs = []
    with torch.inference_mode():
        for i in range(0, len(images), 64):
            outs.append(model(preprocess(images[i:i + 64], ckpt.input_size, ckpt.mean, ckpt.std)).float().numpy())
    return topk_accuracy(np.concatenate(outs), labels)


def _bare() -> dict:
    import torch

    from .. import checkpoint, data  # noqa: F401  (what a measurement imports, nothing built)

    return {"runtime": "torch", "runtime_version": torch.__version__}


def main(argv: list | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sqnxt_edge.bench.torch_child")
    p.add_argument("checkpoint", nargs="?")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--runs", type=int, default=100)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--samples", action="store_true")
    p.add_argument("--data", default=None)
    p.add_argument("--bare", action="store_true")
    args = p.parse_args(argv)
    if args.bare:
        return _child_main(_bare)
    if not args.checkpoint:
        p.error("give a CHECKPOINT (or --bare)")
    if args.data:
        return _child_main(lambda: checkpoint_accuracy(args.checkpoint, args.data, args.threads))
    return _child_main(lambda: measure_checkpoint(args.checkpoint, args.threads, args.batch, args.warmup, args.runs,
                                                  args.min_seconds, args.samples))


if __name__ == "__main__":
    sys.exit(main())

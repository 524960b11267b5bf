#!/usr/bin/env python3
"""The cost model's reference factors (what an uncalibrated estimate stands on), fitted on this machine:

    python benchmarks/estimate/fit_reference.py        # writes benchmarks/estimate/reference.json

Profiles 1.0-SqNxt-23, 1.0-G-SqNxt-23 and SqueezeNet-1.1 at 227 px, ONNX fp32 and int8 (the export cache of
run_estimate.py), 1 thread, each --repeats times, and fits one set of factors per precision to all of them jointly
(the G variant brings the grouped kind, SqueezeNet the 3x3 kind SqueezeNext lacks). `sqnxt_edge/profiling/costmodel.py`
REFERENCE holds these values; a test checks they agree.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_estimate import export_all  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["1.0-SqNxt-23", "1.0-G-SqNxt-23", "SqueezeNet-1.1"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--size", type=int, default=227)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "sqnxt-estimate-exports"))
    args = parser.parse_args()

    from sqnxt_edge.profiling import profile
    from sqnxt_edge.profiling.costmodel import fit
    from sqnxt_edge.profiling.estimate import hardware_for
    from sqnxt_edge.profiling.layers import artifact_layers
    from sqnxt_edge.runner import environment

    load_before = os.getloadavg()
    artifacts = export_all(args.models, [args.size], Path(args.work))
    hw, _ = hardware_for("local", args.threads)
    out = {
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python benchmarks/estimate/fit_reference.py " + " ".join(sys.argv[1:]),
        "models": args.models,
        "input_size": args.size,
        "hardware": hw.to_dict(),
        "factors": {},
        "profiles": {},
    }
    for precision in ("fp32", "int8"):
        paths = [artifacts[(m, args.size, precision)] for m in args.models] * args.repeats
        results = profile(paths, "local", args.threads, runs=args.runs, progress=False)
        samples = []
        dispatch = float(np.median([r.dispatch_us for r in results]))  # as calibrate() does
        for path, r in zip(paths, results):
            scale = min(1.0, r.latency_ms / r.sum_ms) if r.sum_ms else 1.0  # as calibrate() does
            samples.append(
                (
                    artifact_layers(path)[0],
                    {k: v * scale for k, v in r.measured_us().items()},
                    sum(n.us for n in r.runtime_nodes) * scale,
                )
            )
            out["profiles"].setdefault(f"{r.model} {precision}", []).append(
                {
                    "e2e_ms": r.e2e_ms,
                    "sum_ms": r.sum_ms,
                    "agreement_pct": r.agreement_pct,
                    "stem_share": r.stem_share,
                    "loadavg": r.env.get("loadavg"),
                }
            )
        factors = fit(samples, hw, precision, "reference", overhead_us=dispatch).to_dict()
        factors.pop("basis")
        out["factors"][precision] = factors
    out.update(loadavg_before=load_before, loadavg_after=os.getloadavg(), env=environment())
    (HERE / "reference.json").write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(out["factors"], indent=2))


if __name__ == "__main__":
    main()

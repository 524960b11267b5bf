"""Per-node profiles (`sqnxt-edge profile`): raw data only; the package maps nodes to layers.

The runtime's own profiler does the work (`Backend.profile`: onnxruntime's today); a runtime without one says why.
"""

from __future__ import annotations

import time

from .measuring import Settings, measure_artifact
from .model import open_model


def profile_artifact(path: str, s: Settings) -> dict:
    """The usual measurement, then `warmup` + `runs` rounds of one plain run (`e2e_us`) and one profiled run
    (interleaved: both see the same load); every node's kernel time (us) in the last `runs` rounds."""
    result = measure_artifact(path, s)
    model = open_model(path, result["runtime"], result["threads"])
    x, clock, e2e = model.synthetic(s.batch), time.perf_counter_ns, []

    def plain() -> None:
        t0 = clock()
        model.run(x)
        e2e.append((clock() - t0) / 1e3)

    prof = model.profile(x, s.warmup, s.runs, plain)  # a RunnerError saying why when the runtime has no profiler
    result["profile"] = {"profiler": prof["profiler"], "e2e_us": e2e[s.warmup :], "nodes": prof["nodes"]}
    return result

"""Small measurements that make the profile and the cost model honest, each on the machine it describes.

- `write_probe`: a 64-node chain of tiny Adds, profiled beside every artifact (on the board too, through the runner).
  A tiny Add computes next to nothing, so its profiled kernel time is the profiler's own floor per node, which is
  subtracted from every node of the real model; its plain latency is onnxruntime's dispatch cost per node.
- `local_figures`: this machine's compute peaks (an fp32 MatMul and a u8 x s8 MatMulInteger, run by onnxruntime's
  own kernels), its copy bandwidth and onnxruntime's per-node overhead: the `local` profile's figures, measured
  rather than assumed.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["PROBE_NODES", "write_probe", "local_figures"]

PROBE_NODES = 64
PROBE_NAME = "sqnxt-probe.onnx"


def _chain_model(nodes: int):
    """input [1, 3, 4, 4] -> `nodes` x (Add a constant) -> logits: nothing for onnxruntime to fuse or fold."""
    from onnx import TensorProto, helper, numpy_helper

    graph_nodes, inits, prev = [], [], "input"
    for i in range(nodes):
        inits.append(numpy_helper.from_array(np.full([1], 1e-3 * (i + 1), np.float32), f"c{i}"))
        out = "logits" if i == nodes - 1 else f"t{i}"
        graph_nodes.append(helper.make_node("Add", [prev, f"c{i}"], [out], name=f"/probe/n{i}/Add"))
        prev = out
    shape = [1, 3, 4, 4]
    graph = helper.make_graph(
        graph_nodes,
        "probe",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, shape)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def write_probe(folder: Path) -> Path:
    """The probe model (+ the sidecar the runner reads) in `folder`."""
    import onnx

    path = Path(folder) / PROBE_NAME
    onnx.save(_chain_model(PROBE_NODES), str(path))
    meta = {
        "model_name": "probe",
        "input_size": 4,
        "in_channels": 3,
        "layout": "NCHW",
        "mean": [0.0] * 3,
        "std": [1.0] * 3,
        "precision": "fp32",
    }
    Path(str(path) + ".meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return path


def _session(model, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts, providers=["CPUExecutionProvider"])


def _best_seconds(run, reps: int) -> float:
    run()
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


def _gemm_gops(threads: int, int8: bool, n: int = 512, reps: int = 20) -> float:
    """Best rate of one n x n x n matrix product by onnxruntime's MLAS (2 ops per multiply-accumulate)."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    if int8:
        b = numpy_helper.from_array(rng.integers(-128, 128, (n, n), dtype=np.int8), "B")
        node, a_type, out_type = (
            helper.make_node("MatMulInteger", ["A", "B"], ["Y"]),
            TensorProto.UINT8,
            TensorProto.INT32,
        )
        a = rng.integers(0, 256, (n, n), dtype=np.uint8)
    else:
        b = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "B")
        node, a_type, out_type = helper.make_node("MatMul", ["A", "B"], ["Y"]), TensorProto.FLOAT, TensorProto.FLOAT
        a = rng.standard_normal((n, n)).astype(np.float32)
    graph = helper.make_graph(
        [node],
        "gemm",
        [helper.make_tensor_value_info("A", a_type, [n, n])],
        [helper.make_tensor_value_info("Y", out_type, [n, n])],
        initializer=[b],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = _session(model, threads)
    return 2 * n**3 / _best_seconds(lambda: sess.run(None, {"A": a}), reps) / 1e9


def _copy_gbs(mb: int = 64, reps: int = 5) -> float:
    """numpy copy of a `mb` MB array, counted as STREAM counts a copy (bytes read + bytes written)."""
    src = np.ones(mb * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    return 2 * src.nbytes / _best_seconds(lambda: np.copyto(dst, src), reps) / 1e9


def _node_overhead_us(threads: int, reps: int = 200) -> float:
    """onnxruntime's cost per extra node: a 68-node chain minus a 4-node chain of tiny Adds, per node."""
    short, long = _session(_chain_model(4), threads), _session(_chain_model(PROBE_NODES + 4), threads)
    x = {"input": np.zeros([1, 3, 4, 4], np.float32)}
    t_short = _best_seconds(lambda: short.run(None, x), reps)
    t_long = _best_seconds(lambda: long.run(None, x), reps)
    return max(0.0, (t_long - t_short) / PROBE_NODES * 1e6)


@lru_cache(maxsize=8)
def local_figures(threads: int) -> dict:
    """This machine measured now at `threads`: {figure: (value, source)} for the cost model."""
    from onnxruntime import __version__ as ort_version

    how = f"measured now on this machine, {threads} thread(s)"
    return {
        "peak_gflops_fp32": (
            round(_gemm_gops(threads, False), 1),
            f"{how}: onnxruntime {ort_version} MatMul 512x512x512, best of 20",
        ),
        "peak_gops_int8": (
            round(_gemm_gops(threads, True), 1),
            f"{how}: onnxruntime {ort_version} MatMulInteger u8 x s8 512x512x512, best of 20",
        ),
        "mem_bandwidth_gbs": (
            round(_copy_gbs(), 2),
            "measured now on this machine: numpy copy of 64 MB, 1 thread, "
            "read + write bytes (the STREAM copy convention)",
        ),
        "layer_overhead_us": (
            round(_node_overhead_us(threads), 3),
            f"{how}: onnxruntime per-node cost, 68-node minus 4-node chain of tiny Adds",
        ),
    }

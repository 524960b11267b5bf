"""onnxruntime's CPU execution provider, sequential, with its own profiler for per-node times."""

from __future__ import annotations

import json
import os
import tempfile

import numpy as np

from .base import BaseBackend, need


class OnnxRuntime(BaseBackend):
    """`.onnx` / `.ort` through onnxruntime (the default for both)."""

    def __init__(self, path: str, threads: int | None, runtime: str = "onnxruntime", profile: str | None = None):
        ort = need("onnxruntime")
        self.path, self.threads = path, threads
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads, opts.inter_op_num_threads = int(threads), 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        if profile:  # onnxruntime's own profiler: every node's kernel time, written under this prefix
            opts.enable_profiling, opts.profile_file_prefix = True, profile
        self.sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        self.version = ort.__version__
        inp, out = self.sess.get_inputs()[0], self.sess.get_outputs()[0]
        self.input_name, self.output_name, self.input_shape = inp.name, out.name, list(inp.shape)
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        self.quant, self.dynamic_batch = None, not isinstance(inp.shape[0], int)
        self.embedded = dict(self.sess.get_modelmeta().custom_metadata_map)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch: the model's output as the runtime returns it."""
        return self.sess.run([self.output_name], {self.input_name: x})[0]

    def profile(self, x: np.ndarray, warmup: int, runs: int, between) -> dict:
        """A second session with the profiler on, run right after each `between()`; kernel times of the last
        `runs` rounds."""
        with tempfile.TemporaryDirectory(prefix="sqnxt-profile-") as tmp:
            profiled = OnnxRuntime(self.path, self.threads, profile=os.path.join(tmp, "ort"))
            for _ in range(warmup + runs):
                between()
                profiled.run(x)
            with open(profiled.sess.end_profiling(), encoding="utf-8") as fh:
                events = json.load(fh)
        start = sorted(e["ts"] for e in events if e.get("name") == "model_run")[-runs]  # the timed rounds only
        nodes: dict = {}
        for e in events:
            if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start:
                op = e.get("args", {}).get("op_name")
                nodes.setdefault(e["name"][: -len("_kernel_time")], {"op": op, "us": []})["us"].append(e["dur"])
        return {
            "profiler": f"onnxruntime {self.version} enable_profiling",
            "nodes": [{"name": k, **v} for k, v in nodes.items()],
        }

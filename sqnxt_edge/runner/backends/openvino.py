"""OpenVINO's CPU plugin, for `.onnx` files on x86 (one more engine `auto` measures beside onnxruntime)."""

from __future__ import annotations

import numpy as np

from .base import BaseBackend, need, version


class OpenVino(BaseBackend):
    """OpenVINO's CPU plugin with f32 inference precision: it would run bf16 on AVX-512 CPUs by default, which is
    neither what the artifact says nor a fair comparison."""

    no_profile = "per-layer profiles come from onnxruntime's profiler; profile this .onnx with onnxruntime"

    def __init__(self, path: str, threads: int | None, runtime: str = "openvino"):
        ov = need("openvino")
        core = ov.Core()
        model = core.read_model(path)
        config: dict[str, str | int] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.version = version("openvino", ov)
        inp, out = model.inputs[0], model.outputs[0]
        self.input_name, self.output_name = inp.get_any_name(), out.get_any_name()
        shape = inp.get_partial_shape()
        self.input_shape = [d.get_length() if d.is_static else "batch" for d in shape]
        self.input_dtype = np.float16 if "16" in str(inp.get_element_type()) else np.float32
        self.quant, self.dynamic_batch = None, not shape[0].is_static
        self.embedded: dict = {}

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch: the model's output as the runtime returns it."""
        return self.request.infer({0: x})[self.compiled.output(0)]

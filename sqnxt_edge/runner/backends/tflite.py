"""`.tflite` through LiteRT (ai-edge-litert) or, on boards that have only it, tflite-runtime: the same interpreter
API under two module names."""

from __future__ import annotations

import importlib

import numpy as np

from .base import BaseBackend, need, version


class TFLite(BaseBackend):
    """The TFLite interpreter; integer outputs are dequantized with the tensor's own scale and zero point."""

    no_profile = "TFLite's Python interpreter exposes no op profiler (TFLite has benchmark_model --enable_op_profiling)"

    def __init__(self, path: str, threads: int | None, runtime: str = "litert"):
        module = need(runtime)
        interp = importlib.import_module(module.__name__ + ".interpreter").Interpreter
        self.interp = interp(model_path=path, **({"num_threads": int(threads)} if threads else {}))
        self.interp.allocate_tensors()
        self.version = version(runtime, module)
        self._in, self._out = self.interp.get_input_details()[0], self.interp.get_output_details()[0]
        self.input_name, self.output_name = self._in["name"], self._out["name"]
        self.input_shape = [int(d) for d in self._in["shape"]]
        self.input_dtype = np.dtype(self._in["dtype"]).type
        scale, zero = self._in.get("quantization", (0.0, 0))
        self.quant = (float(scale), int(zero)) if scale else None
        sig = self._in.get("shape_signature")
        self.dynamic_batch = sig is not None and len(sig) > 0 and int(sig[0]) == -1
        self.embedded: dict = {}

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch: the model's output as the runtime returns it."""
        interp = self.interp
        if list(x.shape) != list(interp.get_input_details()[0]["shape"]):
            interp.resize_tensor_input(self._in["index"], list(x.shape))
            interp.allocate_tensors()
        interp.set_tensor(self._in["index"], x)
        interp.invoke()
        y = interp.get_tensor(self._out["index"])
        scale, zero = self._out.get("quantization", (0.0, 0))
        if scale and y.dtype in (np.int8, np.uint8):
            return (y.astype(np.float32) - zero) * scale
        return y

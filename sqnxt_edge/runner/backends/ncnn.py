"""ncnn (Tencent's CPU runtime for phones and embedded Linux) for `.ncnn.param` graphs with their `.bin` weights.

An fp32 artifact runs in fp32: ncnn stores and computes in fp16 (or bf16) wherever the CPU allows by default, which
moved logits by up to 0.84 here, so those options are turned off unless the metadata says the file is fp16.
ncnn's Extractor takes one image (C, H, W) at a time: a batch is run image by image.
"""

from __future__ import annotations

import os

import numpy as np

from ..contract import RunnerError, companions, read_metadata
from .base import BaseBackend, need, version

_REDUCED = ("use_fp16_", "use_bf16_")  # option name prefixes of ncnn's reduced-precision storage and arithmetic


class Ncnn(BaseBackend):
    """One ncnn `Net` on the CPU (no Vulkan), `threads` through `opt.num_threads`."""

    no_profile = (
        "ncnn times its layers only in a C++ build with NCNN_BENCHMARK (benchncnn); the pip wheel's Python binding "
        "has no per-layer hook"
    )

    def __init__(self, path: str, threads: int | None, runtime: str = "ncnn"):
        ncnn = need("ncnn")
        meta = read_metadata(path)
        weights = companions(path)[0]
        if not os.path.isfile(weights):
            raise RunnerError(f"{os.path.basename(path)}: its weights {os.path.basename(weights)} are not beside it")
        if not meta.get("input_size"):
            raise RunnerError(
                f"{os.path.basename(path)}: an ncnn graph does not record its input size; it needs its .meta.json"
            )
        self.net = ncnn.Net()
        opt = self.net.opt  # options must be set before the graph is loaded
        opt.use_vulkan_compute = False
        if meta.get("precision", "fp32") == "fp32":
            for name in dir(opt):
                if name.startswith(_REDUCED):
                    setattr(opt, name, False)
        if threads:
            opt.num_threads = int(threads)
        if self.net.load_param(path) != 0 or self.net.load_model(weights) != 0:
            raise RunnerError(f"{os.path.basename(path)}: ncnn cannot load it (or {os.path.basename(weights)})")
        self.version = version("ncnn", ncnn)
        self._mat = ncnn.Mat
        self.input_name, self.output_name = self.net.input_names()[0], self.net.output_names()[0]
        size = int(meta["input_size"])
        self.input_shape = ["batch", int(meta.get("in_channels") or 3), size, size]
        self.input_dtype, self.quant, self.dynamic_batch = np.float32, None, True
        self.embedded: dict = {}

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference per image of the prepared NCHW batch; the logits stacked as (N, classes)."""
        outs = []
        for image in np.asarray(x, dtype=np.float32):
            chw = np.ascontiguousarray(image)  # ncnn.Mat shares this buffer: it must outlive the extraction
            ex = self.net.create_extractor()
            ex.input(self.input_name, self._mat(chw))
            status, out = ex.extract(self.output_name)
            if status != 0:
                raise RunnerError(f"ncnn could not compute {self.output_name} (status {status})")
            outs.append(np.array(out, dtype=np.float32).reshape(-1))
        return np.stack(outs)

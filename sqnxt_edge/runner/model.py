"""One loaded artifact: a runtime's backend plus the preprocessing its metadata asks for, the same for every runtime.

Everything the package does with a model here (evaluation, parity, quantization checks) and everything a board does
goes through `Model`, so a figure means the same thing wherever it was taken.
"""

from __future__ import annotations

import os

import numpy as np

from .backends import Backend, open_backend, runtimes_for
from .contract import SUFFIXES, RunnerError, first_line, read_metadata, suffix_of


class Model:
    """One loaded artifact with a uniform interface over the runtimes and the preprocessing of its metadata.

    The backend's input facts are copied once, by name (`input_name`, `output_name`, `input_shape`, `input_dtype`,
    `quant`, `dynamic_batch`); `backend` is the runtime's object itself."""

    def __init__(self, path: str, runtime: str = "auto", threads: int | None = None):
        path = str(path)
        if not os.path.isfile(path):
            raise RunnerError(f"artifact not found: {path}")
        self.path, self.threads = path, threads
        self.runtime = runtimes_for(path, runtime)[0]
        try:
            backend = open_backend(self.runtime, path, threads)
        except RunnerError:
            raise
        except Exception as exc:  # each runtime raises its own Fail/InvalidGraph/ValueError types
            raise RunnerError(f"{os.path.basename(path)}: {self.runtime} cannot load it: {first_line(exc)}") from None
        self.backend: Backend = backend
        self.runtime_version: str = backend.version
        self.input_name: str = backend.input_name
        self.output_name: str = backend.output_name
        self.input_shape: list = list(backend.input_shape)
        self.input_dtype = backend.input_dtype
        self.quant: tuple[float, int] | None = backend.quant
        self.dynamic_batch: bool = bool(backend.dynamic_batch)
        self.meta = read_metadata(path, backend.embedded)
        for key, value in (("layout", SUFFIXES[suffix_of(path)][1]), ("mean", [0.0] * 3), ("std", [1.0] * 3)):
            self.meta.setdefault(key, value)

    @property
    def input_size(self) -> int:
        """Input side in pixels, from the metadata or the input shape."""
        if "input_size" in self.meta:
            return int(self.meta["input_size"])
        dims = self.input_shape[2:] if self.meta.get("layout", "NCHW") == "NCHW" else self.input_shape[1:3]
        return int(dims[0])

    @property
    def channels(self) -> int:
        """Input channels, from the metadata or the input shape."""
        if self.meta.get("in_channels"):
            return int(self.meta["in_channels"])
        shape = self.input_shape
        dim = shape[1] if self.meta.get("layout") == "NCHW" else (shape[3] if len(shape) == 4 else 3)
        return int(dim) if isinstance(dim, int) and dim > 0 else 3

    @property
    def precision(self) -> str:
        """fp32, fp16 or int8, from the metadata or the input type."""
        if self.meta.get("precision"):
            return str(self.meta["precision"])
        return {np.int8: "int8", np.uint8: "int8", np.float16: "fp16"}.get(self.input_dtype, "unknown")

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on, or None when the batch dimension is dynamic."""
        first = self.input_shape[0] if self.input_shape else None
        if self.dynamic_batch or not isinstance(first, int) or first <= 0:
            return None
        return first

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """uint8 NHWC images, already at the model's input size -> the model's input tensor."""
        if images.ndim != 4 or images.dtype != np.uint8:
            raise RunnerError(f"images must be uint8 NHWC, got {images.dtype} {images.shape}")
        mean = np.asarray(self.meta["mean"], dtype=np.float32)
        std = np.asarray(self.meta["std"], dtype=np.float32)
        x = (images.astype(np.float32) / 255.0 - mean) / std
        if self.meta["layout"] == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        x = np.ascontiguousarray(x)
        if self.quant is not None and self.input_dtype in (np.int8, np.uint8):
            scale, zero = self.quant
            info = np.iinfo(self.input_dtype)
            return np.clip(np.rint(x / scale) + zero, info.min, info.max).astype(self.input_dtype)
        return x.astype(self.input_dtype, copy=False)

    def synthetic(self, batch: int) -> np.ndarray:
        """A prepared batch of seeded random images: what latency is measured on."""
        n = self.input_size
        rng = np.random.default_rng(0)
        return self.prepare(rng.integers(0, 256, size=(batch, n, n, self.channels), dtype=np.uint8))

    def run(self, x: np.ndarray) -> np.ndarray:
        """One inference on a prepared batch; returns float32 logits."""
        return np.asarray(self.backend.run(x), dtype=np.float32)

    def predict(self, images: np.ndarray, batch: int | None = None) -> np.ndarray:
        """Logits for uint8 NHWC images, in batches the model accepts."""
        step = self.fixed_batch or batch or 64
        outs = []
        for i in range(0, len(images), step):
            chunk = images[i : i + step]
            pad = step - len(chunk) if self.fixed_batch else 0
            if pad:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
            y = self.run(self.prepare(chunk))
            outs.append(y[: len(y) - pad] if pad else y)
        return np.concatenate(outs) if outs else np.zeros((0, 0), np.float32)

    def profile(self, x: np.ndarray, warmup: int, runs: int, between) -> dict:
        """The runtime's per-node times (see `Backend.profile`); a RunnerError saying why when it has none."""
        try:
            return self.backend.profile(x, warmup, runs, between)
        except NotImplementedError as exc:
            why = first_line(exc) if str(exc) else "no per-node profiler"
            raise RunnerError(f"{os.path.basename(self.path)}: {self.runtime} cannot profile: {why}") from None


open_model = Model  # the name the package and board scripts use
